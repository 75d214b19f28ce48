# iam: every role and policy of the shared base.
#
# Permission policies are the JSON templates in infra/policies/, loaded with
# templatefile() so that Terraform and scripts/bootstrap-local (which applies the
# agent ones to moto) grant exactly the same; each call passes exactly the
# placeholders its file uses (scripts/lint checks it, with scripts/lib/check_infra.py).
# Trust policies are written here.
#
#   role / policy                      trusted by                 permissions
#   {prefix}-deployer                  lambda.amazonaws.com       deployer.json + deployer-runtime.json
#   {prefix}-agent-execution           ecs-tasks                  agent-execution.json (passed by the deployer)
#   {prefix}-agent-boundary (policy)   -                          agent-boundary.json: the permission
#                                                                 boundary of every agent's own task role
#   {prefix}-control-plane-task        ecs-tasks (this account)   control-plane.json
#   {prefix}-control-plane-execution   ecs-tasks                  control-plane-execution.json
#   {prefix}-github-deploy             GitHub OIDC                github-deploy.json
#
# The agents' own task roles are not here: the deployer creates one per agent under
# /tempovoice/{prefix}/, only with the boundary attached (deployer.json enforces it).
#
# Names are computed from the prefix, not taken from other modules' resources, so
# this module depends on no module that needs its roles (no cycles): the deployer
# function is `{prefix}-deployer`, the control-plane service `{prefix}-control-plane`.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  names = {
    deployer                = "${var.prefix}-deployer"
    agent_execution         = "${var.prefix}-agent-execution"
    agent_boundary          = "${var.prefix}-agent-boundary"
    control_plane_task      = "${var.prefix}-control-plane-task"
    control_plane_execution = "${var.prefix}-control-plane-execution"
    github_deploy           = "${var.prefix}-github-deploy"
  }

  github_oidc_provider_arn = var.github_oidc_provider_arn != null ? var.github_oidc_provider_arn : aws_iam_openid_connect_provider.github[0].arn
}

# --- trust policies -----------------------------------------------------------------

data "aws_iam_policy_document" "lambda_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Task roles: only ECS tasks of this account (confused-deputy guard, as the deployer
# writes for the agents' task roles).
data "aws_iam_policy_document" "ecs_task_role_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:ecs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"]
    }
  }
}

# --- the deployer Lambda ------------------------------------------------------------

resource "aws_iam_policy" "agent_boundary" {
  name        = local.names.agent_boundary
  description = "TempoVoice ${var.prefix}: the permission boundary of every agent's own task role"
  policy = templatefile("${path.module}/../../policies/agent-boundary.json", {
    partition = data.aws_partition.current.partition
    region    = data.aws_region.current.name
    account   = data.aws_caller_identity.current.account_id
    prefix    = var.prefix
    cluster   = var.cluster_name
  })
}

