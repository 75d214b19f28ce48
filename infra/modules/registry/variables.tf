variable "prefix" {
  description = "Name prefix of the repositories."
  type        = string
}

variable "keep_tagged_images" {
  description = "Tagged images kept per repository; older ones expire."
  type        = number
  default     = 30

  validation {
    condition     = var.keep_tagged_images >= 1
    error_message = "keep_tagged_images must be at least 1."
  }
}

variable "kms_key_arn" {
  description = "KMS key encrypting the repositories (null: AES256)."
  type        = string
  default     = null
}
