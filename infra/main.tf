# TempoVoice: the shared AWS base the control plane and the deployer run on.
#
#   kms            one customer-managed key: logs, control-plane secrets, images, database
#   network        VPC, public/private subnets in 2-3 AZs, NAT, S3 gateway endpoint,
#                  optional interface endpoints, flow logs
#   edge           `shard_count` internet-facing ALBs {prefix}-agents-{n} with HTTPS
#                  listeners, optional WAF, the ALB and agent-task security groups
#   cluster        ECS cluster {prefix} (Fargate, Fargate Spot), agent and control-plane logs
#   registry       ECR repositories {prefix}-agent-runtime and {prefix}-control-plane
#   iam            every role and policy (templates in policies/), GitHub OIDC deploy role
#   deployer       the deployer Lambda {prefix}-deployer and its settings
#   control-plane  the control plane service on ALB 0, PostgreSQL, its secrets
#
# What runs on it and is not made here: each agent's bucket, secret, task role, task
# definition, service, target group and listener rule, all created by the deployer.
#
# First apply: build the deployer zip and push a control-plane image under
# `control_plane_image_tag` first (the repositories exist after a targeted apply of
# module.registry), or the first control-plane deployment fails until CI's first
# release. The settings each program reads are the outputs `deployer_settings` and
# `control_plane_settings`.

locals {
  container_port = 8080

  # Names other modules need before the resources exist (no dependency cycles).
  deployer_function_name     = "${var.prefix}-deployer"
  deployer_log_group         = "/aws/lambda/${local.deployer_function_name}"
  control_plane_service_name = "${var.prefix}-control-plane"

  # A digest is referenced with @, a tag with :.
  control_plane_image = format(
    "%s%s%s",
    module.registry.repository_urls["control_plane"],
    startswith(var.control_plane_image_tag, "sha256:") ? "@" : ":",
    var.control_plane_image_tag,
  )
}

module "kms" {
  source = "./modules/kms"

  prefix = var.prefix
}

module "network" {
  source = "./modules/network"

  prefix                     = var.prefix
  vpc_cidr                   = var.vpc_cidr
  az_count                   = var.availability_zone_count
  availability_zones         = var.availability_zones
  single_nat_gateway         = var.single_nat_gateway
  enable_interface_endpoints = var.enable_interface_endpoints
  flow_log_retention_days    = var.log_retention_days
  kms_key_arn                = module.kms.key_arn
}

module "edge" {
  source = "./modules/edge"

  prefix              = var.prefix
  vpc_id              = module.network.vpc_id
  public_subnet_ids   = module.network.public_subnet_ids
  shard_count         = var.shard_count
  agent_hosts         = var.agent_hosts
  listener_capacity   = var.listener_capacity
  container_port      = local.container_port
  certificate_arn     = var.certificate_arn
  idle_timeout        = var.alb_idle_timeout
  deletion_protection = var.alb_deletion_protection
  access_logs_bucket  = var.alb_access_logs_bucket
  enable_waf          = var.enable_waf
  waf_rate_limit      = var.waf_rate_limit
  log_retention_days  = var.log_retention_days
  kms_key_arn         = module.kms.key_arn
  route53_zone_id     = var.route53_zone_id
}

module "cluster" {
  source = "./modules/cluster"

  prefix             = var.prefix
  log_retention_days = var.log_retention_days
  kms_key_arn        = module.kms.key_arn
}

module "registry" {
  source = "./modules/registry"

  prefix             = var.prefix
  keep_tagged_images = var.ecr_keep_tagged_images
  kms_key_arn        = module.kms.key_arn
}

module "iam" {
  source = "./modules/iam"

