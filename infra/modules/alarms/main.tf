# CloudWatch alarms for callback-bridge:
# - any message in either dead-letter queue, or in either dead-letter archive
#   (with dead-letter handling, letters leave the DLQs within seconds and wait
#   in the archives: docs/dead-letters.md),
# - the oldest job waiting (or in flight) longer than a threshold, and the oldest
#   result waiting for the completion Lambda,
# - completion Lambda errors, throttles of the completion and dead-letter Lambdas,
# - what the handlers count (namespace CallbackBridge, embedded metric format):
#   jobs dead-lettered (DeadLettersFailed, bridge/dead_letter.py) and stale,
#   malformed or invalid results and outputs (bridge/completion.py),
# - state machine executions failed / timed out. ExecutionsFailed only means
#   failed work when the state machine's failure_policy is "fail": with "report"
#   the Map catches every job failure and the execution succeeds.
# Actions go to the SNS topics in alarm_actions. create = false makes nothing.

locals {
  create     = var.create
  ok_actions = var.ok_actions_enabled ? var.alarm_actions : []

  dlqs = {
    jobs    = var.jobs_dlq_name
    results = var.results_dlq_name
  }

  executions = {
    "failed"    = "ExecutionsFailed"
    "timed-out" = "ExecutionsTimedOut"
  }

  # Lambda functions whose throttles alarm (the dead-letter one when it is deployed).
  throttled_functions = merge(
    { completion = var.completion_function_name },
    var.dead_letter_function_name == null ? {} : { "dead-letter" = var.dead_letter_function_name },
  )

  # The handlers' own metrics: each key names an alarm; service is the Powertools service
  # dimension each handler publishes with (bridge/completion.py SERVICE, bridge/dead_letter.py).
  handler_metrics = merge(
    {
      "stale-results" = {
        metric  = "StaleResults"
        service = var.completion_service_name
        what    = "results arrived for tasks already closed (execution stopped or timed out, or a job ran twice): the work was wasted"
      }
      "malformed-results" = {
        metric  = "MalformedResults"
        service = var.completion_service_name
        what    = "result messages broke the contract (copied to the results DLQ with the reason)"
      }
      "invalid-results" = {
        metric  = "InvalidResults"
        service = var.completion_service_name
        what    = "results with a readable token but an invalid body failed their task with Bridge.InvalidResult"
      }
      "invalid-outputs" = {
        metric  = "InvalidOutputs"
        service = var.completion_service_name
        what    = "job outputs Step Functions refused (too large or not JSON) failed their task with Bridge.InvalidOutput"
      }
    },
    var.dead_letter_function_name == null ? {} : {
      "dead-lettered-jobs" = {
        metric  = "DeadLettersFailed"
        service = var.dead_letter_service_name
        what    = "dead letters failed their task with Bridge.DeadLettered (a job kept failing to run, or its worker kept dying)"
      }
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  for_each = local.create ? local.dlqs : {}

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
  for_each = local.create ? var.archive_names : {}

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
  count = local.create ? 1 : 0

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

# Results are small and handled in seconds: an old one means the completion Lambda is not
# consuming (mapping disabled, throttled, failing) and executions wait for nothing.
resource "aws_cloudwatch_metric_alarm" "oldest_result_age" {
  count = local.create && var.results_queue_name != null ? 1 : 0

  alarm_name        = "${var.name}-oldest-result-age"
  alarm_description = "callback-bridge: a result in ${coalesce(var.results_queue_name, "-")} has waited more than ${var.oldest_result_age_threshold_seconds} s for the completion Lambda (event source mapping disabled, function throttled or failing): executions are waiting for results already there."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateAgeOfOldestMessage"
  dimensions = {
    QueueName = var.results_queue_name
  }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.oldest_result_age_threshold_seconds
  treat_missing_data  = "notBreaching"

  alarm_actions = var.alarm_actions
  ok_actions    = local.ok_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "completion_errors" {
  count = local.create ? 1 : 0

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

resource "aws_cloudwatch_metric_alarm" "lambda_throttles" {
  for_each = local.create ? local.throttled_functions : {}

  alarm_name        = "${var.name}-${each.key}-throttles"
  alarm_description = "callback-bridge: the ${each.key} Lambda ${each.value} was throttled (reserved or account concurrency exhausted): its records wait, are retried, and may be dead-lettered. Raise its reserved concurrency or lower the event source mapping's maximum_concurrency."

  namespace   = "AWS/Lambda"
  metric_name = "Throttles"
  dimensions = {
    FunctionName = each.value
  }
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.lambda_throttles_threshold
  treat_missing_data  = "notBreaching"

  alarm_actions = var.alarm_actions
  ok_actions    = local.ok_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "handler_metrics" {
  for_each = local.create ? local.handler_metrics : {}

  alarm_name        = "${var.name}-${each.key}"
  alarm_description = "callback-bridge: ${each.value.what} (${var.metrics_namespace} ${each.value.metric}, service ${each.value.service})."

  namespace   = var.metrics_namespace
  metric_name = each.value.metric
  dimensions = {
    service = each.value.service
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

# Workers the bootstrap or the OnFailure unit asked the group to replace (a worker that cannot
# install, import its handler or stay up): one can be bad luck, several mean a broken release.
resource "aws_cloudwatch_metric_alarm" "workers_replaced" {
  count = local.create && var.autoscaling_group_name != null ? 1 : 0

  alarm_name        = "${var.name}-workers-replaced"
  alarm_description = "callback-bridge: ${var.workers_replaced_threshold} or more workers of ${coalesce(var.autoscaling_group_name, "-")} failed their bootstrap or died for good within an hour and were replaced (${var.metrics_namespace} WorkersReplaced; /var/log/callback-bridge-bootstrap.log on the instance)."

  namespace   = var.metrics_namespace
  metric_name = "WorkersReplaced"
  dimensions = {
    service              = "callback-bridge-worker"
    AutoScalingGroupName = var.autoscaling_group_name
  }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.workers_replaced_threshold
  treat_missing_data  = "notBreaching"

  alarm_actions = var.alarm_actions
  ok_actions    = local.ok_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "executions" {
  for_each = local.create ? local.executions : {}

  alarm_name        = "${var.name}-executions-${each.key}"
  alarm_description = "callback-bridge: state machine executions ${each.key} (${each.value}). With failure_policy = \"fail\" a failed execution means failed jobs; with \"report\" job failures are data in a succeeded execution's output and only the executions themselves can fail."

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
