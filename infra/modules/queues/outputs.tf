output "jobs_queue_url" {
  description = "URL of the jobs queue (BRIDGE_JOBS_QUEUE_URL; the state machine's jobs_queue_url)."
  value       = try(aws_sqs_queue.this["jobs"].url, null)
}

output "jobs_queue_arn" {
  description = "ARN of the jobs queue."
  value       = try(aws_sqs_queue.this["jobs"].arn, null)
}

output "jobs_queue_name" {
  description = "Name of the jobs queue (CloudWatch QueueName dimension)."
  value       = try(aws_sqs_queue.this["jobs"].name, null)
}

output "jobs_dlq_url" {
  description = "URL of the jobs dead-letter queue (BRIDGE_JOBS_DLQ_URL)."
  value       = try(aws_sqs_queue.dlq["jobs"].url, null)
}

output "jobs_dlq_arn" {
  description = "ARN of the jobs dead-letter queue."
  value       = try(aws_sqs_queue.dlq["jobs"].arn, null)
}

output "jobs_dlq_name" {
  description = "Name of the jobs dead-letter queue."
  value       = try(aws_sqs_queue.dlq["jobs"].name, null)
}

output "results_queue_url" {
  description = "URL of the results queue (BRIDGE_RESULTS_QUEUE_URL)."
  value       = try(aws_sqs_queue.this["results"].url, null)
}

output "results_queue_arn" {
  description = "ARN of the results queue (event source of the completion Lambda)."
  value       = try(aws_sqs_queue.this["results"].arn, null)
}

output "results_queue_name" {
  description = "Name of the results queue."
  value       = try(aws_sqs_queue.this["results"].name, null)
}

output "results_dlq_url" {
  description = "URL of the results dead-letter queue (BRIDGE_RESULTS_DLQ_URL)."
  value       = try(aws_sqs_queue.dlq["results"].url, null)
}

output "results_dlq_arn" {
  description = "ARN of the results dead-letter queue."
  value       = try(aws_sqs_queue.dlq["results"].arn, null)
}

output "results_dlq_name" {
  description = "Name of the results dead-letter queue."
  value       = try(aws_sqs_queue.dlq["results"].name, null)
}

output "jobs_dlq_visibility_timeout_seconds" {
  description = "Visibility timeout of the jobs DLQ: the dead_letter module checks it is at least its function timeout (Lambda refuses an event source otherwise)."
  value       = try(aws_sqs_queue.dlq["jobs"].visibility_timeout_seconds, null)
}

output "results_dlq_visibility_timeout_seconds" {
  description = "Visibility timeout of the results DLQ: the dead_letter module checks it is at least its function timeout (Lambda refuses an event source otherwise)."
  value       = try(aws_sqs_queue.dlq["results"].visibility_timeout_seconds, null)
}

output "jobs_archive_url" {
  description = "URL of the jobs dead-letter archive <name>-jobs-dead-letters (BRIDGE_JOBS_ARCHIVE_URL), or null without dead_letter_handling."
  value       = try(aws_sqs_queue.archive["jobs"].url, null)
}

output "jobs_archive_arn" {
  description = "ARN of the jobs dead-letter archive, or null without dead_letter_handling."
  value       = try(aws_sqs_queue.archive["jobs"].arn, null)
}

output "jobs_archive_name" {
  description = "Name of the jobs dead-letter archive (CloudWatch QueueName dimension), or null without dead_letter_handling."
  value       = try(aws_sqs_queue.archive["jobs"].name, null)
}

output "results_archive_url" {
  description = "URL of the results dead-letter archive <name>-results-dead-letters (BRIDGE_RESULTS_ARCHIVE_URL), or null without dead_letter_handling."
  value       = try(aws_sqs_queue.archive["results"].url, null)
}

output "results_archive_arn" {
  description = "ARN of the results dead-letter archive, or null without dead_letter_handling."
  value       = try(aws_sqs_queue.archive["results"].arn, null)
}

output "results_archive_name" {
  description = "Name of the results dead-letter archive (CloudWatch QueueName dimension), or null without dead_letter_handling."
  value       = try(aws_sqs_queue.archive["results"].name, null)
}

output "dead_letter_handling" {
  description = "Whether dead-letter handling is deployed (archives and DLQ redrive policies); pass it to the dead_letter module's create."
  value       = var.dead_letter_handling
}

output "results_visibility_timeout_seconds" {
  description = "Visibility timeout of the results queue, for the completion module's 6x-Lambda-timeout check."
  value       = try(aws_sqs_queue.this["results"].visibility_timeout_seconds, null)
}

output "kms_master_key_id" {
  description = "KMS key used for the queues (archives included), or null when SQS-managed SSE is used."
  value       = var.kms_master_key_id
}
