variable "create" {
  description = "Create the function, its role, log group and event source mapping; false creates nothing (outputs are null)."
  type        = bool
  default     = true
}

variable "function_name" {
  description = "Name of the completion Lambda function; its role is <function_name>-lambda and its log group /aws/lambda/<function_name>."
  type        = string
  default     = "callback-bridge-completion"

  validation {
    # 64 is the role name limit, minus "-lambda".
    condition     = can(regex("^[A-Za-z0-9_-]{1,57}$", var.function_name))
    error_message = "function_name must be 1-57 characters of A-Z, a-z, 0-9, '-' or '_'."
  }
}

variable "package_path" {
  description = "Path to a prebuilt deployment zip containing the bridge package and pydantic (built for python3.12 and the function's architecture; see README)."
  type        = string
  default     = null

  validation {
    condition     = var.package_path == null || can(regex("\\.zip$", var.package_path))
    error_message = "package_path must point at a .zip file."
  }
}

variable "handler" {
  description = "Lambda handler."
  type        = string
  default     = "bridge.completion.handler"
}

variable "architecture" {
  description = "Instruction set of the function: x86_64 or arm64. The Powertools layer and pydantic's compiled core in the package must match it."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "powertools_layer_arn" {
  description = "ARN of the Powertools for AWS Lambda (Python) v3 layer, including its version: arn:aws:lambda:<region>:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-<x86_64|arm64>:<version>. The layer must be in the function's region."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$", var.powertools_layer_arn))
    error_message = "powertools_layer_arn must be a versioned Lambda layer ARN (arn:aws:lambda:<region>:<account>:layer:<name>:<version>)."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Function timeout in seconds. Keep the results queue's visibility timeout at 6 x this value + maximum_batching_window_in_seconds or more (the queues module default of 60 s fits the default 10 s)."
  type        = number
  default     = 10

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "reserved_concurrent_executions" {
  description = "Reserved concurrency of the function; null (default) leaves it unreserved. Must be at least maximum_concurrency when set."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrent_executions == null || try(var.reserved_concurrent_executions >= 0, false)
    error_message = "reserved_concurrent_executions must be null or >= 0."
  }
}

variable "log_level" {
  description = "POWERTOOLS_LOG_LEVEL of the function."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL."
  }
}

variable "environment_variables" {
  description = "Extra environment variables. BRIDGE_RESULTS_DLQ_URL and the POWERTOOLS_* variables set by the module take precedence."
  type        = map(string)
  default     = {}
}

variable "environment_kms_key_arn" {
  description = "KMS key ARN to encrypt the function's environment variables with; null uses the AWS managed key."
  type        = string
  default     = null
}

variable "tracing_mode" {
  description = "X-Ray tracing mode of the function: Active (adds xray:PutTraceSegments/PutTelemetryRecords to the role) or PassThrough."
  type        = string
  default     = "Active"

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the function's log group, in days (0 = never expire)."
  type        = number
  default     = 365

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be one of the values CloudWatch Logs accepts (0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key ARN to encrypt the log group with; null uses CloudWatch Logs' own encryption."
  type        = string
  default     = null
}

variable "results_queue_arn" {
  description = "ARN of the results queue (event source; receive/delete/change visibility)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.results_queue_arn))
    error_message = "results_queue_arn must be an SQS queue ARN."
  }
}

variable "results_queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the results queue (queues module output results_visibility_timeout_seconds). When set, the plan fails if it is below 6 x timeout + maximum_batching_window_in_seconds."
  type        = number
  default     = null
}

variable "results_dlq_url" {
  description = "URL of the results DLQ (BRIDGE_RESULTS_DLQ_URL): malformed results are moved there by the function."
  type        = string

  validation {
    condition     = can(regex("^(https://|http://(127\\.0\\.0\\.1|localhost)(:[0-9]+)?/)", var.results_dlq_url))
    error_message = "results_dlq_url must be an SQS queue URL (https://..., or http:// on a loopback endpoint: 127.0.0.1 or localhost)."
  }
}

variable "results_dlq_arn" {
  description = "ARN of the results DLQ (sqs:SendMessage)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.results_dlq_arn))
    error_message = "results_dlq_arn must be an SQS queue ARN."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key encrypting the results queue and DLQ, if any: adds kms:Decrypt and kms:GenerateDataKey on that key. null for SQS-managed SSE."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (not a key ID or alias) or null."
  }
}

variable "batch_size" {
  description = "Maximum records per invocation (1-10, or up to 10000 with maximum_batching_window_in_seconds >= 1). 10 (AWS's default) is the most one poll returns, so with the default window of 0 a burst of results is one invocation per ten."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size must be between 1 and 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "Seconds the event source mapping may wait to fill a batch (0 = invoke with what one poll returns). 0 is chosen by measurement, `callback-bridge bench --scenarios bridge --jobs 120 --job-ms 1000,15000` (jobs finishing at random times): window 0 adds 292 ms p95 from a job's end to its SendTaskSuccess, at 3.62 requests per job beyond the unavoidable two; window 1 s adds 1,373 ms p95 (over the 1,000 ms target) for 2.54 requests per job (fewer mapping receives and deletes, 0.31 invocations per job instead of 0.86). Raise it only where a second more per callback is worth about one request per job."
  type        = number
  default     = 0

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300
    error_message = "maximum_batching_window_in_seconds must be between 0 and 300."
  }
}

variable "maximum_concurrency" {
  description = "scaling_config.maximum_concurrency of the event source mapping: the most concurrent invocations the results queue can drive."
  type        = number
  default     = 5

  validation {
    condition     = var.maximum_concurrency >= 2 && var.maximum_concurrency <= 1000
    error_message = "maximum_concurrency must be between 2 and 1000."
  }
}

variable "enabled" {
  description = "Whether the event source mapping polls the results queue."
  type        = bool
  default     = true
}

variable "role_permissions_boundary_arn" {
  description = "Permissions boundary to attach to the function role, if your account requires one."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource of the module."
  type        = map(string)
  default     = {}
}

variable "use_name_prefix" {
  description = "Give the IAM role a unique name from a prefix (<function_name>-lambda-<suffix>, at most 38 characters before the suffix) instead of the fixed name, so two deployments in one account (IAM names are global, across regions) do not collide."
  type        = bool
  default     = true
}
