variable "prefix" {
  description = "TEMPOVOICE_PREFIX: name prefix of every agent resource."
  type        = string
}

variable "function_name" {
  description = "Name of the Lambda function."
  type        = string
}

variable "package" {
  description = "Path of the deployer's zip (cargo lambda build --release --arm64 --output-format zip -p deployer-lambda); used when the function is created."
  type        = string
}

variable "role_arn" {
  description = "Execution role of the function."
  type        = string
}

variable "role_name" {
  description = "Name of the execution role (gets the failure queue permission)."
  type        = string
}

variable "reserved_concurrency" {
  description = "Invocations that may run at once (reserved from the account's concurrency)."
  type        = number
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days."
  type        = number
}

variable "kms_key_arn" {
  description = "KMS key encrypting the function's log group (null: CloudWatch Logs' own encryption)."
  type        = string
  default     = null
}

variable "enable_failure_queue" {
  description = "Send failed asynchronous invocations to an SQS queue."
  type        = bool
}

variable "cluster_name" {
  description = "TEMPOVOICE_CLUSTER."
  type        = string
}

variable "vpc_id" {
  description = "TEMPOVOICE_VPC_ID: VPC of the agents' target groups."
  type        = string
}

variable "subnet_ids" {
  description = "TEMPOVOICE_SUBNETS: private subnets of agent tasks."
  type        = list(string)
}

variable "security_group_ids" {
  description = "TEMPOVOICE_SECURITY_GROUPS: security groups of agent tasks."
  type        = list(string)
}

variable "execution_role_arn" {
  description = "TEMPOVOICE_EXECUTION_ROLE_ARN: execution role of agent tasks."
  type        = string
}

variable "task_role_boundary_arn" {
  description = "TEMPOVOICE_TASK_ROLE_BOUNDARY_ARN: permission boundary of agents' task roles."
  type        = string
}

variable "runtime_repository" {
  description = "TEMPOVOICE_RUNTIME_REPOSITORY: ECR repository name of the runtime image."
  type        = string
}

variable "runtime_image_tag" {
  description = "TEMPOVOICE_RUNTIME_IMAGE_TAG: runtime image tag of new agents when a deploy names none, as the function is created; releases set it afterwards (ignored by Terraform then)."
  type        = string
}

variable "container_port" {
  description = "TEMPOVOICE_CONTAINER_PORT: port the runtime listens on."
  type        = number
}

variable "agents_log_group" {
  description = "TEMPOVOICE_LOG_GROUP: log group of agent tasks."
  type        = string
}

variable "transcripts" {
  description = "Transcript retention: TEMPOVOICE_TRANSCRIPTS_IA_DAYS, _GLACIER_DAYS, _EXPIRE_DAYS, _NONCURRENT_DAYS and TEMPOVOICE_RETIRED_BUCKET_DAYS."
  type = object({
    infrequent_access_days = number
    glacier_days           = number
    expire_days            = number
    noncurrent_days        = number
    retired_bucket_days    = number
  })
}

variable "service_drain_wait_secs" {
  description = "TEMPOVOICE_SERVICE_DRAIN_WAIT_SECS: how long a deploy waits for a deleted service of the same name to drain."
  type        = number
}
