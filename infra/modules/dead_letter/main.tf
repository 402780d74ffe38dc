# Dead-letter Lambda (docs/dead-letters.md, bridge/dead_letter.py): consumes the
# jobs and results DLQs through two event source mappings, ends each dead
# letter's task (SendTaskFailure Bridge.DeadLettered, or the result's own
# callback when it can still be delivered), then copies the letter with an
# explanation to its archive (<name>-<side>-dead-letters, made by the queues
# module) and only then acknowledges it. A letter it keeps failing on is moved
# to the archive by the DLQ's own redrive policy.
#
# A module of its own rather than a second function in the completion module:
# it has its own role with its own least-privilege contract (tests/infra checks
# one allow-list per module), and it is switched off as a whole with `create`
# (dead_letter_handling) without touching the completion path.
#
# Code: the same zip as the completion module (the bridge package and
# pydantic); the handler imports nothing else.

locals {
  create = var.create

  runtime = "python3.12"

  environment = merge(var.environment_variables, {
    BRIDGE_JOBS_DLQ_URL        = var.jobs_dlq_url
    BRIDGE_JOBS_ARCHIVE_URL    = var.jobs_archive_url
    BRIDGE_RESULTS_DLQ_URL     = var.results_dlq_url
    BRIDGE_RESULTS_ARCHIVE_URL = var.results_archive_url
  })

  # One event source mapping per DLQ.
  dead_letter_queues = {
    jobs = {
      arn                        = var.jobs_dlq_arn
      visibility_timeout_seconds = var.jobs_dlq_visibility_timeout_seconds
    }
    results = {
      arn                        = var.results_dlq_arn
      visibility_timeout_seconds = var.results_dlq_visibility_timeout_seconds
    }
  }

  tracing_active = var.tracing_mode == "Active"
}

################################################################################
# Logging
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  count = local.create ? 1 : 0

  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.log_kms_key_arn

  tags = var.tags
}

################################################################################
# IAM role
################################################################################

