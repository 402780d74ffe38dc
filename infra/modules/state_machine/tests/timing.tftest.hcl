# The timing rules of bridge/timing.py, enforced at plan time (docs/timing.md). Runs offline:
#   terraform init -backend=false && terraform test
# (tests/infra/test_timing_mirror.py runs it when a terraform binary and a provider mirror are
# at hand).

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

run "defaults_leave_heartbeat_seconds_out" {
  command = plan

  assert {
    condition     = local.task_timeouts == "\"TimeoutSeconds\": 86400"
    error_message = "task_timeouts with the defaults: ${local.task_timeouts}"
  }

  assert {
    condition     = !contains(keys(jsondecode(aws_sfn_state_machine.this[0].definition).States.FanOut.ItemProcessor.States.RunJob), "HeartbeatSeconds")
    error_message = "the default definition has a HeartbeatSeconds"
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this[0].definition).States.FanOut.ItemProcessor.States.RunJob.TimeoutSeconds == 86400
    error_message = "the definition's TimeoutSeconds is not timeout_seconds"
  }
}

run "heartbeat_at_the_minimum_is_rendered" {
  command = plan

  variables {
    # 1800 + 600 + 360 + 60
    heartbeat_seconds = 2820
  }

  assert {
    condition     = local.task_timeouts == "\"HeartbeatSeconds\": 2820, \"TimeoutSeconds\": 86400"
    error_message = "task_timeouts with a heartbeat: ${local.task_timeouts}"
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this[0].definition).States.FanOut.ItemProcessor.States.RunJob.HeartbeatSeconds == 2820
    error_message = "the definition's HeartbeatSeconds is not heartbeat_seconds"
  }
}

run "heartbeat_shorter_than_a_queue_wait_is_refused" {
  command = plan

  variables {
    heartbeat_seconds = 2819
  }

  expect_failures = [aws_sfn_state_machine.this]
}

run "heartbeat_not_below_timeout_is_refused" {
  command = plan

  variables {
    heartbeat_seconds = 86400
  }

  expect_failures = [aws_sfn_state_machine.this]
}

run "timeout_at_the_minimum_is_accepted" {
  command = plan

  variables {
    # 1800 + 42600 + 10 + 60
    timeout_seconds = 44470
  }
}

run "timeout_shorter_than_wait_and_run_is_refused" {
  command = plan

  variables {
    timeout_seconds = 44469
  }

  expect_failures = [aws_sfn_state_machine.this]
}

run "job_timeout_past_the_visibility_cap_is_refused" {
  command = plan

  variables {
    job_timeout_seconds = 43131
  }

  expect_failures = [var.job_timeout_seconds]
}
