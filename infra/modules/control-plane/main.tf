# control-plane: the `control-plane` binary (REST API + the Leptos dashboard at /)
# as an ECS Fargate service, its PostgreSQL database (database.tf) and its secrets
# (secrets.tf).
#
# Traffic: ALB 0's HTTPS listener routes requests whose Host is `control_plane_host`
# to the control plane's target group, at `listener_rule_priority` (default 10). The
# control plane gives agent rules priorities from 1001 upward and leaves 1-1000 for
# rules made by hand, so this rule never collides with an agent's. Health check:
# GET /health (liveness: the process serves requests). Not /v1/health (readiness,
# which fails while the database is unreachable): during an RDS failover ECS would
# replace every healthy task for a fault a restart cannot fix.
#
# Tasks: private subnets, no public IP; `desired_count` replicas (2: one per AZ at
# least) on FARGATE; read-only root filesystem with a writable /tmp, non-root user.
# With PostgreSQL and TEMPOVOICE_SECRETS_KEY set the binary writes nothing to its
# data directory. Settings come from the environment (`settings` output) and the
# four secrets through the task definition's `secrets` (never plain environment).
#
# Releases: CI owns the image. The release workflow registers a copy of this family's
# latest task definition revision with the new image and updates the service
# (policies/github-deploy.json), so the service ignores Terraform's `task_definition`
# after creation: an apply never rolls the control plane back to the image in
# `var.image`. A change Terraform makes to the task definition (settings, secrets,
# sizes; e.g. a new ALB shard in TEMPOVOICE_LISTENERS) registers a new revision and
# reaches the running service with the next release, or at once by re-running the
# release workflow for the current tag.

data "aws_region" "current" {}

locals {
  container_name = "control-plane"
  container_port = 8080

  # Exactly the plain environment of the container (control-plane/src/settings.rs).
  environment = {
    TEMPOVOICE_LISTEN                   = "0.0.0.0:${local.container_port}"
    TEMPOVOICE_DEPLOYER                 = "lambda"
    DEPLOYER_LAMBDA_FUNCTION            = var.deployer_function_name
    TEMPOVOICE_PREFIX                   = var.prefix
    TEMPOVOICE_LISTENERS                = var.listeners_setting
    TEMPOVOICE_LOG_FORMAT               = "json"
    TEMPOVOICE_DASHBOARD_SECURE_COOKIES = "true"
    # Where Twilio posts the progress of the agents' outbound calls.
    TEMPOVOICE_PUBLIC_URL = "https://${var.control_plane_host}"
    # Only the ALB reaches the tasks (security group): its X-Forwarded-For names the client.
    TEMPOVOICE_TRUSTED_PROXY      = "true"
    TEMPOVOICE_ROLLOUT_CHECK      = "ecs"
    AWS_REGION                    = data.aws_region.current.name
    TEMPOVOICE_TARGETS_PER_ALB    = tostring(var.targets_per_alb)
    TEMPOVOICE_TARGET_GROUP_QUOTA = tostring(var.target_group_quota)
  }

  # Injected from Secrets Manager by the execution role.
  secrets = {
    DATABASE_URL                     = aws_secretsmanager_secret.database_url.arn
    TEMPOVOICE_SECRETS_KEY           = aws_secretsmanager_secret.secrets_key.arn
    TEMPOVOICE_ADMIN_TOKEN           = aws_secretsmanager_secret.admin_token.arn
    TEMPOVOICE_DASHBOARD_SESSION_KEY = aws_secretsmanager_secret.dashboard_session_key.arn
  }
}

# --- network ------------------------------------------------------------------------

resource "aws_security_group" "tasks" {
  name        = "${var.prefix}-control-plane"
  description = "TempoVoice control plane tasks: HTTP from the ALB, HTTPS and PostgreSQL out"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.prefix}-control-plane" }
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "HTTP from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
  referenced_security_group_id = var.alb_security_group_id
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = var.alb_security_group_id
  description                  = "To control plane tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to AWS APIs (Lambda, S3, Secrets Manager, ECR, logs)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_database" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database.id
}

# --- load balancing -----------------------------------------------------------------

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB; the hop to the task stays inside the VPC's private subnets (security group: ALB only), and the binary serves plain HTTP.
  name                 = "${var.prefix}-control-plane"
  vpc_id               = var.vpc_id
  target_type          = "ip"
  protocol             = "HTTP"
  port                 = local.container_port
  deregistration_delay = 30

  health_check {
    path                = "/health"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener_rule" "this" {
  listener_arn = var.https_listener_arn
  priority     = var.listener_rule_priority

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  condition {
    host_header {
      values = [var.control_plane_host]
    }
  }
}

resource "aws_route53_record" "this" {
  count = var.route53_zone_id == null ? 0 : 1

  zone_id = var.route53_zone_id
  name    = var.control_plane_host
  type    = "A"

  alias {
    name                   = var.alb_dns_name
    zone_id                = var.alb_zone_id
    evaluate_target_health = false
  }
}

# --- service ------------------------------------------------------------------------

resource "aws_ecs_task_definition" "this" {
  family                   = "${var.prefix}-control-plane"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name      = local.container_name
      image     = var.image
      essential = true
      user      = "10001:10001"

      readonlyRootFilesystem = true
      mountPoints = [
        { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
      ]

      portMappings = [
        { containerPort = local.container_port, protocol = "tcp" },
      ]

      environment = [for name in sort(keys(local.environment)) : { name = name, value = local.environment[name] }]
      secrets     = [for name in sort(keys(local.secrets)) : { name = name, valueFrom = local.secrets[name] }]

      # ECS deregisters the task from the target group (30 s delay) before SIGTERM;
      # the binary then finishes in-flight requests within
      # TEMPOVOICE_SHUTDOWN_GRACE_SECS (default 20 s) of this 30 s.
      stopTimeout = 30

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = var.log_group_name
          awslogs-region        = data.aws_region.current.name
          awslogs-stream-prefix = "control-plane"
        }
      }
    },
  ])
}

resource "aws_ecs_service" "this" {
  name             = "${var.prefix}-control-plane"
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.desired_count
  platform_version = "LATEST"

  capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  health_check_grace_period_seconds  = 60
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true
  enable_execute_command  = false

  lifecycle {
    ignore_changes = [task_definition]
  }

  # The target group must be attached to the load balancer before a service uses it,
  # and the secrets must hold values before a task starts: a first deployment whose
  # tasks cannot start trips the circuit breaker.
  depends_on = [
    aws_lb_listener_rule.this,
    aws_secretsmanager_secret_version.database_url,
    aws_secretsmanager_secret_version.secrets_key,
    aws_secretsmanager_secret_version.admin_token,
    aws_secretsmanager_secret_version.dashboard_session_key,
  ]
}
