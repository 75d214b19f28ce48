variable "prefix" {
  description = "TEMPOVOICE_PREFIX, and the name prefix of this module's resources."
  type        = string
}

# --- placement ----------------------------------------------------------------------

variable "vpc_id" {
  description = "VPC of the service and the database."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the tasks and the database."
  type        = list(string)
}

variable "cluster_arn" {
  description = "ECS cluster the service runs in."
  type        = string
}

variable "alb_security_group_id" {
  description = "Security group of the ALBs (gets an egress rule to the tasks)."
  type        = string
}

variable "https_listener_arn" {
  description = "HTTPS listener of ALB 0, which gets the control plane's host rule."
  type        = string
}

variable "alb_dns_name" {
  description = "DNS name of ALB 0 (for the alias record)."
  type        = string
}

variable "alb_zone_id" {
  description = "Hosted zone ID of ALB 0 (for the alias record)."
  type        = string
}

variable "control_plane_host" {
  description = "Public host name of the API and dashboard."
  type        = string
}

variable "listener_rule_priority" {
  description = "Priority of the host rule on ALB 0's listener: 1-1000 (agent rules take 1001 upward)."
  type        = number
  default     = 10

  validation {
    condition     = var.listener_rule_priority >= 1 && var.listener_rule_priority <= 1000
    error_message = "listener_rule_priority must be from 1 to 1000: the control plane assigns agent rules priorities from 1001."
  }
}

variable "route53_zone_id" {
  description = "Hosted zone for an alias record of control_plane_host (null: manage DNS elsewhere)."
  type        = string
  default     = null
}

# --- the service --------------------------------------------------------------------

variable "image" {
  description = "Control plane image: repository URL with :tag or @sha256:digest."
  type        = string
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64."
  type        = string
}

variable "cpu" {
  description = "Task CPU units (Fargate sizes)."
  type        = number
}

variable "memory" {
  description = "Task memory in MiB (Fargate sizes)."
  type        = number
}

variable "desired_count" {
  description = "Replicas of the control plane."
  type        = number
}

variable "task_role_arn" {
  description = "Task role of the control plane."
  type        = string
}

variable "execution_role_arn" {
  description = "Execution role of the control plane."
  type        = string
}

variable "log_group_name" {
  description = "Log group of the control plane's tasks."
  type        = string
}

variable "deployer_function_name" {
  description = "DEPLOYER_LAMBDA_FUNCTION."
  type        = string
}

variable "listeners_setting" {
  description = "TEMPOVOICE_LISTENERS."
  type        = string
}

variable "targets_per_alb" {
  description = "TEMPOVOICE_TARGETS_PER_ALB: the account's quota of targets per ALB."
  type        = number
}

variable "target_group_quota" {
  description = "TEMPOVOICE_TARGET_GROUP_QUOTA: the account's quota of target groups per region."
  type        = number
}

# --- data ---------------------------------------------------------------------------

variable "kms_key_arn" {
  description = "KMS key of the secrets, the database and its log groups."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the database's exported log groups, in days."
  type        = number
}

variable "db_engine_version" {
  description = "PostgreSQL version (major only: minor versions are upgraded automatically)."
  type        = string
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "db_allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
}

variable "db_multi_az" {
  description = "Run a synchronous standby in another AZ."
  type        = bool
}

variable "db_backup_retention_days" {
  description = "Days automated backups are kept."
  type        = number
}

variable "db_deletion_protection" {
  description = "Protect the database from deletion."
  type        = bool
}
