variable "create" {
  description = "Create the queues (and their policies and archives); false creates nothing (outputs are null)."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name prefix for the queues: <name>-jobs, <name>-jobs-dlq, <name>-results, <name>-results-dlq and, with dead_letter_handling, the archives <name>-jobs-dead-letters and <name>-results-dead-letters (then at most 59 characters)."
  type        = string
  default     = "callback-bridge"

  validation {
    # 80 characters is the SQS limit; the longest suffix is "-results-dlq" (12).
    condition     = can(regex("^[A-Za-z0-9_-]{1,68}$", var.name))
    error_message = "name must be 1-68 characters of A-Z, a-z, 0-9, '-' or '_'."
  }
}

variable "kms_master_key_id" {
  description = "KMS key (ID, alias or ARN) for server-side encryption of every queue (archives included). null (default) uses SQS-managed SSE (SSE-SQS). A customer managed key must allow the producers and consumers (state machine role, worker instance role, completion Lambda role) to use it."
  type        = string
  default     = null
}

variable "kms_data_key_reuse_period_seconds" {
  description = "Seconds SQS may reuse a data key before calling KMS again; only used with kms_master_key_id."
  type        = number
  default     = 300

  validation {
    condition     = var.kms_data_key_reuse_period_seconds >= 60 && var.kms_data_key_reuse_period_seconds <= 86400
    error_message = "kms_data_key_reuse_period_seconds must be between 60 and 86400."
  }
}

variable "jobs_visibility_timeout_seconds" {
  description = "Visibility timeout of the jobs queue (default 600 s, the timing model's; docs/timing.md). Workers extend a running job's message by this much every half of it (two extension requests per 10-job batch per 10 minutes; a failed one is tried again every 15 s); it is also how long a crashed worker's job stays hidden before it runs again. Pass it to the state_machine module (jobs_visibility_timeout_seconds) when heartbeat_seconds is set."
  type        = number
  default     = 600

  validation {
    condition     = var.jobs_visibility_timeout_seconds >= 1 && var.jobs_visibility_timeout_seconds <= 43200 && floor(var.jobs_visibility_timeout_seconds) == var.jobs_visibility_timeout_seconds
    error_message = "jobs_visibility_timeout_seconds must be an integer between 1 and 43200 (SQS allows at most 12 hours; 0 would hand every running job to another worker at once)."
  }
}

variable "results_visibility_timeout_seconds" {
  description = "Visibility timeout of the results queue. AWS advises at least 6 times the completion Lambda's timeout (plus maximum_batching_window_in_seconds) for an SQS event source; the default 60 matches the completion module's default 10 s timeout."
  type        = number
  default     = 60

  validation {
    condition     = var.results_visibility_timeout_seconds >= 0 && var.results_visibility_timeout_seconds <= 43200
    error_message = "results_visibility_timeout_seconds must be between 0 and 43200 (12 hours)."
  }
}

