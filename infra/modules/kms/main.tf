# kms: the one customer-managed key of the shared base.
#
# It encrypts what Terraform creates and that holds operational or customer data:
# every CloudWatch log group (agents, control plane, deployer, flow logs, WAF,
# RDS exports), the control plane's Secrets Manager secrets, both ECR repositories
# and the RDS instance (storage and Performance Insights). One key keeps the key
# policy in one place; ~$1 a month plus requests.
#
# Not encrypted with it, on purpose: the agents' own resources (transcript buckets,
# agent secrets), which the deployer creates with AWS-managed keys so that no agent
# task role needs kms permissions; and the deployer Lambda's environment, which holds
# resource names only.
#
# Key policy: the account's IAM policies decide (the root statement), plus CloudWatch
# Logs, which encrypts log groups as a service principal and needs its own grant,
# limited to this account's log groups in this region, and CloudWatch alarms, which
# publish to the encrypted alarm topic (modules/observability) as a service and need
# to encrypt the message, limited to this account's alarms. Services that use the key on
# a caller's behalf (Secrets Manager, RDS, ECR) go through IAM: ECR and RDS create
# grants at creation time, and the control plane's execution role is allowed
# kms:Decrypt through Secrets Manager only (policies/control-plane-execution.json).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name
}

resource "aws_kms_key" "this" {
  description             = "TempoVoice ${var.prefix}: logs, control-plane secrets, images, database"
  enable_key_rotation     = true
  deletion_window_in_days = var.deletion_window_in_days

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountIamPoliciesDecide"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsForThisAccountsLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.${data.aws_partition.current.dns_suffix}" }
        Action = [
          "kms:Encrypt",
          "kms:Decrypt",
          "kms:ReEncryptFrom",
          "kms:ReEncryptTo",
          "kms:GenerateDataKey",
          "kms:GenerateDataKeyWithoutPlaintext",
          "kms:DescribeKey",
        ]
        Resource = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:*"
          }
        }
      },
      {
        Sid       = "CloudWatchAlarmsToTheAlarmTopic"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.prefix}"
  target_key_id = aws_kms_key.this.key_id
}
