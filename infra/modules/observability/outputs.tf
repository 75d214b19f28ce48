output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies (alarm and back to OK)."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_name" {
  description = "The platform's CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.platform.dashboard_name
}
