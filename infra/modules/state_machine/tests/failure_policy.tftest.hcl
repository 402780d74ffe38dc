# The failure policy (failure_policy, tolerated_failure_count, tolerated_failure_percentage):
# the "tolerated" object rendered into the definition is the text Python renders
# (StateMachineParams.tolerated_failures()), and bad combinations are refused at plan time.
# Runs offline: terraform init -backend=false && terraform test (mock provider).

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }


  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }
}

variables {
  jobs_queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-jobs"
  jobs_queue_arn = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-jobs"
}

run "report_tolerates_every_failure" {
  command = plan

  assert {
    condition     = local.tolerated_failures == "{\"count.$\": \"States.ArrayLength($)\", \"percentage\": 100}"
    error_message = "tolerated_failures with the defaults: ${local.tolerated_failures}"
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this[0].definition).States.FanOut.Next == "CheckFailures"
    error_message = "the Map does not lead to the failure check"
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this[0].definition).States.JobsFailed.Error == "Bridge.JobsFailed"
    error_message = "the definition has no Bridge.JobsFailed state"
  }
}

run "fail_without_limits_fails_on_any_failure" {
  command = plan

  variables {
    failure_policy = "fail"
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this[0].definition).States.FanOut.ResultSelector.tolerated == { count = 0, percentage = 100 }
    error_message = "tolerated with failure_policy = fail: ${local.tolerated_failures}"
  }
}

run "a_percentage_alone_lifts_the_count_limit" {
  command = plan

  variables {
    failure_policy               = "fail"
    tolerated_failure_percentage = 10
    map_mode                     = "DISTRIBUTED"
  }

  assert {
    condition     = local.tolerated_failures == "{\"count.$\": \"States.ArrayLength($)\", \"percentage\": 10}"
    error_message = "tolerated with a percentage: ${local.tolerated_failures}"
  }
}

run "both_limits_are_rendered" {
  command = plan

  variables {
    failure_policy               = "fail"
    tolerated_failure_count      = 3
    tolerated_failure_percentage = 25
  }

  assert {
    condition     = local.tolerated_failures == "{\"count\": 3, \"percentage\": 25}"
    error_message = "tolerated with both limits: ${local.tolerated_failures}"
  }
}

run "a_tolerance_without_fail_is_refused" {
  command = plan

  variables {
    tolerated_failure_count = 3
  }

  expect_failures = [aws_sfn_state_machine.this]
}

run "an_unknown_policy_is_refused" {
  command = plan

  variables {
    failure_policy = "ignore"
  }

  expect_failures = [var.failure_policy]
}

run "a_fractional_percentage_is_refused" {
  command = plan

  variables {
    failure_policy               = "fail"
    tolerated_failure_percentage = 12.5
  }

  expect_failures = [var.tolerated_failure_percentage]
}

run "a_negative_count_is_refused" {
  command = plan

  variables {
    failure_policy          = "fail"
    tolerated_failure_count = -1
  }

  expect_failures = [var.tolerated_failure_count]
}
