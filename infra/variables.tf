# --- stack --------------------------------------------------------------------------

variable "aws_region" {
  description = "AWS region of the whole stack (and of the deployer's and control plane's AWS calls)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region must be a region name like us-east-1."
  }
}

variable "prefix" {
  description = "TEMPOVOICE_PREFIX: begins every resource name (buckets, target groups, ALBs, roles). 1-15 lowercase letters, digits or single hyphens, starting with a letter, not ending with a hyphen; the same rule as deployer-lambda/src/settings.rs."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}$", var.prefix))
    error_message = "prefix must be 1 to 15 lowercase letters, digits or hyphens, starting with a letter."
  }

  validation {
    condition     = !endswith(var.prefix, "-") && !strcontains(var.prefix, "--")
    error_message = "prefix must not end with a hyphen or hold two hyphens in a row (S3 bucket and ELB name rules)."
  }

  validation {
    condition     = !startswith("${var.prefix}-", "sthree-") && !startswith("${var.prefix}-", "amzn-s3-demo-")
    error_message = "prefix must not make bucket names begin with sthree- or amzn-s3-demo-: S3 reserves them."
  }
}

variable "tags" {
  description = "Extra tags for every resource Terraform creates (project = tempovoice is always set)."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of every log group (agents, control plane, deployer, flow logs, WAF, database), in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' retention values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

# --- network ------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC (/16 or larger)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zone_count" {
  description = "Availability zones to use when availability_zones is null: 2 or 3."
  type        = number
  default     = 2

  validation {
    condition     = contains([2, 3], var.availability_zone_count)
    error_message = "availability_zone_count must be 2 or 3."
  }
}

variable "availability_zones" {
  description = "Zone names to pin the subnets to (2 or 3, e.g. [\"us-east-1a\", \"us-east-1b\"]); null: the region's first availability_zone_count zones by name."
  type        = list(string)
  default     = null
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs instead of one per AZ: cheaper, but an AZ outage cuts every agent's egress."
  type        = bool
  default     = false
}

variable "enable_interface_endpoints" {
  description = "Interface endpoints for ecr.api, ecr.dkr, logs, secretsmanager and bedrock-runtime (cost note in modules/network)."
  type        = bool
  default     = false
}

# --- edge ---------------------------------------------------------------------------

variable "shard_count" {
  description = "Number of agent ALBs ({prefix}-agents-{n}); each holds up to listener_capacity agents."
  type        = number
  default     = 1

  validation {
    condition     = var.shard_count >= 1 && var.shard_count <= 50 && floor(var.shard_count) == var.shard_count
    error_message = "shard_count must be a whole number from 1 to 50 (the default ALB quota per region)."
  }
}

variable "agent_hosts" {
  description = "Public host name of each agent ALB, in ALB order; one per shard. Twilio reaches agent {id} on ALB n at https://{agent_hosts[n]}/agent/{id}/incoming-call."
  type        = list(string)

  validation {
    condition     = length(var.agent_hosts) >= 1 && alltrue([for h in var.agent_hosts : can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", h))])
    error_message = "agent_hosts must be lowercase DNS host names without scheme, port or path, like voice-1.example.com."
  }

  validation {
    condition     = length(distinct(var.agent_hosts)) == length(var.agent_hosts)
    error_message = "agent_hosts must be distinct: each ALB answers on a host of its own."
  }
}

variable "listener_capacity" {
  description = "Agents the control plane places on each ALB listener (1-100; an ALB takes 100 target groups and 100 rules)."
  type        = number
  default     = 95

  validation {
    condition     = var.listener_capacity >= 1 && var.listener_capacity <= 100 && floor(var.listener_capacity) == var.listener_capacity
    error_message = "listener_capacity must be a whole number from 1 to 100."
  }
}

variable "certificate_arn" {
  description = "ACM certificate (in aws_region) of the HTTPS listeners; must cover every agent host and the control plane host."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone to create alias records for agent_hosts and control_plane_host in (null: manage DNS elsewhere)."
  type        = string
  default     = null
}

variable "alb_idle_timeout" {
  description = "Seconds an ALB connection may stay idle (WebSocket media streams; see modules/edge)."
  type        = number
  default     = 3600
}

variable "alb_deletion_protection" {
  description = "Protect the ALBs from deletion."
  type        = bool
  default     = true
}

variable "alb_access_logs_bucket" {
  description = "Existing S3 bucket (SSE-S3, ELB log delivery allowed) for ALB access logs (null: none)."
  type        = string
  default     = null
}

variable "enable_waf" {
  description = "Protect the ALBs with a WAFv2 web ACL (managed rules and a per-IP rate limit)."
  type        = bool
  default     = true
}

variable "waf_rate_limit" {
  description = "Requests one source IP may send in 5 minutes. Twilio sends all calls' webhooks from a few addresses: keep it far above the fleet's peak call rate."
  type        = number
  default     = 20000

  validation {
    condition     = var.waf_rate_limit >= 100 && var.waf_rate_limit <= 2000000000
    error_message = "waf_rate_limit must be from 100 to 2,000,000,000."
  }
}

# --- images and registry ------------------------------------------------------------

variable "runtime_image_tag" {
  description = "TEMPOVOICE_RUNTIME_IMAGE_TAG: runtime image tag new agents get when a deploy names none, as the deployer is created; each release then sets it to its own tag (Terraform ignores later changes). Tags are immutable, so name a release (e.g. v1.4.0), never latest."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.runtime_image_tag)) && var.runtime_image_tag != "latest"
    error_message = "runtime_image_tag must be a docker tag (letters, digits, _, ., -; at most 128) and not latest (the repository's tags are immutable)."
  }
}

