variable "prefix" {
  description = "Name prefix; the cluster is named exactly this."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the agents' and the control plane's log groups, in days."
  type        = number
}

variable "kms_key_arn" {
  description = "KMS key encrypting the log groups (null: CloudWatch Logs' own encryption)."
  type        = string
  default     = null
}
