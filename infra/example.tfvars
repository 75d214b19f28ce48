# Example values: copy to production.tfvars and replace every value marked CHANGE.
# terraform plan -var-file=production.tfvars

aws_region = "us-east-1"
prefix     = "tv" # CHANGE: unique per stack in the account (1-15 characters)

# Two agent ALBs, each answering Twilio on its own host; ALB 0 also serves the
# control plane. The certificate must cover all three names (or *.voice.example.com).
# CHANGE all four (route53_zone_id = null to manage DNS elsewhere).
shard_count        = 2
agent_hosts        = ["agents-0.voice.example.com", "agents-1.voice.example.com"]
control_plane_host = "app.voice.example.com"
certificate_arn    = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
route53_zone_id    = "Z0000000000000000000"

# Release images (tags are immutable: name releases, never latest).
runtime_image_tag       = "v1.0.0" # CHANGE
control_plane_image_tag = "v1.0.0" # CHANGE

# GitHub Actions release workflow (OIDC).
github_repository  = "example-org/tempovoice" # CHANGE
deploy_environment = "production"
# github_oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" # if the account has one

# Optional: everything below has production defaults.
# availability_zone_count    = 3
# availability_zones         = ["us-east-1a", "us-east-1b", "us-east-1c"]
# single_nat_gateway         = false
# enable_interface_endpoints = false
# enable_waf                 = true
# waf_rate_limit             = 20000
# alb_access_logs_bucket     = "example-alb-logs"
# log_retention_days         = 365
# db_instance_class          = "db.t4g.medium"
# db_multi_az                = true
# deployer_failure_queue     = false
# tags                       = { owner = "voice-platform" }