variable "control_plane_image_tag" {
  description = "Control plane image the service is created with: a tag of {prefix}-control-plane or a digest (sha256:...). Later releases are CI's."
  type        = string

  validation {
    condition     = can(regex("^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|sha256:[a-f0-9]{64})$", var.control_plane_image_tag))
    error_message = "control_plane_image_tag must be a docker tag or sha256:<64 hex digits>."
  }
}

variable "ecr_keep_tagged_images" {
  description = "Tagged images kept per ECR repository; keep more releases than the oldest image an agent may still run."
  type        = number
  default     = 30
}

# --- deployer -----------------------------------------------------------------------

variable "deployer_package" {
  description = "Deployer zip, relative to the directory Terraform runs in (cargo lambda build --release --arm64 --output-format zip -p deployer-lambda). Used when the function is created; CI updates the code afterwards."
  type        = string
  default     = "../target/lambda/deployer-lambda/bootstrap.zip"
}

variable "deployer_reserved_concurrency" {
  description = "Deployer invocations that may run at once; at least the control plane's replicas x TEMPOVOICE_DEPLOY_WORKERS (4) plus CI's. Reserved from the account's concurrency quota, which must keep 100 unreserved (new accounts may need a quota increase)."
  type        = number
  default     = 20

  validation {
    condition     = var.deployer_reserved_concurrency >= 1
    error_message = "deployer_reserved_concurrency must be at least 1 (0 would disable the function)."
  }
}

variable "deployer_failure_queue" {
  description = "Send failed asynchronous deployer invocations to an SQS queue (the control plane's synchronous ones never land there)."
  type        = bool
  default     = false
}

variable "service_drain_wait_secs" {
  description = "TEMPOVOICE_SERVICE_DRAIN_WAIT_SECS: how long a deploy waits for a deleted service of the same name to finish draining (0-840)."
  type        = number
  default     = 60

  validation {
    condition     = var.service_drain_wait_secs >= 0 && var.service_drain_wait_secs <= 840
    error_message = "service_drain_wait_secs must be from 0 to 840."
  }
}

variable "transcripts_ia_days" {
  description = "TEMPOVOICE_TRANSCRIPTS_IA_DAYS: days before transcripts move to Standard-IA (at least 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.transcripts_ia_days >= 30 && var.transcripts_ia_days <= 3650
    error_message = "transcripts_ia_days must be from 30 to 3650."
  }
}

variable "transcripts_glacier_days" {
  description = "TEMPOVOICE_TRANSCRIPTS_GLACIER_DAYS: days before transcripts move to Glacier (at least transcripts_ia_days + 30)."
  type        = number
  default     = 90

  validation {
    condition     = var.transcripts_glacier_days >= 1 && var.transcripts_glacier_days <= 3650
    error_message = "transcripts_glacier_days must be from 1 to 3650."
  }
}

variable "transcripts_expire_days" {
  description = "TEMPOVOICE_TRANSCRIPTS_EXPIRE_DAYS: days after which transcripts expire (more than transcripts_glacier_days)."
  type        = number
  default     = 365

  validation {
    condition     = var.transcripts_expire_days >= 1 && var.transcripts_expire_days <= 36500
    error_message = "transcripts_expire_days must be from 1 to 36500."
  }
}

