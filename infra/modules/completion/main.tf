# Completion Lambda: triggered by the results queue, it calls
# states:SendTaskSuccess / states:SendTaskFailure with each result's task token
# and moves malformed results to the results DLQ. Partial batch responses
# (ReportBatchItemFailures) return only the failed records to the queue.
#
# Code: a zip holding the `bridge` package and pydantic (see README.md for the
# build). aws-lambda-powertools comes from the public Powertools layer.

locals {
  create = var.create

  runtime = "python3.12"

  package_hash = one([for p in compact([var.package_path]) : filebase64sha256(p)])

  environment = merge(var.environment_variables, {
    BRIDGE_RESULTS_DLQ_URL       = var.results_dlq_url
    POWERTOOLS_SERVICE_NAME      = "callback-bridge"
    POWERTOOLS_METRICS_NAMESPACE = "CallbackBridge"
    POWERTOOLS_LOG_LEVEL         = var.log_level
  })

  tracing_active = var.tracing_mode == "Active"

  powertools_v3_layer = can(regex(":layer:AWSLambdaPowertoolsPythonV3", var.powertools_layer_arn))
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
  description          = "callback-bridge completion Lambda ${var.function_name}"
  assume_role_policy   = data.aws_iam_policy_document.assume[0].json
  permissions_boundary = var.role_permissions_boundary_arn

  tags = var.tags
}

data "aws_iam_policy_document" "this" {
  count = local.create ? 1 : 0

  # The task token identifies the task; SendTask* support no resource-level
  # permissions, so they cannot be scoped to the state machine.
  statement {
    sid       = "CompleteTasks"
    actions   = ["states:SendTaskSuccess", "states:SendTaskFailure"]
    resources = ["*"]
  }

  statement {
    sid = "ConsumeResults"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [var.results_queue_arn]
  }

  statement {
    sid       = "DeadLetterMalformedResults"
    actions   = ["sqs:SendMessage"]
    resources = [var.results_dlq_arn]
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

  name   = "callback-bridge-completion"
  role   = aws_iam_role.this[0].id
  policy = data.aws_iam_policy_document.this[0].json
}

################################################################################
# Function
################################################################################

resource "aws_lambda_function" "this" {
  count = local.create ? 1 : 0

  #checkov:skip=CKV_AWS_116:Invoked only by the SQS event source mapping; failed records go back to the results queue, whose redrive policy moves them to the results DLQ. A function DLQ only applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_117:The function only calls public AWS APIs (SQS, Step Functions); running it in a VPC would add NAT/endpoint requirements without reducing exposure.
  #checkov:skip=CKV_AWS_272:Code signing is an organisation-level choice; the package is built from this repository (see README).

  function_name = var.function_name
  description   = "callback-bridge: completes Step Functions task tokens from the results queue"
  role          = aws_iam_role.this[0].arn
  runtime       = local.runtime
  handler       = var.handler
  architectures = [var.architecture]
  memory_size   = var.memory_size
  timeout       = var.timeout

  filename         = var.package_path
  source_code_hash = local.package_hash

  layers = [var.powertools_layer_arn]

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
      error_message = "Set package_path: the zip of `make lambda` (infra/README.md, Artifacts)."
    }

    precondition {
      condition     = !local.powertools_v3_layer || can(regex(":layer:AWSLambdaPowertoolsPythonV3-python312-${var.architecture}:[0-9]+$", var.powertools_layer_arn))
      error_message = "powertools_layer_arn names a Powertools v3 layer for another Python version or architecture; the function runs python3.12 on ${var.architecture} (AWSLambdaPowertoolsPythonV3-python312-${var.architecture})."
    }
  }
}

################################################################################
# Results queue trigger
################################################################################

resource "aws_lambda_event_source_mapping" "results" {
  count = local.create ? 1 : 0

  event_source_arn                   = var.results_queue_arn
  function_name                      = aws_lambda_function.this[0].arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  function_response_types            = ["ReportBatchItemFailures"]
  enabled                            = var.enabled

  tags = var.tags

  scaling_config {
    maximum_concurrency = var.maximum_concurrency
  }

  # Creating the mapping checks that the role can read the queue.
  depends_on = [aws_iam_role_policy.this]

  lifecycle {
    precondition {
      condition     = var.batch_size <= 10 || var.maximum_batching_window_in_seconds >= 1
      error_message = "batch_size ${var.batch_size} is above 10, which Lambda accepts only with a batching window: set maximum_batching_window_in_seconds to 1 or more, or lower batch_size to 10."
    }

    precondition {
      condition     = try(var.results_queue_visibility_timeout_seconds >= 6 * var.timeout + var.maximum_batching_window_in_seconds, true)
      error_message = "The results queue's visibility timeout should be at least 6 x the function timeout + maximum_batching_window_in_seconds (AWS guidance for SQS event sources); raise results_visibility_timeout_seconds in the queues module or lower timeout."
    }

    precondition {
      condition     = try(var.reserved_concurrent_executions >= var.maximum_concurrency, true)
      error_message = "reserved_concurrent_executions must not be lower than maximum_concurrency, or the event source mapping gets throttled."
    }
  }
}
