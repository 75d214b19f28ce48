variable "prefix" {
  description = "Name prefix of the platform's resources."
  type        = string
}

variable "alb_arn_suffixes" {
  description = "ARN suffixes (app/…/…) of the agent ALBs, by index; ALB 0 also serves the control plane."
  type        = list(string)
}

variable "control_plane_target_group_arn_suffix" {
  description = "ARN suffix (targetgroup/…/…) of the control plane's target group."
  type        = string
}

variable "deployer_function_name" {
  description = "Name of the deployer Lambda function."
  type        = string
}

variable "deployer_timeout_secs" {
  description = "The deployer Lambda's timeout, for the duration alarm."
  type        = number
}

variable "kms_key_arn" {
  description = "Key the alarm topic is encrypted with."
  type        = string
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each confirms by e-mail). Empty: subscribe what you use to alarm_topic_arn yourself."
  type        = list(string)
  default     = []
}

variable "target_response_time_secs" {
  description = "Average target response time of an agent ALB above which its alarm fires (webhooks answer in milliseconds; media streams are long-lived and not counted)."
  type        = number
  default     = 1
}
