output "cluster_name" {
  description = "Name of the ECS cluster (TEMPOVOICE_CLUSTER)."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "agents_log_group_name" {
  description = "Log group of every agent task (TEMPOVOICE_LOG_GROUP)."
  value       = aws_cloudwatch_log_group.agents.name
}

output "control_plane_log_group_name" {
  description = "Log group of the control plane's tasks."
  value       = aws_cloudwatch_log_group.control_plane.name
}
