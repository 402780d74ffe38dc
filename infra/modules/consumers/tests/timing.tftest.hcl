# The worker's timing inputs (bridge/timing.py, docs/timing.md): the environment they become,
# the systemd stop timeout that follows from them, and the rules checked at plan time. Runs
# offline: terraform init -backend=false && terraform test (tests/infra/test_timing_mirror.py
# runs it when a terraform binary and a provider mirror are at hand).

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
  vpc_id            = "vpc-0123456789abcdef0"
  subnet_ids        = ["subnet-0123456789abcdef0"]
  ami_id            = "ami-0123456789abcdef0"
  worker_handler    = "mypackage.jobs:run"
  jobs_queue_url    = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-jobs"
  jobs_queue_arn    = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-jobs"
  results_queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-results"
  results_queue_arn = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-results"
  jobs_dlq_url      = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-jobs-dlq"
  jobs_dlq_arn      = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-jobs-dlq"

  # Required: where the worker wheels are (artifacts.tftest.hcl tests it).
  worker_wheels_s3_uri = "s3://acme-artifacts/callback-bridge/wheels/"
}

run "defaults_reach_the_worker_and_systemd" {
  command = plan

  assert {
    condition = (
      local.worker_env.BRIDGE_MAX_QUEUE_WAIT == "1800" &&
      local.worker_env.BRIDGE_JOB_TIMEOUT == "42600" &&
      local.worker_env.BRIDGE_DRAIN_TIMEOUT == "1800" &&
      local.worker_env.BRIDGE_CANCEL_GRACE == "10" &&
      local.worker_env.BRIDGE_HEARTBEAT_INTERVAL == "360" &&
      local.worker_env.BRIDGE_STALE_CHECK_AGE == "30"
    )
    error_message = "worker environment: ${jsonencode(local.worker_env)}"
  }

  assert {
    condition     = strcontains(local.user_data, "[Service]\nTimeoutStopSec=1870\n")
    error_message = "the user data does not write TimeoutStopSec=1870 (1800 + 10 + 60) into the drop-in"
  }

  # The worker handles scale-in protection, termination and spot itself, on its own group.
  assert {
    condition = (
      local.worker_env.BRIDGE_SCALE_IN_PROTECTION == "true" &&
      local.worker_env.BRIDGE_INSTANCE_HANDLING == "on" &&
      local.worker_env.BRIDGE_ASG_NAME == "callback-bridge-worker" &&
      local.worker_env.BRIDGE_LIFECYCLE_HOOK_NAME == "callback-bridge-drain" &&
      local.worker_env.BRIDGE_LIFECYCLE_HOOK_TIMEOUT == "600"
    )
    error_message = "worker environment: ${jsonencode(local.worker_env)}"
  }

  assert {
    condition     = aws_autoscaling_group.this[0].name == local.worker_env.BRIDGE_ASG_NAME && aws_autoscaling_lifecycle_hook.drain[0].name == local.worker_env.BRIDGE_LIFECYCLE_HOOK_NAME
    error_message = "worker.env names another group or hook than the module creates"
  }

  assert {
    condition     = local.autoscaling_group_arn == "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:*:autoScalingGroupName/callback-bridge-worker"
    error_message = "the lifecycle permissions are not scoped to the group: ${local.autoscaling_group_arn}"
  }

  assert {
    condition     = !strcontains(local.user_data, "drain-watch") && !strcontains(local.user_data, "callback-bridge-drain.service")
    error_message = "the user data still installs the shell drain watcher"
  }
}

run "stop_timeout_follows_drain_and_grace" {
  command = plan

  variables {
    drain_timeout_seconds = 3600
    cancel_grace_seconds  = 30
  }

  assert {
    condition     = strcontains(local.user_data, "TimeoutStopSec=3690\n")
    error_message = "the drop-in's TimeoutStopSec is not drain + grace + 60"
  }

  assert {
    condition     = local.worker_env.BRIDGE_DRAIN_TIMEOUT == "3600" && local.worker_env.BRIDGE_CANCEL_GRACE == "30"
    error_message = "worker environment: ${jsonencode(local.worker_env)}"
  }
}

run "hook_timeout_reaches_the_worker" {
  command = plan

  variables {
    termination_heartbeat_timeout_seconds = 900
  }

  assert {
    condition     = local.worker_env.BRIDGE_LIFECYCLE_HOOK_TIMEOUT == "900" && aws_autoscaling_lifecycle_hook.drain[0].heartbeat_timeout == 900
    error_message = "the hook's heartbeat timeout and BRIDGE_LIFECYCLE_HOOK_TIMEOUT differ"
  }
}

run "drain_that_fits_the_lifecycle_action_is_accepted" {
  command = plan

  variables {
    # min(172800, 100 x 30) = 3000 = 2930 + 10 + 60
    termination_heartbeat_timeout_seconds = 30
    drain_timeout_seconds                 = 2930
  }
}

run "drain_past_the_lifecycle_action_is_refused" {
  command = plan

  variables {
    termination_heartbeat_timeout_seconds = 30
    drain_timeout_seconds                 = 2931
  }

  expect_failures = [aws_autoscaling_lifecycle_hook.drain]
}

run "job_timeout_past_the_visibility_cap_is_refused" {
  command = plan

  variables {
    job_timeout_seconds = 43131
  }

  expect_failures = [var.job_timeout_seconds]
}
