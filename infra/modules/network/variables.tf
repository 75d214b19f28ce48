variable "prefix" {
  description = "Name prefix of every resource."
  type        = string
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC; a /16 leaves room for three /20 private subnets."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && try(tonumber(split("/", var.vpc_cidr)[1]) <= 16, false)
    error_message = "vpc_cidr must be an IPv4 CIDR block of /16 or larger."
  }
}

variable "az_count" {
  description = "Availability zones to spread subnets (and NAT gateways) over when availability_zones is null: 2 or 3."
  type        = number

  validation {
    condition     = contains([2, 3], var.az_count)
    error_message = "az_count must be 2 or 3."
  }
}

variable "availability_zones" {
  description = "Zone names to use, pinned (2 or 3; null: the first az_count zones of the region by name)."
  type        = list(string)
  default     = null

  validation {
    condition     = var.availability_zones == null || try(length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3, false)
    error_message = "availability_zones must name 2 or 3 zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper; an AZ outage cuts all egress) instead of one per AZ."
  type        = bool
}

variable "enable_interface_endpoints" {
  description = "Create interface endpoints for interface_endpoint_services (see the cost note in main.tf)."
  type        = bool
}

variable "interface_endpoint_services" {
  description = "Services to give interface endpoints when enable_interface_endpoints is true."
  type        = list(string)
  default     = ["ecr.api", "ecr.dkr", "logs", "secretsmanager", "bedrock-runtime"]
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow log group, in days."
  type        = number
}

variable "kms_key_arn" {
  description = "KMS key encrypting the flow log group (null: CloudWatch Logs' own encryption)."
  type        = string
  default     = null
}
