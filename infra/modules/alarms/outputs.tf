output "dlq_alarm_arns" {
  description = "ARNs of the dead-letter queue alarms, keyed jobs / results (empty when create is false)."
  value       = { for k, a in aws_cloudwatch_metric_alarm.dlq_not_empty : k => a.arn }
}

output "archive_alarm_arns" {
  description = "ARNs of the dead-letter archive alarms, keyed jobs / results (empty without archive_names)."
  value       = { for k, a in aws_cloudwatch_metric_alarm.archive_not_empty : k => a.arn }
}

output "oldest_job_age_alarm_arn" {
  description = "ARN of the jobs queue oldest message age alarm (null when create is false)."
  value       = try(aws_cloudwatch_metric_alarm.oldest_job_age[0].arn, null)
}

output "oldest_result_age_alarm_arn" {
  description = "ARN of the results queue oldest message age alarm (null without results_queue_name)."
  value       = try(aws_cloudwatch_metric_alarm.oldest_result_age[0].arn, null)
}

output "completion_errors_alarm_arn" {
  description = "ARN of the completion Lambda errors alarm (null when create is false)."
  value       = try(aws_cloudwatch_metric_alarm.completion_errors[0].arn, null)
}

output "throttle_alarm_arns" {
  description = "ARNs of the Lambda throttles alarms, keyed completion / dead-letter."
  value       = { for k, a in aws_cloudwatch_metric_alarm.lambda_throttles : k => a.arn }
}

output "handler_metric_alarm_arns" {
  description = "ARNs of the alarms on the handlers' CallbackBridge metrics, keyed stale-results / malformed-results / invalid-results / invalid-outputs / dead-lettered-jobs."
  value       = { for k, a in aws_cloudwatch_metric_alarm.handler_metrics : k => a.arn }
}

output "execution_alarm_arns" {
  description = "ARNs of the state machine alarms, keyed failed / timed-out."
  value       = { for k, a in aws_cloudwatch_metric_alarm.executions : k => a.arn }
}

output "alarm_names" {
  description = "Names of all alarms created by the module."
  value = concat(
    [for a in aws_cloudwatch_metric_alarm.dlq_not_empty : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.archive_not_empty : a.alarm_name],
    aws_cloudwatch_metric_alarm.oldest_job_age[*].alarm_name,
    aws_cloudwatch_metric_alarm.oldest_result_age[*].alarm_name,
    aws_cloudwatch_metric_alarm.completion_errors[*].alarm_name,
    [for a in aws_cloudwatch_metric_alarm.lambda_throttles : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.handler_metrics : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.executions : a.alarm_name],
  )
}
