variable "prefix" {
  description = "Name prefix of every role and policy."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster of the agents and the control plane."
  type        = string
}

variable "runtime_repository" {
  description = "Name of the agent runtime's ECR repository."
  type        = string
}

variable "control_plane_repository" {
  description = "Name of the control plane's ECR repository."
  type        = string
}

variable "agents_log_group" {
  description = "Log group of every agent task."
  type        = string
}

variable "control_plane_log_group" {
  description = "Log group of the control plane's tasks."
  type        = string
}

variable "deployer_function_name" {
  description = "Name of the deployer Lambda function."
  type        = string
}

variable "deployer_log_group" {
  description = "Log group of the deployer Lambda function."
  type        = string
}

variable "control_plane_service_name" {
  description = "Name of the control plane's ECS service."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key the control plane's secrets are encrypted with."
  type        = string
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose release jobs may assume the deploy role."
  type        = string
}

variable "deploy_environment" {
  description = "GitHub Actions environment whose jobs may assume the deploy role."
  type        = string
}

variable "github_oidc_provider_arn" {
  description = "ARN of the account's existing GitHub OIDC provider (null: create it)."
  type        = string
  default     = null
}
