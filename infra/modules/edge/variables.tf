variable "prefix" {
  description = "Name prefix of every resource; the ALBs are {prefix}-agents-{n}."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the load balancers and security groups."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets the ALBs are placed in (at least two AZs)."
  type        = list(string)
}

variable "shard_count" {
  description = "Number of agent ALBs. Each holds at most 100 agents (target groups); the region allows 50 ALBs by default."
  type        = number

  validation {
    condition     = var.shard_count >= 1 && var.shard_count <= 50 && floor(var.shard_count) == var.shard_count
    error_message = "shard_count must be a whole number from 1 to 50."
  }
}

variable "agent_hosts" {
  description = "Public host name each ALB answers Twilio on, one per ALB in order (agent_hosts[n] is ALB n's)."
  type        = list(string)
}

variable "listener_capacity" {
  description = "Agents the control plane places on each listener (1-100; an ALB takes 100 target groups)."
  type        = number
}

variable "container_port" {
  description = "Port the agent runtime listens on."
  type        = number
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listeners; must cover every agent host and the control plane host."
  type        = string
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listeners."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "idle_timeout" {
  description = "Seconds a connection may stay idle before the ALB closes it (see main.tf)."
  type        = number

  validation {
    condition     = var.idle_timeout >= 1 && var.idle_timeout <= 4000
    error_message = "idle_timeout must be from 1 to 4000 seconds (the ALB maximum)."
  }
}

variable "deletion_protection" {
  description = "Protect the ALBs from deletion."
  type        = bool
}

variable "access_logs_bucket" {
  description = "S3 bucket for ALB access logs (null: no access logs)."
  type        = string
  default     = null
}

variable "enable_waf" {
  description = "Put a WAFv2 web ACL in front of the ALBs."
  type        = bool
}

variable "waf_rate_limit" {
  description = "Requests one IP may send in 5 minutes before WAF blocks it."
  type        = number
}

variable "log_retention_days" {
  description = "Retention of the WAF log group, in days."
  type        = number
}

variable "kms_key_arn" {
  description = "KMS key encrypting the WAF log group (null: CloudWatch Logs' own encryption)."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Hosted zone to create alias records for agent_hosts in (null: manage DNS elsewhere)."
  type        = string
  default     = null
}
