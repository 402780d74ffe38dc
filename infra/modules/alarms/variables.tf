variable "create" {
  description = "Create the alarms; false creates nothing (every output is then empty or null)."
  type        = bool
  default     = true
}

variable "name" {
  description = "Prefix of the alarm names."
  type        = string
  default     = "callback-bridge"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,200}$", var.name))
    error_message = "name must be 1-200 characters of A-Z, a-z, 0-9, '.', '-' or '_'."
  }
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified when an alarm fires (and when it recovers, see ok_actions_enabled). Empty: alarms without notifications."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.alarm_actions : can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$", a))])
    error_message = "alarm_actions must be SNS topic ARNs."
  }
}

variable "ok_actions_enabled" {
  description = "Also notify alarm_actions when an alarm returns to OK."
  type        = bool
  default     = true
}

variable "jobs_queue_name" {
  description = "Name of the jobs queue (oldest job age alarm)."
  type        = string
}

variable "jobs_dlq_name" {
  description = "Name of the jobs dead-letter queue."
  type        = string
}

variable "results_dlq_name" {
  description = "Name of the results dead-letter queue."
  type        = string
}

variable "archive_names" {
  description = "Names of the dead-letter archives to alarm on, keyed jobs / results (queues module outputs jobs_archive_name and results_archive_name); {} (default) without dead-letter handling. With handling on, the dead-letter Lambda empties the DLQs within seconds, so the archives are where dead letters wait for an operator."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.archive_names) : contains(["jobs", "results"], k)])
    error_message = "archive_names keys must be jobs and/or results."
  }
}

variable "completion_function_name" {
  description = "Name of the completion Lambda function (Errors alarm)."
  type        = string
}

variable "state_machine_arn" {
  description = "ARN of the state machine (ExecutionsFailed and ExecutionsTimedOut alarms)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:.+$", var.state_machine_arn))
    error_message = "state_machine_arn must be a Step Functions state machine ARN."
  }
}

variable "oldest_job_age_threshold_seconds" {
  description = "Alarm when ApproximateAgeOfOldestMessage of the jobs queue exceeds this. The metric counts messages that are in flight as well, so choose a value above your longest expected job."
  type        = number
  default     = 3600

  validation {
    condition     = var.oldest_job_age_threshold_seconds > 0
    error_message = "oldest_job_age_threshold_seconds must be positive."
  }
}

variable "oldest_job_age_evaluation_periods" {
  description = "Consecutive 1-minute periods above the threshold before the oldest job age alarm fires."
  type        = number
  default     = 5

  validation {
    condition     = var.oldest_job_age_evaluation_periods >= 1
    error_message = "oldest_job_age_evaluation_periods must be at least 1."
  }
}

variable "completion_errors_threshold" {
  description = "Alarm when the completion Lambda has more errors than this in one period."
  type        = number
  default     = 0

  validation {
    condition     = var.completion_errors_threshold >= 0
    error_message = "completion_errors_threshold must not be negative."
  }
}

variable "period_seconds" {
  description = "Period of the Lambda and state machine alarms, in seconds."
  type        = number
  default     = 300

  validation {
    condition     = contains([60, 120, 180, 240, 300, 600, 900, 1800, 3600], var.period_seconds)
    error_message = "period_seconds must be one of 60, 120, 180, 240, 300, 600, 900, 1800, 3600."
  }
}

variable "tags" {
  description = "Tags added to every alarm."
  type        = map(string)
  default     = {}
}

variable "results_queue_name" {
  description = "Name of the results queue (oldest result age alarm); null leaves that alarm out."
  type        = string
  default     = null
}

variable "oldest_result_age_threshold_seconds" {
  description = "Alarm when a result has waited longer than this for the completion Lambda. Results are handled in seconds; the default allows a few retries of a failed batch (the results queue's visibility timeout)."
  type        = number
  default     = 900

  validation {
    condition     = var.oldest_result_age_threshold_seconds >= 60
    error_message = "oldest_result_age_threshold_seconds must be at least 60 (SQS publishes the metric every minute)."
  }
}

variable "dead_letter_function_name" {
  description = "Name of the dead-letter Lambda function (throttles alarm, and the DeadLettersFailed alarm); null when dead-letter handling is off."
  type        = string
  default     = null
}

variable "lambda_throttles_threshold" {
  description = "Alarm when a Lambda function is throttled more than this many times in period_seconds."
  type        = number
  default     = 0

  validation {
    condition     = var.lambda_throttles_threshold >= 0
    error_message = "lambda_throttles_threshold must be 0 or more."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the handlers' metrics (POWERTOOLS_METRICS_NAMESPACE of the Lambdas)."
  type        = string
  default     = "CallbackBridge"
}

variable "completion_service_name" {
  description = "The service dimension the completion Lambda publishes its metrics with (bridge.completion.SERVICE)."
  type        = string
  default     = "callback-bridge"
}

variable "dead_letter_service_name" {
  description = "The service dimension the dead-letter Lambda publishes its metrics with (bridge/dead_letter.py)."
  type        = string
  default     = "callback-bridge-dead-letters"
}

variable "autoscaling_group_name" {
  description = "The workers' Auto Scaling group (consumers module output autoscaling_group_name): alarms when workers_replaced_threshold of its workers are replaced within an hour (CallbackBridge WorkersReplaced, counted by their bootstrap). null: no such alarm."
  type        = string
  default     = null
}

variable "workers_replaced_threshold" {
  description = "Workers replaced within an hour (failed bootstrap, or a worker systemd gave up on) that raise the workers-replaced alarm."
  type        = number
  default     = 2

  validation {
    condition     = var.workers_replaced_threshold >= 1 && floor(var.workers_replaced_threshold) == var.workers_replaced_threshold
    error_message = "workers_replaced_threshold must be a whole number, at least 1."
  }
}
