# cluster: the ECS cluster every agent service and the control plane run in, and
# their log groups.
#
# Cluster `{prefix}` (TEMPOVOICE_CLUSTER) with Container Insights. Capacity providers
# FARGATE and FARGATE_SPOT, default strategy FARGATE: a phone call cannot survive its
# task being reclaimed, so agents run on on-demand Fargate unless a service asks
# otherwise. FARGATE_SPOT costs ~70 % less and suits agents whose calls may be cut
# (test and demo agents, batch-style outbound work): a Spot task gets a two-minute
# warning before it is stopped: the runtime drains for up to its 120 s stop timeout,
# and calls still running after that are cut.
#
# Log groups: `/ecs/{prefix}-agents` (TEMPOVOICE_LOG_GROUP: the deployer points every
# agent's awslogs driver at it) and `/ecs/{prefix}-control-plane`, both with
# retention and, when a key is given, KMS encryption.

resource "aws_ecs_cluster" "this" {
  name = var.prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    base              = 0
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "agents" {
  name              = "/ecs/${var.prefix}-agents"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudwatch_log_group" "control_plane" {
  name              = "/ecs/${var.prefix}-control-plane"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}
