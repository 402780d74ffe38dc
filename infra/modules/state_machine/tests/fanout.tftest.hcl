# The S3-fed Distributed Map (FanOutFromS3): its tolerance is the failure policy as Python renders
# it (StateMachineParams.map_run_tolerance()), and the role may read job files and write result
# files only with fanout_bucket_arn.
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

run "without_a_fanout_bucket_the_role_has_no_s3" {
  command = plan

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this[0].definition).States.FanOutFromS3.ToleratedFailurePercentage == 100
    error_message = "report tolerates every failed job of the Map Run"
  }

  assert {
    condition     = length([for s in data.aws_iam_policy_document.this[0].statement : s if startswith(coalesce(s.sid, "-"), "DistributedMap") || strcontains(join(",", s.actions), "s3:")]) == 0
    error_message = "no S3 or child-execution grants without the fan-out bucket (INLINE)"
  }
}

run "a_fanout_bucket_grants_the_reader_and_the_writer_their_prefixes" {
  command = plan

  variables {
    fanout_bucket_arn            = "arn:aws:s3:::cb-fanout"
    failure_policy               = "fail"
    tolerated_failure_count      = 2
    tolerated_failure_percentage = 25
  }

  assert {
    condition     = local.map_run_tolerance == "\"ToleratedFailureCount\": 2, \"ToleratedFailurePercentage\": 25"
    error_message = "map_run_tolerance: ${local.map_run_tolerance}"
  }

  assert {
    condition     = one([for s in data.aws_iam_policy_document.this[0].statement : s.resources if s.sid == "ReadFanOutItems"]) == toset(["arn:aws:s3:::cb-fanout/items/*"])
    error_message = "the ItemReader reads job files only"
  }

  assert {
    condition     = one([for s in data.aws_iam_policy_document.this[0].statement : s.resources if s.sid == "WriteFanOutResults"]) == toset(["arn:aws:s3:::cb-fanout/results/*"])
    error_message = "the ResultWriter writes result files only"
  }

  assert {
    condition     = length([for s in data.aws_iam_policy_document.this[0].statement : s if s.sid == "DistributedMapStart"]) == 1
    error_message = "the S3-fed Map starts child executions whatever map_mode"
  }
}

run "a_bad_fanout_bucket_arn_is_refused" {
  command = plan

  variables {
    fanout_bucket_arn = "cb-fanout"
  }

  expect_failures = [var.fanout_bucket_arn]
}
