variable "create" {
  description = "Create the state machine and its role and log group; false creates nothing (outputs are null)."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name of the state machine; also used for its IAM role (<name>-state-machine) and log group (/aws/vendedlogs/states/<name>)."
  type        = string
  default     = "callback-bridge"

  validation {
    # 80 is the state machine name limit; the role name adds "-state-machine" (64 max).
    condition     = can(regex("^[A-Za-z0-9_-]{1,50}$", var.name))
    error_message = "name must be 1-50 characters of A-Z, a-z, 0-9, '-' or '_'."
  }
}

variable "jobs_queue_url" {
  description = "URL of the jobs queue (queues module output jobs_queue_url); rendered into the definition."
  type        = string

  validation {
    condition     = can(regex("^(https://|http://(127\\.0\\.0\\.1|localhost)(:[0-9]+)?/)", var.jobs_queue_url))
    error_message = "jobs_queue_url must be an SQS queue URL (https://..., or http:// on a loopback endpoint: 127.0.0.1 or localhost)."
  }
}

variable "jobs_queue_arn" {
  description = "ARN of the jobs queue; the only queue the state machine role may send to."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.jobs_queue_arn))
    error_message = "jobs_queue_arn must be an SQS queue ARN."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the jobs queue, if any. When set, the role gets kms:GenerateDataKey and kms:Decrypt on this key only. null (default) for SQS-managed SSE."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (not a key ID or alias) or null."
  }
}

variable "map_mode" {
  description = "Map state mode: INLINE (iterations run inside the execution, effectively at most 40 at a time) or DISTRIBUTED (each item is a STANDARD child execution; the role then also gets states:StartExecution on this state machine and states:DescribeExecution/StopExecution on its child executions)."
  type        = string
  default     = "INLINE"

  validation {
    condition     = contains(["INLINE", "DISTRIBUTED"], var.map_mode)
    error_message = "map_mode must be INLINE or DISTRIBUTED."
  }
}

variable "fanout_bucket_arn" {
  description = "ARN of the fan-out bucket (fanout module output bucket_arn), or null (default). When set, executions started with {\"items\": {\"bucket\", \"key\"}} can run: the role gets s3:GetObject on <bucket>/items/* (the Distributed Map's ItemReader), s3:PutObject, s3:GetObject, s3:ListMultipartUploadParts and s3:AbortMultipartUpload on <bucket>/results/* (its ResultWriter), and the Distributed Map's states:StartExecution / DescribeExecution / StopExecution whatever map_mode. null: only {\"jobs\": [...]} executions can run."
  type        = string
  default     = null

  validation {
    condition     = var.fanout_bucket_arn == null || can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,62}$", var.fanout_bucket_arn))
    error_message = "fanout_bucket_arn must be an S3 bucket ARN (arn:aws:s3:::<bucket>) or null."
  }
}

variable "fanout_kms_key_arn" {
  description = "KMS key of the fan-out bucket's default encryption (fanout module output kms_key_arn), or null for SSE-S3. With fanout_bucket_arn, the role gets kms:GenerateDataKey and kms:Decrypt on it."
  type        = string
  default     = null

  validation {
    condition     = var.fanout_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.fanout_kms_key_arn))
    error_message = "fanout_kms_key_arn must be a KMS key ARN (not a key ID or alias) or null."
  }
}

################################################################################
# Job failures at the execution level (StateMachineParams in bridge/state_machine.py)
################################################################################

variable "failure_policy" {
  description = "What failed jobs do to their execution. \"report\" (default): each failure is an entry {status = FAILED, error, cause} of the output and the execution succeeds. \"fail\": the execution fails with error Bridge.JobsFailed, its cause naming the counts (\"2 of 6 jobs failed ...\") and the distinct job errors, when more jobs failed than tolerated_failure_count or more than tolerated_failure_percentage of them (any failure when neither is set), so that alarms on failed executions (ExecutionsFailed) mean failed work. Same behaviour for INLINE and DISTRIBUTED maps."
  type        = string
  default     = "report"

  validation {
    condition     = contains(["report", "fail"], var.failure_policy)
    error_message = "failure_policy must be \"report\" or \"fail\"."
  }
}

variable "tolerated_failure_count" {
  description = "With failure_policy = \"fail\": the number of failed jobs an execution tolerates; more fails it. null (default): 0, unless tolerated_failure_percentage is set (then only the percentage applies)."
  type        = number
  default     = null

  validation {
    condition     = var.tolerated_failure_count == null ? true : (var.tolerated_failure_count >= 0 && floor(var.tolerated_failure_count) == var.tolerated_failure_count)
    error_message = "tolerated_failure_count must be an integer >= 0, or null."
  }
}

