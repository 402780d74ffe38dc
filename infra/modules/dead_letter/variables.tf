variable "create" {
  description = "Create the dead-letter Lambda, its role, log group and event source mappings. Pass the queues module's dead_letter_handling: false for teams that redrive instead (nothing then consumes the DLQs)."
  type        = bool
  default     = true
}

variable "function_name" {
  description = "Name of the dead-letter Lambda function; its role is <function_name>-lambda and its log group /aws/lambda/<function_name>."
  type        = string
  default     = "callback-bridge-dead-letter"

  validation {
    # 64 is the role name limit, minus "-lambda".
    condition     = can(regex("^[A-Za-z0-9_-]{1,57}$", var.function_name))
    error_message = "function_name must be 1-57 characters of A-Z, a-z, 0-9, '-' or '_'."
  }
}

variable "package_path" {
  description = "Path to the Lambda deployment zip: the same package as the completion module's (the bridge package and pydantic, built for python3.12 and the function's architecture). Required when create is true."
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
  default     = "bridge.dead_letter.handler"
}

variable "architecture" {
  description = "Instruction set of the function: x86_64 or arm64. pydantic's compiled core in the package must match it."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "layers" {
  description = "Versioned Lambda layer ARNs to attach (at most 5). Pass the completion module's Powertools layer: with it the handler publishes its dead-letter metrics (DeadLettersFailed, ...); without it, it runs but publishes none."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.layers) <= 5 && alltrue([for l in var.layers : can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$", l))])
    error_message = "layers must be at most 5 versioned Lambda layer ARNs (arn:aws:lambda:<region>:<account>:layer:<name>:<version>)."
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
  description = "Function timeout in seconds. Both DLQs' visibility timeouts must be at least this (checked at plan time when jobs_dlq_visibility_timeout_seconds / results_dlq_visibility_timeout_seconds are given; AWS advises 6 x): the DLQs inherit their source queue's (300 s and 60 s by default). A batch the function does not finish returns to its DLQ and costs each record one of its 3 attempts."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "reserved_concurrent_executions" {
  description = "Reserved concurrency of the function; null (default) leaves it unreserved. Must be at least 2 x maximum_concurrency when set (one event source mapping per DLQ)."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrent_executions == null || try(var.reserved_concurrent_executions >= 0, false)
    error_message = "reserved_concurrent_executions must be null or >= 0."
  }
}

variable "environment_variables" {
  description = "Extra environment variables. The four BRIDGE_*_DLQ_URL / BRIDGE_*_ARCHIVE_URL variables set by the module take precedence."
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

################################################################################
# Queues (outputs of the queues module)
################################################################################

variable "jobs_queue_arn" {
  description = "ARN of the jobs queue: sqs:GetQueueUrl and sqs:GetQueueAttributes, to name its maxReceiveCount in the reason of a letter its redrive policy moved."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.jobs_queue_arn))
    error_message = "jobs_queue_arn must be an SQS queue ARN."
  }
}

variable "results_queue_arn" {
  description = "ARN of the results queue: sqs:GetQueueUrl and sqs:GetQueueAttributes, to name its maxReceiveCount in the reason of a letter its redrive policy moved."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.results_queue_arn))
    error_message = "results_queue_arn must be an SQS queue ARN."
  }
}

variable "jobs_dlq_url" {
  description = "URL of the jobs DLQ (BRIDGE_JOBS_DLQ_URL)."
  type        = string

  validation {
    condition     = can(regex("^(https://|http://(127\\.0\\.0\\.1|localhost)(:[0-9]+)?/)", var.jobs_dlq_url))
    error_message = "jobs_dlq_url must be an SQS queue URL (https://..., or http:// on a loopback endpoint: 127.0.0.1 or localhost)."
  }
}

variable "jobs_dlq_arn" {
  description = "ARN of the jobs DLQ: the first event source (receive, delete, change visibility, get attributes)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.jobs_dlq_arn))
    error_message = "jobs_dlq_arn must be an SQS queue ARN."
  }
}

variable "jobs_dlq_visibility_timeout_seconds" {
  description = "Visibility timeout of the jobs DLQ (queues module output jobs_dlq_visibility_timeout_seconds). When set, the plan fails if it is below timeout."
  type        = number
  default     = null
}

