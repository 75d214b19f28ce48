# deployer: the Lambda that provisions, updates and tears down each agent's AWS
# resources (docs/deployer.md), and the settings it reads at cold start
# (deployer-lambda/src/settings.rs).
#
# Code: the zip `cargo lambda build --release --arm64 --output-format zip -p
# deployer-lambda` writes (target/lambda/deployer-lambda/bootstrap.zip): a
# `bootstrap` binary for provided.al2023 on arm64. Terraform uploads it when it
# creates the function; after that CI owns the code (lambda:UpdateFunctionCode in
# the release workflow), so Terraform ignores later changes of the package: an apply
# from a workstation never replaces the released code with a local build. The
# configuration (environment, memory, timeout, role) stays Terraform's, except
# TEMPOVOICE_RUNTIME_IMAGE_TAG (the runtime image of agents created later): each
# release sets it to the tag it released (lambda:UpdateFunctionConfiguration, every
# other variable written back as read), so var.runtime_image_tag is only the value
# the function is created with.
#
# Sizing:
#   - timeout 900 s, the Lambda maximum: one invocation runs a whole `rollout`
#     (every agent service of the cluster, 8 at a time, 3 attempts per agent), and
#     each AWS call may take up to the SDK's operation timeout (120 s over 6
#     attempts) when AWS throttles; a fleet of hundreds of agents under throttling
#     needs minutes, and a deploy waits up to TEMPOVOICE_SERVICE_DRAIN_WAIT_SECS for a
#     draining service;
#   - 512 MB: the function is I/O bound, but Lambda allocates CPU in proportion to
#     memory, and a rollout holds hundreds of task definitions and TLS connections
#     to six AWS services at once; 512 MB keeps the cold start and JSON work short
#     at a negligible price for an infrequently invoked function.
#   - reserved concurrency: caps how many deployments hit AWS at once (each control
#     plane replica runs TEMPOVOICE_DEPLOY_WORKERS at a time, and polls rollouts
#     through the `health` action) and guarantees it capacity in the account.
#
# Invocation: the control plane invokes it synchronously (RequestResponse) and reads
# the error type (Retryable.* / NonRetryable.*) itself, so its failures never reach
# an on-failure destination. The optional SQS destination only catches asynchronous
# invocations (`--invocation-type Event`, e.g. a CI rollout that does not wait),
# whose errors nobody would otherwise see. Retrying them is safe: every action
# converges.
#
# Not in a VPC: it calls only AWS APIs and reaches nothing private; in a VPC it would
# need the NAT gateways (or endpoints for seven services) to do the same.

locals {
  # Exactly the settings deployer-lambda/src/settings.rs reads.
  environment = {
    TEMPOVOICE_PREFIX                      = var.prefix
    TEMPOVOICE_CLUSTER                     = var.cluster_name
    TEMPOVOICE_VPC_ID                      = var.vpc_id
    TEMPOVOICE_SUBNETS                     = join(",", var.subnet_ids)
    TEMPOVOICE_SECURITY_GROUPS             = join(",", var.security_group_ids)
    TEMPOVOICE_EXECUTION_ROLE_ARN          = var.execution_role_arn
    TEMPOVOICE_TASK_ROLE_BOUNDARY_ARN      = var.task_role_boundary_arn
    TEMPOVOICE_RUNTIME_REPOSITORY          = var.runtime_repository
    TEMPOVOICE_RUNTIME_IMAGE_TAG           = var.runtime_image_tag
    TEMPOVOICE_CONTAINER_PORT              = tostring(var.container_port)
    TEMPOVOICE_LOG_GROUP                   = var.agents_log_group
    TEMPOVOICE_TRANSCRIPTS_IA_DAYS         = tostring(var.transcripts.infrequent_access_days)
    TEMPOVOICE_TRANSCRIPTS_GLACIER_DAYS    = tostring(var.transcripts.glacier_days)
    TEMPOVOICE_TRANSCRIPTS_EXPIRE_DAYS     = tostring(var.transcripts.expire_days)
    TEMPOVOICE_TRANSCRIPTS_NONCURRENT_DAYS = tostring(var.transcripts.noncurrent_days)
    TEMPOVOICE_RETIRED_BUCKET_DAYS         = tostring(var.transcripts.retired_bucket_days)
    TEMPOVOICE_SERVICE_DRAIN_WAIT_SECS     = tostring(var.service_drain_wait_secs)
    # Real S3 evaluates the policy's conditions (only moto needs "false").
    TEMPOVOICE_TRANSCRIPTS_TLS_ONLY = "true"
  }
}