variable "tolerated_failure_percentage" {
  description = "With failure_policy = \"fail\": the percentage (integer 0-100) of an execution's jobs that may fail; more fails it. With both limits set, exceeding either fails the execution (as a Distributed Map's ToleratedFailureCount and ToleratedFailurePercentage do). null (default): no percentage limit."
  type        = number
  default     = null

  validation {
    # Integers only: the definition's percentage check is exact for integers (ASL has no
    # division; see MeasureFailures in infra/statemachine/bridge.asl.json).
    condition     = var.tolerated_failure_percentage == null ? true : (var.tolerated_failure_percentage >= 0 && var.tolerated_failure_percentage <= 100 && floor(var.tolerated_failure_percentage) == var.tolerated_failure_percentage)
    error_message = "tolerated_failure_percentage must be an integer from 0 to 100, or null."
  }
}

################################################################################
# Timing (bridge/timing.py and docs/timing.md: the same rules, the same numbers)
################################################################################

variable "heartbeat_seconds" {
  description = "HeartbeatSeconds of the job task, or null (default) to leave it out of the definition. Its clock starts when the job message is sent, so time in the queue counts against it: by default liveness comes from SQS instead (a dead worker's message reappears after the visibility timeout, runs again, and dead-letters after maxReceiveCount). When set, it must be at least max_queue_wait_seconds + jobs_visibility_timeout_seconds + worker_heartbeat_interval_seconds + 60 and below timeout_seconds (checked at plan time)."
  type        = number
  default     = null

  validation {
    condition     = var.heartbeat_seconds == null ? true : (var.heartbeat_seconds >= 1 && floor(var.heartbeat_seconds) == var.heartbeat_seconds)
    error_message = "heartbeat_seconds must be a positive integer, or null to leave HeartbeatSeconds out (liveness then comes from SQS)."
  }
}

variable "timeout_seconds" {
  description = "TimeoutSeconds of the job task: the longest a job may take from the moment its message is sent, queue wait, run, redeliveries and reporting included (default 24 hours). At least max_queue_wait_seconds + job_timeout_seconds + worker_cancel_grace_seconds + 60 (checked at plan time)."
  type        = number
  default     = 86400

  validation {
    # A STANDARD execution lasts at most one year.
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 31536000 && floor(var.timeout_seconds) == var.timeout_seconds
    error_message = "timeout_seconds must be an integer between 1 and 31536000 (one year)."
  }
}

variable "max_queue_wait_seconds" {
  description = "Longest a job may wait in the jobs queue before a worker picks it up: the acceptable backlog the consumers' scaling target is set for (target_backlog_per_slot). Not rendered; the task timeouts are validated against it."
  type        = number
  default     = 1800

  validation {
    condition     = var.max_queue_wait_seconds >= 1 && floor(var.max_queue_wait_seconds) == var.max_queue_wait_seconds
    error_message = "max_queue_wait_seconds must be a positive integer."
  }
}

variable "job_timeout_seconds" {
  description = "Longest any job may run on a worker, the largest per-type override included (the consumers module's job_timeout_seconds). Not rendered; timeout_seconds is validated against it."
  type        = number
  default     = 42600

  validation {
    # bridge.timing.longest_job_s(): SQS keeps a message hidden at most 43200 s from its
    # receipt; the worker needs 10 s to kill a job and 60 s to report it.
    condition     = var.job_timeout_seconds >= 1 && var.job_timeout_seconds <= 43130 && floor(var.job_timeout_seconds) == var.job_timeout_seconds
    error_message = "job_timeout_seconds must be an integer between 1 and 43130: SQS keeps a message hidden at most 43200 s from its receipt, minus 70 s to kill and report; split longer work into several jobs."
  }
}

variable "worker_heartbeat_interval_seconds" {
  description = "Seconds between the workers' SendTaskHeartbeat calls for each execution they run jobs of, or each task when heartbeat_seconds is set (the consumers module's heartbeat_interval_seconds). Not rendered; heartbeat_seconds is validated against it."
  type        = number
  default     = 360

  validation {
    condition     = var.worker_heartbeat_interval_seconds > 0
    error_message = "worker_heartbeat_interval_seconds must be positive."
  }
}

variable "worker_cancel_grace_seconds" {
  description = "Seconds a worker waits between SIGTERM and SIGKILL when it stops a job (the consumers module's cancel_grace_seconds). Not rendered; timeout_seconds is validated against it."
  type        = number
  default     = 10

  validation {
    condition     = var.worker_cancel_grace_seconds > 0
    error_message = "worker_cancel_grace_seconds must be positive."
  }
}

