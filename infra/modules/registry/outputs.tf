output "repository_names" {
  description = "Repository names: agent_runtime, control_plane."
  value       = { for k, r in aws_ecr_repository.this : k => r.name }
}

output "repository_urls" {
  description = "Repository URLs (registry/name): agent_runtime, control_plane."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "repository_arns" {
  description = "Repository ARNs: agent_runtime, control_plane."
  value       = { for k, r in aws_ecr_repository.this : k => r.arn }
}
