# Dead-letter handling in the queues module (docs/dead-letters.md): the archives, the DLQs'
# redrive to them with maxReceiveCount = the source's + 3, and nothing of it when switched
# off. Runs offline: terraform init -backend=false && terraform test (mock provider; apply
# only assigns mock values to computed attributes). tests/infra/test_timing_mirror.py runs it
# when a terraform binary and a provider mirror are at hand.

mock_provider "aws" {
  # The queue policies must be JSON for the provider to accept them on apply.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

run "archives_and_redrive_by_default" {
  command = apply

  assert {
    condition     = aws_sqs_queue.archive["jobs"].name == "callback-bridge-jobs-dead-letters" && aws_sqs_queue.archive["results"].name == "callback-bridge-results-dead-letters"
    error_message = "archive names: ${jsonencode([for q in aws_sqs_queue.archive : q.name])}"
  }

  assert {
    condition = alltrue([
      for side in ["jobs", "results"] :
      aws_sqs_queue_redrive_policy.dlq[side].queue_url == aws_sqs_queue.dlq[side].id &&
      jsondecode(aws_sqs_queue_redrive_policy.dlq[side].redrive_policy).deadLetterTargetArn == aws_sqs_queue.archive[side].arn &&
      jsondecode(aws_sqs_queue_redrive_policy.dlq[side].redrive_policy).maxReceiveCount == 8
    ])
    error_message = "each DLQ must redrive to its archive with maxReceiveCount 5 + 3"
  }

  assert {
    condition = alltrue([
      for side in ["jobs", "results"] :
      aws_sqs_queue.archive[side].message_retention_seconds == 1209600 &&
      aws_sqs_queue.archive[side].max_message_size == aws_sqs_queue.dlq[side].max_message_size &&
      aws_sqs_queue.archive[side].sqs_managed_sse_enabled == true
    ])
    error_message = "archives keep 14 days, with the DLQs' message size and encryption"
  }

  assert {
    condition     = jsondecode(aws_sqs_queue_redrive_allow_policy.archive["jobs"].redrive_allow_policy).sourceQueueArns == [aws_sqs_queue.dlq["jobs"].arn]
    error_message = "only the jobs DLQ may dead-letter into the jobs archive"
  }

  assert {
    condition     = output.jobs_archive_url == aws_sqs_queue.archive["jobs"].url && output.results_archive_url == aws_sqs_queue.archive["results"].url
    error_message = "archive URL outputs"
  }
}

run "receive_counts_follow_the_source_queues" {
  command = apply

  variables {
    jobs_max_receive_count    = 2
    results_max_receive_count = 7
  }

  assert {
    condition     = jsondecode(aws_sqs_queue_redrive_policy.dlq["jobs"].redrive_policy).maxReceiveCount == 5 && jsondecode(aws_sqs_queue_redrive_policy.dlq["results"].redrive_policy).maxReceiveCount == 10
    error_message = "DLQ maxReceiveCount must be the source's + 3"
  }
}

run "kms_key_reaches_the_archives" {
  command = apply

  variables {
    kms_master_key_id = "alias/callback-bridge"
  }

  assert {
    condition     = aws_sqs_queue.archive["jobs"].kms_master_key_id == "alias/callback-bridge" && aws_sqs_queue.archive["results"].kms_master_key_id == "alias/callback-bridge"
    error_message = "the archives must use the DLQs' KMS key"
  }
}

run "switched_off" {
  command = apply

  variables {
    dead_letter_handling = false
  }

  assert {
    condition     = length(aws_sqs_queue.archive) == 0 && length(aws_sqs_queue_redrive_allow_policy.archive) == 0
    error_message = "no archives without dead-letter handling"
  }

  # Applied over the previous runs' state: switching off removes the DLQs' redrive policies
  # (destroying aws_sqs_queue_redrive_policy clears the attribute on AWS).
  assert {
    condition     = length(aws_sqs_queue_redrive_policy.dlq) == 0
    error_message = "without dead-letter handling a DLQ has no redrive policy (peeking must never move a letter)"
  }

  assert {
    condition     = output.jobs_archive_url == null && output.results_archive_url == null
    error_message = "archive outputs must be null without dead-letter handling"
  }
}

run "name_too_long_for_the_archives_is_refused" {
  command = plan

  variables {
    name = "a-name-of-sixty-characters-is-fine-for-a-dlq-but-not-archive"
  }

  expect_failures = [aws_sqs_queue.archive]
}