resource "aws_cloudwatch_log_group" "deployer" {
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_lambda_function" "deployer" {
  #checkov:skip=CKV_AWS_116:The control plane invokes synchronously and handles errors (retryable or not) itself; asynchronous failures go to the optional on-failure destination (enable_failure_queue), which supersedes a DLQ.
  #checkov:skip=CKV_AWS_117:Calls only public AWS APIs and reaches nothing inside the VPC; in a VPC it would depend on the NAT gateways or seven interface endpoints for the same calls.
  #checkov:skip=CKV_AWS_272:Code is uploaded only by the GitHub OIDC deploy role (main, v* tags, the deploy environment) from CI's own build; no AWS Signer profile is set up for cargo-lambda artifacts.
  #checkov:skip=CKV_AWS_173:The environment holds resource names, ARNs and numbers only, no secrets; Lambda encrypts it at rest with its AWS-managed key.
  function_name = var.function_name
  description   = "TempoVoice ${var.prefix}: provisions each agent's AWS resources"
  role          = var.role_arn

  runtime       = "provided.al2023"
  architectures = ["arm64"]
  handler       = "bootstrap"
  filename      = var.package
  # Absent package: only a problem when the function is created (see above).
  source_code_hash = fileexists(var.package) ? filebase64sha256(var.package) : null

  timeout                        = 900
  memory_size                    = 512
  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = local.environment
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.deployer.name
  }

  lifecycle {
    # The code is CI's (see above). So is TEMPOVOICE_RUNTIME_IMAGE_TAG after the
    # function is created: releases own that key and set it to their tag; the rest of
    # the environment stays Terraform's.
    ignore_changes = [
      filename,
      source_code_hash,
      environment[0].variables["TEMPOVOICE_RUNTIME_IMAGE_TAG"],
    ]

    # The same rules the deployer applies at cold start (settings.rs): checked at
    # plan time here rather than failing every invocation after the apply.
    precondition {
      condition     = var.transcripts.glacier_days >= var.transcripts.infrequent_access_days + 30
      error_message = "Transcript glacier_days must be at least infrequent_access_days + 30: S3 keeps objects in Standard-IA 30 days before a transition to Glacier."
    }

    precondition {
      condition     = var.transcripts.expire_days > var.transcripts.glacier_days
      error_message = "Transcript expire_days must be more than glacier_days."
    }
  }
}

# --- asynchronous failures (optional) -----------------------------------------------

resource "aws_sqs_queue" "failures" {
  count = var.enable_failure_queue ? 1 : 0

  name                      = "${var.function_name}-failures"
  message_retention_seconds = 1209600 # 14 days, the maximum
  sqs_managed_sse_enabled   = true
}

data "aws_iam_policy_document" "failures" {
  count = var.enable_failure_queue ? 1 : 0

  statement {
    sid       = "SendFailedAsyncInvocations"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failures[0].arn]
  }
}

resource "aws_iam_role_policy" "failures" {
  count = var.enable_failure_queue ? 1 : 0

  name   = "tempovoice-deployer-failures"
  role   = var.role_name
  policy = data.aws_iam_policy_document.failures[0].json
}

resource "aws_lambda_function_event_invoke_config" "deployer" {
  count = var.enable_failure_queue ? 1 : 0

  function_name                = aws_lambda_function.deployer.function_name
  maximum_event_age_in_seconds = 3600
  maximum_retry_attempts       = 2

  destination_config {
    on_failure {
      destination = aws_sqs_queue.failures[0].arn
    }
  }

  # Lambda checks the role may send to the queue when the destination is set.
  depends_on = [aws_iam_role_policy.failures]
}