variable "transcripts_noncurrent_days" {
  description = "TEMPOVOICE_TRANSCRIPTS_NONCURRENT_DAYS: days an expired, deleted or overwritten transcript version stays recoverable."
  type        = number
  default     = 30

  validation {
    condition     = var.transcripts_noncurrent_days >= 1 && var.transcripts_noncurrent_days <= 3650
    error_message = "transcripts_noncurrent_days must be from 1 to 3650."
  }
}

variable "retired_bucket_days" {
  description = "TEMPOVOICE_RETIRED_BUCKET_DAYS: days a deleted agent's retained transcript bucket is kept before a deleting sweep removes it."
  type        = number
  default     = 90

  validation {
    condition     = var.retired_bucket_days >= 1 && var.retired_bucket_days <= 36500
    error_message = "retired_bucket_days must be from 1 to 36500."
  }
}

# --- control plane ------------------------------------------------------------------

variable "control_plane_host" {
  description = "Public host name of the control plane's API and dashboard, served by ALB 0 (not one of agent_hosts)."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.control_plane_host))
    error_message = "control_plane_host must be a lowercase DNS host name without scheme, port or path."
  }
}

variable "control_plane_rule_priority" {
  description = "Priority of the control plane's host rule on ALB 0 (1-1000; agent rules start at 1001)."
  type        = number
  default     = 10
}

variable "control_plane_desired_count" {
  description = "Control plane replicas."
  type        = number
  default     = 2

  validation {
    condition     = var.control_plane_desired_count >= 1
    error_message = "control_plane_desired_count must be at least 1."
  }
}

variable "control_plane_cpu" {
  description = "Control plane task CPU units."
  type        = number
  default     = 512
}

variable "control_plane_memory" {
  description = "Control plane task memory (MiB)."
  type        = number
  default     = 1024
}

variable "control_plane_cpu_architecture" {
  description = "CPU architecture the control plane tasks run on: ARM64 (Graviton, ~20 % cheaper) or X86_64; the release image is built for both."
  type        = string
  default     = "ARM64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.control_plane_cpu_architecture)
    error_message = "control_plane_cpu_architecture must be X86_64 or ARM64."
  }
}

variable "targets_per_alb" {
  description = "TEMPOVOICE_TARGETS_PER_ALB: the account's quota of targets per ALB (raise it in Service Quotas first)."
  type        = number
  default     = 1000

  validation {
    condition     = var.targets_per_alb >= 2 && var.targets_per_alb <= 100000
    error_message = "targets_per_alb must be from 2 to 100000."
  }
}

variable "target_group_quota" {
  description = "TEMPOVOICE_TARGET_GROUP_QUOTA: the account's quota of target groups per region."
  type        = number
  default     = 3000

  validation {
    condition     = var.target_group_quota >= 1 && var.target_group_quota <= 1000000
    error_message = "target_group_quota must be from 1 to 1000000."
  }
}

# --- database -----------------------------------------------------------------------

variable "db_engine_version" {
  description = "PostgreSQL major version of the control plane's database."
  type        = string
  default     = "16"
}

variable "db_instance_class" {
  description = "RDS instance class of the control plane's database."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage" {
  description = "Initial database storage, GiB."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage" {
  description = "Database storage autoscaling ceiling, GiB."
  type        = number
  default     = 500
}

variable "db_multi_az" {
  description = "Keep a synchronous standby in a second AZ (failover in 1-2 minutes)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days automated database backups are kept (7-35)."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be from 7 to 35."
  }
}

variable "db_deletion_protection" {
  description = "Protect the database from deletion."
  type        = bool
  default     = true
}

# --- CI -----------------------------------------------------------------------------

variable "github_repository" {
  description = "GitHub repository (owner/name) whose release workflow may assume the deploy role."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "deploy_environment" {
  description = "GitHub Actions environment whose jobs may assume the deploy role."
  type        = string
  default     = "production"
}

variable "github_oidc_provider_arn" {
  description = "ARN of the account's existing token.actions.githubusercontent.com OIDC provider (null: create one; an account holds one per URL)."
  type        = string
  default     = null
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the platform's alarm topic (each confirms by e-mail); empty: subscribe your own endpoint to the alarm_topic_arn output."
  type        = list(string)
  default     = []
}
