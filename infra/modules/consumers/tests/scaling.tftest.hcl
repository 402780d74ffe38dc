# Scaling and the group's options in real Terraform (mock provider, offline): the backlog-per-slot
# metric math reaches the policy, mixed instances and instance refresh plan, and impossible sizes
# are refused with a message naming what to change. tests/infra/test_scaling.py evaluates the
# metric math on sample numbers.


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

run "metric_math_counts_slots" {
  command = plan

  variables {
    worker_concurrency = 4
  }

  assert {
    condition     = local.backlog_per_slot_expression == "(visible + in_flight) / (in_service * 4)"
    error_message = "backlog per slot: ${local.backlog_per_slot_expression}"
  }

  assert {
    condition     = length(aws_autoscaling_group.this[0].mixed_instances_policy) == 0 && length(aws_autoscaling_group.this[0].launch_template) == 1
    error_message = "without use_mixed_instances_policy the group uses the launch template directly"
  }

  assert {
    condition     = aws_autoscaling_group.this[0].instance_refresh[0].strategy == "Rolling"
    error_message = "launch template changes must start a rolling instance refresh"
  }
}

run "mixed_instances_with_spot" {
  command = plan

  variables {
    use_mixed_instances_policy               = true
    mixed_instance_types                     = ["m7i.large", "m6i.large"]
    on_demand_base_capacity                  = 1
    on_demand_percentage_above_base_capacity = 0
  }

  assert {
    condition     = length(aws_autoscaling_group.this[0].launch_template) == 0
    error_message = "a mixed instances policy replaces the group's launch_template block"
  }

  assert {
    condition     = aws_autoscaling_group.this[0].mixed_instances_policy[0].instances_distribution[0].on_demand_percentage_above_base_capacity == 0
    error_message = "spot above the on-demand base"
  }

  assert {
    condition     = length(aws_autoscaling_group.this[0].mixed_instances_policy[0].launch_template[0].override) == 2
    error_message = "one override per mixed instance type"
  }
}

run "min_size_above_max_size_is_refused" {
  command = plan

  variables {
    min_size         = 5
    max_size         = 4
    desired_capacity = 4
  }

  expect_failures = [aws_autoscaling_group.this]
}

run "target_below_one_job_per_slot_is_refused" {
  command = plan

  variables {
    target_backlog_per_slot = 0.5
  }

  expect_failures = [var.target_backlog_per_slot]
}

run "create_false_creates_nothing" {
  command = plan

  variables {
    create = false
  }

  assert {
    condition     = length(aws_autoscaling_group.this) == 0 && length(aws_launch_template.this) == 0 && length(aws_iam_role.this) == 0 && length(aws_security_group.this) == 0
    error_message = "create = false must create nothing"
  }

  assert {
    condition     = output.autoscaling_group_name == null && output.role_arn == null
    error_message = "outputs are null when create is false"
  }
}