resource "aws_iam_role" "deployer" {
  name                 = local.names.deployer
  description          = "TempoVoice ${var.prefix}: the deployer Lambda"
  assume_role_policy   = data.aws_iam_policy_document.lambda_trust.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "deployer" {
  name = "tempovoice-deployer"
  role = aws_iam_role.deployer.id
  policy = templatefile("${path.module}/../../policies/deployer.json", {
    partition           = data.aws_partition.current.partition
    region              = data.aws_region.current.name
    account             = data.aws_caller_identity.current.account_id
    prefix              = var.prefix
    cluster             = var.cluster_name
    repository          = var.runtime_repository
    boundary_arn        = aws_iam_policy.agent_boundary.arn
    execution_role_name = aws_iam_role.agent_execution.name
  })
}

resource "aws_iam_role_policy" "deployer_runtime" {
  name = "tempovoice-deployer-runtime"
  role = aws_iam_role.deployer.id
  policy = templatefile("${path.module}/../../policies/deployer-runtime.json", {
    partition = data.aws_partition.current.partition
    region    = data.aws_region.current.name
    account   = data.aws_caller_identity.current.account_id
    log_group = var.deployer_log_group
  })
}

# --- agents -------------------------------------------------------------------------

resource "aws_iam_role" "agent_execution" {
  name               = local.names.agent_execution
  description        = "TempoVoice ${var.prefix}: ECS task execution role of every agent (image pull, logs, agent secrets)"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

resource "aws_iam_role_policy" "agent_execution" {
  name = local.names.agent_execution
  role = aws_iam_role.agent_execution.id
  policy = templatefile("${path.module}/../../policies/agent-execution.json", {
    partition  = data.aws_partition.current.partition
    region     = data.aws_region.current.name
    account    = data.aws_caller_identity.current.account_id
    prefix     = var.prefix
    repository = var.runtime_repository
    log_group  = var.agents_log_group
  })
}

# --- the control plane --------------------------------------------------------------

resource "aws_iam_role" "control_plane_task" {
  name               = local.names.control_plane_task
  description        = "TempoVoice ${var.prefix}: the control plane (invokes the deployer, reads transcripts)"
  assume_role_policy = data.aws_iam_policy_document.ecs_task_role_trust.json
}

resource "aws_iam_role_policy" "control_plane_task" {
  name = "tempovoice-control-plane"
  role = aws_iam_role.control_plane_task.id
  policy = templatefile("${path.module}/../../policies/control-plane.json", {
    partition         = data.aws_partition.current.partition
    region            = data.aws_region.current.name
    account           = data.aws_caller_identity.current.account_id
    prefix            = var.prefix
    deployer_function = var.deployer_function_name
  })
}

resource "aws_iam_role" "control_plane_execution" {
  name               = local.names.control_plane_execution
  description        = "TempoVoice ${var.prefix}: ECS task execution role of the control plane (image pull, logs, its secrets)"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

resource "aws_iam_role_policy" "control_plane_execution" {
  name = "tempovoice-control-plane-execution"
  role = aws_iam_role.control_plane_execution.id
  policy = templatefile("${path.module}/../../policies/control-plane-execution.json", {
    partition   = data.aws_partition.current.partition
    region      = data.aws_region.current.name
    account     = data.aws_caller_identity.current.account_id
    dns_suffix  = data.aws_partition.current.dns_suffix
    prefix      = var.prefix
    repository  = var.control_plane_repository
    log_group   = var.control_plane_log_group
    kms_key_arn = var.kms_key_arn
  })
}

# --- CI: GitHub Actions through OIDC ------------------------------------------------

# An account holds one provider per issuer URL: pass github_oidc_provider_arn when the
# account already has GitHub's.
resource "aws_iam_openid_connect_provider" "github" {
  count = var.github_oidc_provider_arn == null ? 1 : 0

  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
  # IAM trusts GitHub's issuer through its own root CAs and ignores these; they are
  # given because older 5.x providers require the argument.
  thumbprint_list = [
    "6938fd4d98bab03faadb97b34396831e3780aea1",
    "1c58a3a8518e8759bf075b76b750d4f2df264fcd",
  ]
}

data "aws_iam_policy_document" "github_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Only jobs of this repository that run in the deploy environment: a job that
    # names an environment gets the subject `repo:…:environment:…` whatever its ref,
    # and every job of release.yml and rollout.yml that reaches AWS names it. Which
    # refs may deploy is the environment's own rule, set in GitHub: deployment
    # branches and tags `main` and `v*` (docs/deploy.md). Pull requests and other
    # branches can neither use the environment nor assume this role.
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${var.github_repository}:environment:${var.deploy_environment}"]
    }
  }
}

resource "aws_iam_role" "github_deploy" {
  name                 = local.names.github_deploy
  description          = "TempoVoice ${var.prefix}: GitHub Actions release (${var.github_repository})"
  assume_role_policy   = data.aws_iam_policy_document.github_trust.json
  max_session_duration = 3600
}

# A release: push both images (each architecture by digest, then the index under the
# tag); update the deployer's code, set its TEMPOVOICE_RUNTIME_IMAGE_TAG (the image of
# agents created later) to the release tag, and invoke it (`rollout` moves every agent
# onto the new runtime image); roll the control-plane service onto its new image
# (register a copy of the family's latest task definition with the new image, then
# UpdateService), which passes the control plane's two roles to ECS.
resource "aws_iam_role_policy" "github_deploy" {
  name = "tempovoice-github-deploy"
  role = aws_iam_role.github_deploy.id
  policy = templatefile("${path.module}/../../policies/github-deploy.json", {
    partition                    = data.aws_partition.current.partition
    region                       = data.aws_region.current.name
    account                      = data.aws_caller_identity.current.account_id
    runtime_repository           = var.runtime_repository
    control_plane_repository     = var.control_plane_repository
    deployer_function            = var.deployer_function_name
    cluster                      = var.cluster_name
    control_plane_service        = var.control_plane_service_name
    control_plane_task_role      = aws_iam_role.control_plane_task.name
    control_plane_execution_role = aws_iam_role.control_plane_execution.name
  })
}
