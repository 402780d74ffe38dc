output "dlq_alarm_arns" {
  description = "ARNs of the dead-letter queue alarms, keyed jobs / results."
  value       = { for k, a in aws_cloudwatch_metric_alarm.dlq_not_empty : k => a.arn }
}

output "archive_alarm_arns" {
  description = "ARNs of the dead-letter archive alarms, keyed jobs / results (empty without archive_names)."
  value       = { for k, a in aws_cloudwatch_metric_alarm.archive_not_empty : k => a.arn }
}

output "oldest_job_age_alarm_arn" {
  description = "ARN of the jobs queue oldest message age alarm."
  value       = aws_cloudwatch_metric_alarm.oldest_job_age.arn
}

output "completion_errors_alarm_arn" {
  description = "ARN of the completion Lambda errors alarm."
  value       = aws_cloudwatch_metric_alarm.completion_errors.arn
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
    [aws_cloudwatch_metric_alarm.oldest_job_age.alarm_name, aws_cloudwatch_metric_alarm.completion_errors.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.executions : a.alarm_name],
  )
}
