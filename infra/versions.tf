# Terraform and provider requirements, and the AWS provider every module inherits.
#
# State holds the generated secrets (database password, secrets key, admin token,
# dashboard session key): keep it in an encrypted, access-controlled remote backend,
# for example an S3 bucket with SSE-KMS, versioning and native locking (Terraform
# >= 1.10) or a DynamoDB lock table. The backend is S3, configured at init:
#   terraform init -backend-config="bucket=…" -backend-config="key=tempovoice.tfstate" \
#     -backend-config="region=…" -backend-config="encrypt=true" -backend-config="use_lockfile=true"

terraform {
  required_version = ">= 1.6.0"

  backend "s3" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    random = {
      source = "hashicorp/random"
      # random_bytes (the base64 keys) exists from 3.6.0.
      version = "~> 3.6"
    }
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      project = "tempovoice"
      # Never `tempovoice:*` keys here: those are the deployer's, and its orphan sweep
      # recognises its own resources by them.
      "tempovoice-prefix" = var.prefix
      managed-by          = "terraform"
    })
  }
}