variable "jobs_message_retention_seconds" {
  description = "Retention of the jobs queue in seconds (default 4 days). Must be shorter than dlq_message_retention_seconds."
  type        = number
  default     = 345600

  validation {
    condition     = var.jobs_message_retention_seconds >= 60 && var.jobs_message_retention_seconds <= 1209600
    error_message = "jobs_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "results_message_retention_seconds" {
  description = "Retention of the results queue in seconds (default 4 days). Must be shorter than dlq_message_retention_seconds."
  type        = number
  default     = 345600

  validation {
    condition     = var.results_message_retention_seconds >= 60 && var.results_message_retention_seconds <= 1209600
    error_message = "results_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "dlq_message_retention_seconds" {
  description = "Retention of both dead-letter queues in seconds. Default and maximum: 14 days. Must be longer than the source queues' retention (checked at plan time)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "jobs_max_receive_count" {
  description = "Receives of a job message before SQS moves it to the jobs DLQ, whose handler fails the task with Bridge.DeadLettered: a worker that dies mid-job, or a drain that hands a job back, costs one receive (the timing model's maxReceiveCount)."
  type        = number
  default     = 5

  validation {
    condition     = var.jobs_max_receive_count >= 1 && var.jobs_max_receive_count <= 1000
    error_message = "jobs_max_receive_count (maxReceiveCount) must be between 1 and 1000: below 1 no job could ever be received; use 3 or more (default 5), since a crash, a drain release or a stop racing a long poll each cost a receive."
  }
}

variable "results_max_receive_count" {
  description = "Receives of a result message before SQS moves it to the results DLQ (each failed completion Lambda attempt counts)."
  type        = number
  default     = 5

  validation {
    condition     = var.results_max_receive_count >= 1 && var.results_max_receive_count <= 1000
    error_message = "results_max_receive_count (maxReceiveCount) must be between 1 and 1000: below 1 no result could ever be received; use 3 or more (default 5)."
  }
}

variable "dead_letter_handling" {
  description = "Deploy dead-letter handling (docs/dead-letters.md): an archive queue per DLQ (<name>-<side>-dead-letters) and a redrive policy on each DLQ to its archive with maxReceiveCount = the source queue's + 3. Pair it with the dead_letter module (create = the same value), whose Lambda consumes the DLQs, fails each dead letter's task with Bridge.DeadLettered and copies the letter to the archive. false (for teams that redrive instead): no archives, and the DLQs have no redrive policy, so peeking never moves a letter; executions then wait for their own timeouts."
  type        = bool
  default     = true
}

variable "archive_message_retention_seconds" {
  description = "Retention of the dead-letter archives in seconds (default and maximum: 14 days). A letter the handler copies counts from its copy; one the DLQ's redrive moves there bare keeps its original enqueue time."
  type        = number
  default     = 1209600

  validation {
    condition     = var.archive_message_retention_seconds >= 60 && var.archive_message_retention_seconds <= 1209600
    error_message = "archive_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "receive_wait_time_seconds" {
  description = "Long-polling wait time applied to all queues (20 = the maximum, fewest empty receives)."
  type        = number
  default     = 20

  validation {
    condition     = var.receive_wait_time_seconds >= 0 && var.receive_wait_time_seconds <= 20
    error_message = "receive_wait_time_seconds must be between 0 and 20."
  }
}

variable "max_message_size" {
  description = "Maximum message size in bytes for all queues (a job message carries its task token and the job input)."
  type        = number
  default     = 262144

  validation {
    condition     = var.max_message_size >= 1024 && var.max_message_size <= 262144
    error_message = "max_message_size must be between 1024 and 262144 bytes."
  }
}

variable "tags" {
  description = "Tags added to every queue."
  type        = map(string)
  default     = {}
}

variable "sender_arns" {
  description = "IAM principal ARNs (roles) allowed to send to each queue, keyed jobs, results, jobs_dlq, results_dlq, jobs_archive, results_archive: each listed queue's policy denies sqs:SendMessage to everyone else. Typically jobs = [state machine role], results and jobs_dlq = [worker role], results_dlq = [completion role], the archives = [dead-letter role]. A queue not listed accepts any sender its IAM allows. Every queue denies requests without TLS whatever this says."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.sender_arns) : contains(["jobs", "results", "jobs_dlq", "results_dlq", "jobs_archive", "results_archive"], k)])
    error_message = "sender_arns keys must be jobs, results, jobs_dlq, results_dlq, jobs_archive or results_archive."
  }

  validation {
    condition     = alltrue(flatten([for arns in values(var.sender_arns) : [for a in arns : can(regex("^arn:aws[a-z-]*:(iam|sts)::", a))]]))
    error_message = "sender_arns values must be IAM role or user ARNs (arn:aws:iam::<account>:role/<name>)."
  }
}

variable "operator_arns" {
  description = "IAM principal ARNs (wildcards allowed, e.g. arn:aws:iam::<account>:role/ops-*) added to every sender_arns list: operators who redrive dead letters (callback-bridge dlq redrive; StartMessageMoveTask sends with the caller's permissions) or run workers outside the Auto Scaling group."
  type        = list(string)
  default     = []
}
