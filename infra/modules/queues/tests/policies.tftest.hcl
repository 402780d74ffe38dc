# Queue policies and bad input in real Terraform (mock provider, offline): every queue gets a
# policy (TLS only; senders where sender_arns names them), and impossible settings are refused
# before apply. tests/infra/test_hardening.py checks the policy statements themselves.

mock_provider "aws" {
  # The queue policies must be JSON for the provider to accept them on apply.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

run "every_queue_has_a_policy" {
  command = plan

  variables {
    sender_arns = {
      jobs    = ["arn:aws:iam::123456789012:role/callback-bridge-state-machine"]
      results = ["arn:aws:iam::123456789012:role/callback-bridge-worker"]
    }
  }

  assert {
    condition     = length(aws_sqs_queue_policy.this) == 6
    error_message = "jobs, results, both DLQs and both archives need a policy: ${jsonencode(keys(aws_sqs_queue_policy.this))}"
  }
}

run "without_archives_four_policies" {
  command = plan

  variables {
    dead_letter_handling = false
  }

  assert {
    condition     = length(aws_sqs_queue_policy.this) == 4
    error_message = "without dead-letter handling there are four queues"
  }
}

run "unknown_sender_key_is_refused" {
  command = plan

  variables {
    sender_arns = {
      job = ["arn:aws:iam::123456789012:role/x"]
    }
  }

  expect_failures = [var.sender_arns]
}

run "max_receive_count_below_one_is_refused" {
  command = plan

  variables {
    jobs_max_receive_count = 0
  }

  expect_failures = [var.jobs_max_receive_count]
}

run "create_false_creates_nothing" {
  command = plan

  variables {
    create = false
  }

  assert {
    condition     = length(aws_sqs_queue.this) == 0 && length(aws_sqs_queue.dlq) == 0 && length(aws_sqs_queue.archive) == 0 && length(aws_sqs_queue_policy.this) == 0
    error_message = "create = false must create nothing"
  }

  assert {
    condition     = output.jobs_queue_url == null && output.results_dlq_arn == null
    error_message = "outputs are null when create is false"
  }
}
