# The dead-letter Lambda's wiring (docs/dead-letters.md): handler, environment, one event
# source mapping per DLQ with partial batch responses, the visibility-timeout rule, and
# create = false. Runs offline with a mock provider: terraform init -backend=false &&
# terraform test. It needs a file at tests/package.zip (any content: only its hash is read);
# tests/infra/test_timing_mirror.py writes one into its copy of the module.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  package_path                           = "tests/package.zip"
  jobs_queue_arn                         = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-jobs"
  results_queue_arn                      = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-results"
  jobs_dlq_url                           = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-jobs-dlq"
  jobs_dlq_arn                           = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-jobs-dlq"
  results_dlq_url                        = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-results-dlq"
  results_dlq_arn                        = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-results-dlq"
  jobs_archive_url                       = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-jobs-dead-letters"
  jobs_archive_arn                       = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-jobs-dead-letters"
  results_archive_url                    = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-results-dead-letters"
  results_archive_arn                    = "arn:aws:sqs:eu-west-1:123456789012:callback-bridge-results-dead-letters"
  jobs_dlq_visibility_timeout_seconds    = 300
  results_dlq_visibility_timeout_seconds = 60
}

run "consumes_both_dlqs" {
  command = plan

  assert {
    condition     = aws_lambda_function.this[0].handler == "bridge.dead_letter.handler" && aws_lambda_function.this[0].runtime == "python3.12"
    error_message = "handler / runtime"
  }

  assert {
    condition = aws_lambda_function.this[0].environment[0].variables == tomap({
      BRIDGE_JOBS_DLQ_URL        = var.jobs_dlq_url
      BRIDGE_JOBS_ARCHIVE_URL    = var.jobs_archive_url
      BRIDGE_RESULTS_DLQ_URL     = var.results_dlq_url
      BRIDGE_RESULTS_ARCHIVE_URL = var.results_archive_url
    })
    error_message = "environment: ${jsonencode(aws_lambda_function.this[0].environment[0].variables)}"
  }

  assert {
    condition = (
      aws_lambda_event_source_mapping.this["jobs"].event_source_arn == var.jobs_dlq_arn &&
      aws_lambda_event_source_mapping.this["results"].event_source_arn == var.results_dlq_arn &&
      alltrue([
        for m in aws_lambda_event_source_mapping.this :
        m.batch_size == 10 && m.function_response_types == toset(["ReportBatchItemFailures"])
      ])
    )
    error_message = "one mapping per DLQ, batch size 10, ReportBatchItemFailures"
  }
}

run "switched_off_creates_nothing" {
  command = plan

  variables {
    create              = false
    package_path        = null
    jobs_archive_url    = null
    jobs_archive_arn    = null
    results_archive_url = null
    results_archive_arn = null
  }

  assert {
    condition     = length(aws_lambda_function.this) == 0 && length(aws_lambda_event_source_mapping.this) == 0 && length(aws_iam_role.this) == 0
    error_message = "create = false must create nothing"
  }

  assert {
    condition     = output.function_name == null && output.jobs_archive_url == null && output.event_source_mapping_uuids == {}
    error_message = "outputs must survive create = false"
  }
}

run "dlq_visibility_below_the_function_timeout_is_refused" {
  command = plan

  variables {
    timeout = 61
  }

  expect_failures = [aws_lambda_event_source_mapping.this]
}

run "missing_archive_is_refused" {
  command = plan

  variables {
    results_archive_arn = null
  }

  expect_failures = [aws_lambda_function.this]
}

run "reserved_concurrency_below_both_mappings_is_refused" {
  command = plan

  variables {
    reserved_concurrent_executions = 3
  }

  expect_failures = [aws_lambda_event_source_mapping.this]
}
