variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name prefix of every resource."
  type        = string
  default     = "callback-bridge"
}

variable "tags" {
  description = "Tags applied to every resource (provider default_tags)."
  type        = map(string)
  default = {
    Project = "callback-bridge"
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key ARN for the queues; null (default) uses SQS-managed SSE."
  type        = string
  default     = null
}

################################################################################
# State machine
################################################################################

variable "map_mode" {
  description = "Map mode of the state machine: INLINE or DISTRIBUTED."
  type        = string
  default     = "INLINE"
}

variable "heartbeat_seconds" {
  description = "Seconds between worker heartbeats before a job task times out."
  type        = number
  default     = 600
}

variable "timeout_seconds" {
  description = "Maximum duration of one job, in seconds."
  type        = number
  default     = 86400
}

variable "max_concurrency" {
  description = "Map MaxConcurrency (0 = unlimited)."
  type        = number
  default     = 0
}

################################################################################
# Completion Lambda
################################################################################

variable "lambda_package_path" {
  description = "Path of the completion Lambda zip (bridge package + pydantic), built as described in infra/modules/completion/README.md."
  type        = string
  default     = "../../../dist/callback-bridge-lambda.zip"
}

variable "lambda_architecture" {
  description = "Architecture of the completion Lambda (x86_64 or arm64); the package must be built for it."
  type        = string
  default     = "x86_64"
}

variable "powertools_layer_version" {
  description = "Version of the public AWSLambdaPowertoolsPythonV3-python312-<arch> layer to use; check the Powertools documentation for the latest."
  type        = number
  default     = 27
}

variable "powertools_layer_arn" {
  description = "Full Powertools layer ARN, overriding the one built from region, lambda_architecture and powertools_layer_version (e.g. in China or GovCloud regions)."
  type        = string
  default     = null
}

################################################################################
# Workers
################################################################################

variable "vpc_id" {
  description = "VPC of the worker subnets."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the workers (with a NAT gateway or VPC endpoints for SQS, Step Functions and the package index)."
  type        = list(string)
}

variable "ami_id" {
  description = "Worker AMI; null (default) picks the latest Amazon Linux 2023 x86_64 AMI."
  type        = string
  default     = null
}

variable "instance_type" {
  description = "Worker instance type (x86_64 unless ami_id is an arm64 AMI)."
  type        = string
  default     = "m7i.large"
}

variable "min_size" {
  description = "Minimum (and initial) number of workers; at least 1."
  type        = number
  default     = 1
}

variable "max_size" {
  description = "Maximum number of workers."
  type        = number
  default     = 4
}

variable "package_spec" {
  description = "pip requirement installed on the workers."
  type        = string
  default     = "callback-bridge"
}

variable "worker_handler" {
  description = "BRIDGE_WORKER_HANDLER (module:function); set this or worker_command."
  type        = string
  default     = null
}

variable "worker_command" {
  description = "BRIDGE_WORKER_COMMAND (shell command); set this or worker_handler."
  type        = string
  default     = null
}

variable "worker_concurrency" {
  description = "Jobs each worker runs at the same time."
  type        = number
  default     = 1
}

variable "target_backlog_per_instance" {
  description = "Scaling target: visible jobs per worker (acceptable latency / average job duration x worker_concurrency)."
  type        = number
  default     = 2
}

################################################################################
# Alarms
################################################################################

variable "alarm_sns_topic_arns" {
  description = "SNS topics notified by the alarms."
  type        = list(string)
  default     = []
}

variable "oldest_job_age_threshold_seconds" {
  description = "Alarm threshold on the age of the oldest job message (above your longest job)."
  type        = number
  default     = 3600
}