data "aws_iam_policy_document" "assume" {
  count = local.create ? 1 : 0

  statement {
    sid     = "LambdaAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  count = local.create ? 1 : 0

  name                 = var.use_name_prefix ? null : "${var.function_name}-lambda"
  name_prefix          = var.use_name_prefix ? "${substr("${var.function_name}-lambda", 0, 37)}-" : null
  description          = "callback-bridge dead-letter Lambda ${var.function_name}"
  assume_role_policy   = data.aws_iam_policy_document.assume[0].json
  permissions_boundary = var.role_permissions_boundary_arn

  tags = var.tags
}

data "aws_iam_policy_document" "this" {
  count = local.create ? 1 : 0

  # SendTaskSuccess / SendTaskFailure have no resource types in the IAM service
  # authorization reference (the task token, not an ARN, names the task): "*"
  # is the documented resource, as in the completion module.
  statement {
    sid       = "TellExecutions"
    actions   = ["states:SendTaskSuccess", "states:SendTaskFailure"]
    resources = ["*"]
  }

  # The event source mappings read and delete; the handler itself only acknowledges
  # through its batch response.
  statement {
    sid = "ConsumeDeadLetters"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [var.jobs_dlq_arn, var.results_dlq_arn]
  }

  statement {
    sid       = "ArchiveDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [var.jobs_archive_arn, var.results_archive_arn]
  }

  # The reason of a letter the source queue's redrive moved names its
  # maxReceiveCount: the handler calls GetQueueUrl, then GetQueueAttributes
  # (RedrivePolicy) on the source queue (DeadLetterHandler._read_max_receive_count).
  # Without them the reason leaves the number out; nothing else changes.
  statement {
    sid       = "ReadSourceRedrivePolicies"
    actions   = ["sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
    resources = [var.jobs_queue_arn, var.results_queue_arn]
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this[0].arn}:*"]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "QueueEncryption"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.tracing_active ? [1] : []

    content {
      sid       = "XRay"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  count = local.create ? 1 : 0

  name   = "callback-bridge-dead-letter"
  role   = aws_iam_role.this[0].id
  policy = data.aws_iam_policy_document.this[0].json
}

################################################################################
# Function
################################################################################

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Invoked only by the SQS event source mappings; a record it fails goes back to its DLQ, whose redrive policy moves it to the archive after maxReceiveCount. A function DLQ only applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_117:The function only calls public AWS APIs (SQS, Step Functions); running it in a VPC would add NAT/endpoint requirements without reducing exposure.
  #checkov:skip=CKV_AWS_272:Code signing is an organisation-level choice; the package is built from this repository (see the completion module's README).
  count = local.create ? 1 : 0

  function_name = var.function_name
  description   = "callback-bridge: ends the tasks of dead-lettered messages and archives them"
  role          = aws_iam_role.this[0].arn
  runtime       = local.runtime
  handler       = var.handler
  architectures = [var.architecture]
  memory_size   = var.memory_size
  timeout       = var.timeout

  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)

  layers = var.layers

  reserved_concurrent_executions = var.reserved_concurrent_executions == null ? -1 : var.reserved_concurrent_executions
  kms_key_arn                    = var.environment_kms_key_arn

  environment {
    variables = local.environment
  }

  tracing_config {
    mode = var.tracing_mode
  }

  tags = var.tags

  depends_on = [
    aws_cloudwatch_log_group.this,
    aws_iam_role_policy.this,
  ]

  lifecycle {
    # A zip whose name says which architecture it was built for (make lambda names it so)
    # must match the function's: pydantic_core is compiled per architecture.
    precondition {
      condition     = !can(regex("(x86_64|amd64|arm64|aarch64)", basename(coalesce(var.package_path, "x")))) || can(regex(var.architecture == "arm64" ? "(arm64|aarch64)" : "(x86_64|amd64)", basename(coalesce(var.package_path, "x"))))
      error_message = "package_path ${coalesce(var.package_path, "")} was built for another architecture than the function's (${var.architecture}): build it with make lambda LAMBDA_ARCH=${var.architecture}."
    }

    precondition {
      condition     = var.package_path != null
      error_message = "package_path must name the Lambda zip (the completion module's package: the bridge package and pydantic)."
    }

    precondition {
      condition     = var.jobs_archive_url != null && var.jobs_archive_arn != null && var.results_archive_url != null && var.results_archive_arn != null
      error_message = "The dead-letter handler needs both archives: turn dead_letter_handling on in the queues module and pass its jobs_archive_* and results_archive_* outputs, or set create = false."
    }
  }
}

################################################################################
# DLQ triggers
################################################################################

resource "aws_lambda_event_source_mapping" "this" {
  for_each = local.create ? local.dead_letter_queues : {}

  event_source_arn        = each.value.arn
  function_name           = aws_lambda_function.this[0].arn
  batch_size              = var.batch_size
  function_response_types = ["ReportBatchItemFailures"]
  enabled                 = var.enabled

  tags = var.tags

  scaling_config {
    maximum_concurrency = var.maximum_concurrency
  }

  # Creating a mapping checks that the role can read the queue.
  depends_on = [aws_iam_role_policy.this]

  lifecycle {
    # Lambda refuses an SQS event source whose visibility timeout is below the
    # function timeout: a record would reappear while its invocation still runs.
    precondition {
      condition     = try(each.value.visibility_timeout_seconds >= var.timeout, true)
      error_message = "The ${each.key} DLQ's visibility timeout (${coalesce(each.value.visibility_timeout_seconds, 0)} s) is below the dead-letter function's timeout (${var.timeout} s): raise the ${each.key} queue's visibility timeout in the queues module (the DLQ inherits it) or lower timeout."
    }

    # Two mappings share the function: each may drive maximum_concurrency invocations.
    precondition {
      condition     = try(var.reserved_concurrent_executions >= 2 * var.maximum_concurrency, true)
      error_message = "reserved_concurrent_executions must be at least 2 x maximum_concurrency (one mapping per DLQ), or the event source mappings get throttled."
    }
  }
}
