output "function_name" {
  description = "Name of the dead-letter Lambda function, or null when create is false."
  value       = try(aws_lambda_function.this[0].function_name, null)
}

output "function_arn" {
  description = "ARN of the dead-letter Lambda function, or null when create is false."
  value       = try(aws_lambda_function.this[0].arn, null)
}

output "role_arn" {
  description = "ARN of the function's IAM role, or null when create is false."
  value       = try(aws_iam_role.this[0].arn, null)
}

output "role_name" {
  description = "Name of the function's IAM role, or null when create is false."
  value       = try(aws_iam_role.this[0].name, null)
}

output "log_group_name" {
  description = "Name of the function's CloudWatch log group, or null when create is false."
  value       = try(aws_cloudwatch_log_group.this[0].name, null)
}

output "event_source_mapping_uuids" {
  description = "UUIDs of the DLQ event source mappings, keyed jobs / results (empty when create is false)."
  value       = { for k, m in aws_lambda_event_source_mapping.this : k => m.uuid }
}

output "jobs_archive_url" {
  description = "URL of the jobs archive the function writes to (BRIDGE_JOBS_ARCHIVE_URL), or null when create is false."
  value       = local.create ? var.jobs_archive_url : null
}

output "results_archive_url" {
  description = "URL of the results archive the function writes to (BRIDGE_RESULTS_ARCHIVE_URL), or null when create is false."
  value       = local.create ? var.results_archive_url : null
}