variable "results_dlq_url" {
  description = "URL of the results DLQ (BRIDGE_RESULTS_DLQ_URL)."
  type        = string

  validation {
    condition     = can(regex("^(https://|http://(127\\.0\\.0\\.1|localhost)(:[0-9]+)?/)", var.results_dlq_url))
    error_message = "results_dlq_url must be an SQS queue URL (https://..., or http:// on a loopback endpoint: 127.0.0.1 or localhost)."
  }
}

variable "results_dlq_arn" {
  description = "ARN of the results DLQ: the second event source (receive, delete, change visibility, get attributes)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.results_dlq_arn))
    error_message = "results_dlq_arn must be an SQS queue ARN."
  }
}

variable "results_dlq_visibility_timeout_seconds" {
  description = "Visibility timeout of the results DLQ (queues module output results_dlq_visibility_timeout_seconds). When set, the plan fails if it is below timeout."
  type        = number
  default     = null
}

variable "jobs_archive_url" {
  description = "URL of the jobs archive <name>-jobs-dead-letters (BRIDGE_JOBS_ARCHIVE_URL; queues module output jobs_archive_url). Required when create is true."
  type        = string
  default     = null

  validation {
    condition     = var.jobs_archive_url == null || can(regex("^(https://|http://(127\\.0\\.0\\.1|localhost)(:[0-9]+)?/)", var.jobs_archive_url))
    error_message = "jobs_archive_url must be an SQS queue URL (https://..., or http:// on a loopback endpoint: 127.0.0.1 or localhost) or null."
  }
}

variable "jobs_archive_arn" {
  description = "ARN of the jobs archive (sqs:SendMessage). Required when create is true."
  type        = string
  default     = null

  validation {
    condition     = var.jobs_archive_arn == null || can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.jobs_archive_arn))
    error_message = "jobs_archive_arn must be an SQS queue ARN or null."
  }
}

variable "results_archive_url" {
  description = "URL of the results archive <name>-results-dead-letters (BRIDGE_RESULTS_ARCHIVE_URL; queues module output results_archive_url). Required when create is true."
  type        = string
  default     = null

  validation {
    condition     = var.results_archive_url == null || can(regex("^(https://|http://(127\\.0\\.0\\.1|localhost)(:[0-9]+)?/)", var.results_archive_url))
    error_message = "results_archive_url must be an SQS queue URL (https://..., or http:// on a loopback endpoint: 127.0.0.1 or localhost) or null."
  }
}

variable "results_archive_arn" {
  description = "ARN of the results archive (sqs:SendMessage). Required when create is true."
  type        = string
  default     = null

  validation {
    condition     = var.results_archive_arn == null || can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.results_archive_arn))
    error_message = "results_archive_arn must be an SQS queue ARN or null."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key encrypting the queues, if any: adds kms:Decrypt and kms:GenerateDataKey on that key. null for SQS-managed SSE."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (not a key ID or alias) or null."
  }
}

################################################################################
# Event source mappings
################################################################################

variable "batch_size" {
  description = "Maximum records per invocation, per DLQ (1-10: larger batches would need a batching window, and dead letters are rare)."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be an integer between 1 and 10."
  }
}

variable "maximum_concurrency" {
  description = "scaling_config.maximum_concurrency of each event source mapping: the most concurrent invocations one DLQ can drive (2 is the least AWS allows)."
  type        = number
  default     = 2

  validation {
    condition     = var.maximum_concurrency >= 2 && var.maximum_concurrency <= 1000
    error_message = "maximum_concurrency must be between 2 and 1000."
  }
}

variable "enabled" {
  description = "Whether the event source mappings poll the DLQs (false pauses the handler; letters then wait in the DLQs)."
  type        = bool
  default     = true
}

variable "role_permissions_boundary_arn" {
  description = "Permissions boundary to attach to the function role, if your account requires one."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every taggable resource of the module."
  type        = map(string)
  default     = {}
}

variable "use_name_prefix" {
  description = "Give the IAM role a unique name from a prefix (<function_name>-lambda-<suffix>, at most 38 characters before the suffix) instead of the fixed name, so two deployments in one account (IAM names are global, across regions) do not collide."
  type        = bool
  default     = true
}
