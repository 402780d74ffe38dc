# CloudWatch alarms for callback-bridge:
# - any message in either dead-letter queue, or in either dead-letter archive
#   (with dead-letter handling, letters leave the DLQs within seconds and wait
#   in the archives: docs/dead-letters.md),
# - the oldest job waiting (or in flight) longer than a threshold,
# - completion Lambda errors,
# - state machine executions failed / timed out.
# Actions go to the SNS topics in alarm_actions.

locals {
  ok_actions = var.ok_actions_enabled ? var.alarm_actions : []

  dlqs = {
    jobs    = var.jobs_dlq_name
    results = var.results_dlq_name
  }

  executions = {
    "failed"    = "ExecutionsFailed"
    "timed-out" = "ExecutionsTimedOut"
  }
}

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  for_each = local.dlqs

  alarm_name        = "${var.name}-${each.key}-dlq-not-empty"
  alarm_description = "callback-bridge: messages in the ${each.key} dead-letter queue ${each.value}. Inspect them, fix the cause, then redrive or delete."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  dimensions = {
    QueueName = each.value
  }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  alarm_actions = var.alarm_actions
  ok_actions    = local.ok_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "archive_not_empty" {
  for_each = var.archive_names

  alarm_name        = "${var.name}-${each.key}-dead-letters-not-empty"
  alarm_description = "callback-bridge: dead letters archived in ${each.value} (their executions were told: Bridge.DeadLettered, or the result delivered). Inspect them with 'callback-bridge dlq list', fix the cause, then redrive or delete."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  dimensions = {
    QueueName = each.value
  }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  alarm_actions = var.alarm_actions
  ok_actions    = local.ok_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "oldest_job_age" {
  alarm_name        = "${var.name}-oldest-job-age"
  alarm_description = "callback-bridge: a job message in ${var.jobs_queue_name} is older than ${var.oldest_job_age_threshold_seconds} s (workers missing, too few, or stuck). In-flight jobs count too: set the threshold above your longest job."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateAgeOfOldestMessage"
  dimensions = {
    QueueName = var.jobs_queue_name
  }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = var.oldest_job_age_evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.oldest_job_age_threshold_seconds
  treat_missing_data  = "notBreaching"

  alarm_actions = var.alarm_actions
  ok_actions    = local.ok_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "completion_errors" {
  alarm_name        = "${var.name}-completion-errors"
  alarm_description = "callback-bridge: the completion Lambda ${var.completion_function_name} failed whole invocations (results are retried, then dead-lettered)."

  namespace   = "AWS/Lambda"
  metric_name = "Errors"
  dimensions = {
    FunctionName = var.completion_function_name
  }
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.completion_errors_threshold
  treat_missing_data  = "notBreaching"

  alarm_actions = var.alarm_actions
  ok_actions    = local.ok_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "executions" {
  for_each = local.executions

  alarm_name        = "${var.name}-executions-${each.key}"
  alarm_description = "callback-bridge: state machine executions ${each.key} (${each.value})."

  namespace   = "AWS/States"
  metric_name = each.value
  dimensions = {
    StateMachineArn = var.state_machine_arn
  }
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  alarm_actions = var.alarm_actions
  ok_actions    = local.ok_actions

  tags = var.tags
}
