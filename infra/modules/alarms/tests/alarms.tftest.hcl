# The alarms in real Terraform (mock provider, offline; tests/infra/test_hardening.py runs it):
# which alarms exist with and without the optional inputs, and create = false.

mock_provider "aws" {}

variables {
  jobs_queue_name          = "callback-bridge-jobs"
  jobs_dlq_name            = "callback-bridge-jobs-dlq"
  results_dlq_name         = "callback-bridge-results-dlq"
  completion_function_name = "callback-bridge-completion"
  state_machine_arn        = "arn:aws:states:eu-west-1:123456789012:stateMachine:callback-bridge"
}

run "everything_with_the_optional_inputs" {
  command = plan

  variables {
    results_queue_name        = "callback-bridge-results"
    dead_letter_function_name = "callback-bridge-dead-letter"
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.oldest_result_age) == 1 && aws_cloudwatch_metric_alarm.oldest_result_age[0].dimensions.QueueName == "callback-bridge-results"
    error_message = "results queue age alarm"
  }

  assert {
    condition     = toset(keys(aws_cloudwatch_metric_alarm.lambda_throttles)) == toset(["completion", "dead-letter"])
    error_message = "throttles alarms: ${jsonencode(keys(aws_cloudwatch_metric_alarm.lambda_throttles))}"
  }

  assert {
    condition     = toset([for a in aws_cloudwatch_metric_alarm.handler_metrics : a.metric_name]) == toset(["StaleResults", "MalformedResults", "InvalidResults", "InvalidOutputs", "DeadLettersFailed"])
    error_message = "handler metric alarms"
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.handler_metrics["dead-lettered-jobs"].namespace == "CallbackBridge" && aws_cloudwatch_metric_alarm.handler_metrics["dead-lettered-jobs"].dimensions.service == "callback-bridge-dead-letters"
    error_message = "DeadLettersFailed is published by the dead-letter handler's service"
  }
}

run "without_the_optional_inputs" {
  command = plan

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.oldest_result_age) == 0 && keys(aws_cloudwatch_metric_alarm.lambda_throttles) == ["completion"] && !contains(keys(aws_cloudwatch_metric_alarm.handler_metrics), "dead-lettered-jobs")
    error_message = "no dead-letter or results-age alarms without their inputs"
  }
}

run "create_false_creates_nothing" {
  command = plan

  variables {
    create = false
  }

  assert {
    condition     = length(output.alarm_names) == 0 && output.oldest_job_age_alarm_arn == null
    error_message = "create = false must create nothing"
  }
}
