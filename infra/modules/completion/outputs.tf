output "function_name" {
  description = "Name of the completion Lambda function."
  value       = try(aws_lambda_function.this[0].function_name, null)
}

output "function_arn" {
  description = "ARN of the completion Lambda function."
  value       = try(aws_lambda_function.this[0].arn, null)
}

output "role_arn" {
  description = "ARN of the function's IAM role."
  value       = try(aws_iam_role.this[0].arn, null)
}

output "role_name" {
  description = "Name of the function's IAM role."
  value       = try(aws_iam_role.this[0].name, null)
}

output "log_group_name" {
  description = "Name of the function's CloudWatch log group."
  value       = try(aws_cloudwatch_log_group.this[0].name, null)
}

output "event_source_mapping_uuid" {
  description = "UUID of the results queue event source mapping."
  value       = try(aws_lambda_event_source_mapping.results[0].uuid, null)
}