  prefix                     = var.prefix
  cluster_name               = module.cluster.cluster_name
  runtime_repository         = module.registry.repository_names["agent_runtime"]
  control_plane_repository   = module.registry.repository_names["control_plane"]
  agents_log_group           = module.cluster.agents_log_group_name
  control_plane_log_group    = module.cluster.control_plane_log_group_name
  deployer_function_name     = local.deployer_function_name
  deployer_log_group         = local.deployer_log_group
  control_plane_service_name = local.control_plane_service_name
  kms_key_arn                = module.kms.key_arn
  github_repository          = var.github_repository
  deploy_environment         = var.deploy_environment
  github_oidc_provider_arn   = var.github_oidc_provider_arn
}

module "deployer" {
  source = "./modules/deployer"

  prefix               = var.prefix
  function_name        = local.deployer_function_name
  package              = var.deployer_package
  role_arn             = module.iam.deployer_role_arn
  role_name            = module.iam.deployer_role_name
  reserved_concurrency = var.deployer_reserved_concurrency
  enable_failure_queue = var.deployer_failure_queue
  log_retention_days   = var.log_retention_days
  kms_key_arn          = module.kms.key_arn

  cluster_name            = module.cluster.cluster_name
  vpc_id                  = module.network.vpc_id
  subnet_ids              = module.network.private_subnet_ids
  security_group_ids      = [module.edge.agent_security_group_id]
  execution_role_arn      = module.iam.agent_execution_role_arn
  task_role_boundary_arn  = module.iam.agent_boundary_policy_arn
  runtime_repository      = module.registry.repository_names["agent_runtime"]
  runtime_image_tag       = var.runtime_image_tag
  container_port          = local.container_port
  agents_log_group        = module.cluster.agents_log_group_name
  service_drain_wait_secs = var.service_drain_wait_secs

  transcripts = {
    infrequent_access_days = var.transcripts_ia_days
    glacier_days           = var.transcripts_glacier_days
    expire_days            = var.transcripts_expire_days
    noncurrent_days        = var.transcripts_noncurrent_days
    retired_bucket_days    = var.retired_bucket_days
  }
}

module "control_plane" {
  source = "./modules/control-plane"

  prefix                 = var.prefix
  vpc_id                 = module.network.vpc_id
  private_subnet_ids     = module.network.private_subnet_ids
  cluster_arn            = module.cluster.cluster_arn
  alb_security_group_id  = module.edge.alb_security_group_id
  https_listener_arn     = module.edge.https_listener_arns[0]
  alb_dns_name           = module.edge.alb_dns_names[0]
  alb_zone_id            = module.edge.alb_zone_ids[0]
  control_plane_host     = var.control_plane_host
  listener_rule_priority = var.control_plane_rule_priority
  route53_zone_id        = var.route53_zone_id

  image              = local.control_plane_image
  cpu_architecture   = var.control_plane_cpu_architecture
  cpu                = var.control_plane_cpu
  memory             = var.control_plane_memory
  desired_count      = var.control_plane_desired_count
  task_role_arn      = module.iam.control_plane_task_role_arn
  execution_role_arn = module.iam.control_plane_execution_role_arn
  log_group_name     = module.cluster.control_plane_log_group_name

  deployer_function_name = module.deployer.function_name
  listeners_setting      = module.edge.listeners_setting
  targets_per_alb        = var.targets_per_alb
  target_group_quota     = var.target_group_quota

  kms_key_arn              = module.kms.key_arn
  log_retention_days       = var.log_retention_days
  db_engine_version        = var.db_engine_version
  db_instance_class        = var.db_instance_class
  db_allocated_storage     = var.db_allocated_storage
  db_max_allocated_storage = var.db_max_allocated_storage
  db_multi_az              = var.db_multi_az
  db_backup_retention_days = var.db_backup_retention_days
  db_deletion_protection   = var.db_deletion_protection
}

module "observability" {
  source = "./modules/observability"

  prefix                                = var.prefix
  alb_arn_suffixes                      = module.edge.alb_arn_suffixes
  control_plane_target_group_arn_suffix = module.control_plane.target_group_arn_suffix
  deployer_function_name                = module.deployer.function_name
  deployer_timeout_secs                 = module.deployer.timeout_secs
  kms_key_arn                           = module.kms.key_arn
  alarm_emails                          = var.alarm_emails
}