variable "jobs_visibility_timeout_seconds" {
  description = "Visibility timeout of the jobs queue (pass the queues module's jobs_visibility_timeout_seconds): how long a crashed worker's job stays hidden before it is redelivered. Not rendered; heartbeat_seconds is validated against it."
  type        = number
  default     = 600

  validation {
    condition     = var.jobs_visibility_timeout_seconds >= 1 && var.jobs_visibility_timeout_seconds <= 43200 && floor(var.jobs_visibility_timeout_seconds) == var.jobs_visibility_timeout_seconds
    error_message = "jobs_visibility_timeout_seconds must be an integer between 1 and 43200 (SQS allows at most 12 hours)."
  }
}

################################################################################
# Retries and concurrency
################################################################################

variable "retry_interval_seconds" {
  description = "IntervalSeconds of the retry on Bridge.Retryable errors (doubled on each attempt, BackoffRate 2.0)."
  type        = number
  default     = 30

  validation {
    condition     = var.retry_interval_seconds >= 1 && var.retry_interval_seconds <= 99999999 && floor(var.retry_interval_seconds) == var.retry_interval_seconds
    error_message = "retry_interval_seconds must be an integer between 1 and 99999999."
  }
}

variable "retry_max_attempts" {
  description = "MaxAttempts of the retry on Bridge.Retryable errors; 0 disables retries."
  type        = number
  default     = 2

  validation {
    condition     = var.retry_max_attempts >= 0 && var.retry_max_attempts <= 99999999 && floor(var.retry_max_attempts) == var.retry_max_attempts
    error_message = "retry_max_attempts must be an integer between 0 and 99999999."
  }
}

variable "max_concurrency" {
  description = "MaxConcurrency of the Map state; 0 means no limit (an INLINE Map still runs at most about 40 iterations at a time, a DISTRIBUTED Map up to 10000)."
  type        = number
  default     = 0

  validation {
    condition     = var.max_concurrency >= 0 && var.max_concurrency <= 10000 && floor(var.max_concurrency) == var.max_concurrency
    error_message = "max_concurrency must be an integer between 0 and 10000."
  }
}

variable "default_job_type" {
  description = "Job type used when an item of $.jobs has no \"type\" field. It is embedded in a JSON string inside an intrinsic function, hence the restricted character set."
  type        = string
  default     = "default"

  validation {
    condition     = can(regex("^[A-Za-z0-9._:/-]{1,128}$", var.default_job_type))
    error_message = "default_job_type must be 1-128 characters of A-Z, a-z, 0-9, '.', '_', ':', '/' or '-'."
  }
}

variable "log_level" {
  description = "Execution history log level sent to CloudWatch Logs: ALL, ERROR, FATAL or OFF."
  type        = string
  default     = "ERROR"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL", "OFF"], var.log_level)
    error_message = "log_level must be ALL, ERROR, FATAL or OFF."
  }
}

variable "include_execution_data" {
  description = "Log execution input, output and state data. Off by default: job messages carry task tokens, and anyone who can read a token can complete the task."
  type        = bool
  default     = false
}

variable "log_retention_in_days" {
  description = "Retention of the state machine's log group, in days (0 = never expire)."
  type        = number
  default     = 365

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be one of the values CloudWatch Logs accepts (0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key ARN to encrypt the log group with; null (default) uses CloudWatch Logs' own encryption. The key policy must allow the logs service principal."
  type        = string
  default     = null
}

variable "tracing_enabled" {
  description = "Enable AWS X-Ray tracing of executions (adds the X-Ray write actions to the role)."
  type        = bool
  default     = false
}

variable "role_permissions_boundary_arn" {
  description = "Permissions boundary to attach to the state machine role, if your account requires one."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource of the module."
  type        = map(string)
  default     = {}
}

variable "use_name_prefix" {
  description = "Give the IAM role a unique name from a prefix (<name>-state-machine-<suffix>, at most 38 characters before the suffix) instead of the fixed name, so two deployments in one account (IAM names are global, across regions) do not collide."
  type        = bool
  default     = true
}

variable "execution_data_kms_key_arn" {
  description = "ARN of a customer-managed symmetric KMS key encrypting the state machine's execution data (inputs, outputs, job messages with their task tokens, error causes) and definition; null (default) uses an AWS-owned key. The role gets kms:GenerateDataKey and kms:Decrypt on it for this state machine only; the key policy must allow the role (role_arn output) too."
  type        = string
  default     = null

  validation {
    condition     = var.execution_data_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.execution_data_kms_key_arn))
    error_message = "execution_data_kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), not an alias or key ID, or null."
  }
}

variable "kms_data_key_reuse_period_seconds" {
  description = "How long Step Functions reuses a data key of execution_data_kms_key_arn before calling GenerateDataKey again (60 to 900 s)."
  type        = number
  default     = 300

  validation {
    condition     = var.kms_data_key_reuse_period_seconds >= 60 && var.kms_data_key_reuse_period_seconds <= 900
    error_message = "kms_data_key_reuse_period_seconds must be between 60 and 900."
  }
}
