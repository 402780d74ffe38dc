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

variable "operator_arns" {
  description = "IAM principal ARNs (wildcards allowed) of the operators who redrive dead letters (callback-bridge dlq redrive) or run workers outside the Auto Scaling group: the queue policies let only them and the bridge's own roles send messages."
  type        = list(string)
  default     = []
}

variable "execution_data_kms_key_arn" {
  description = "Customer managed KMS key ARN for the state machine's execution data (job messages carry task tokens); null (default) uses an AWS-owned key. Its key policy must allow the state machine role."
  type        = string
  default     = null
}

variable "log_kms_key_arn" {
  description = "Customer managed KMS key ARN for the CloudWatch log groups (state machine, Lambdas); null uses CloudWatch Logs' own encryption. Its key policy must allow logs.<region>.amazonaws.com."
  type        = string
  default     = null
}

variable "lambda_environment_kms_key_arn" {
  description = "Customer managed KMS key ARN for the Lambda functions' environment variables; null uses the Lambda service key."
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

variable "failure_policy" {
  description = "\"report\" (default): failed jobs are entries of a succeeded execution's output. \"fail\": the execution fails with Bridge.JobsFailed when more jobs failed than tolerated (see the state_machine module)."
  type        = string
  default     = "report"
}

variable "tolerated_failure_count" {
  description = "With failure_policy = \"fail\": failed jobs an execution tolerates (null: 0 unless a percentage is set)."
  type        = number
  default     = null
}

variable "tolerated_failure_percentage" {
  description = "With failure_policy = \"fail\": percentage (integer 0-100) of an execution's jobs that may fail (null: no percentage limit)."
  type        = number
  default     = null
}

variable "heartbeat_seconds" {
  description = "HeartbeatSeconds of the job task; null (default) leaves it out and liveness comes from SQS (docs/timing.md). When set: at least max_queue_wait_seconds + jobs_visibility_timeout_seconds + heartbeat_interval_seconds + 60."
  type        = number
  default     = null
}

variable "timeout_seconds" {
  description = "TimeoutSeconds of the job task: queue wait + run + reporting; at least max_queue_wait_seconds + job_timeout_seconds + cancel_grace_seconds + 60."
  type        = number
  default     = 86400
}

variable "max_concurrency" {
  description = "Map MaxConcurrency (0 = unlimited)."
  type        = number
  default     = 0
}

################################################################################
# Timing (docs/timing.md): one value each, passed to every module that needs it
################################################################################

variable "max_queue_wait_seconds" {
  description = "Longest a job may wait in the queue: the acceptable backlog target_backlog_per_slot is set for."
  type        = number
  default     = 1800
}

variable "job_timeout_seconds" {
  description = "Longest a job may run on a worker (at most 43130: the SQS 12-hour visibility cap minus 70 s)."
  type        = number
  default     = 42600
}

variable "jobs_visibility_timeout_seconds" {
  description = "Visibility timeout of the jobs queue: how long a crashed worker's job stays hidden before it runs again."
  type        = number
  default     = 600
}

variable "heartbeat_interval_seconds" {
  description = "Seconds between a worker's SendTaskHeartbeat calls for each execution it runs jobs of (how fast a stopped execution cancels its jobs)."
  type        = number
  default     = 360
}

variable "drain_timeout_seconds" {
  description = "How long a stopping worker waits for running jobs before it cancels them and hands them back."
  type        = number
  default     = 1800
}

variable "cancel_grace_seconds" {
  description = "Seconds between SIGTERM and SIGKILL when a worker stops a job."
  type        = number
  default     = 10
}

variable "termination_heartbeat_timeout_seconds" {
  description = "Heartbeat timeout of the workers' termination lifecycle hook (BRIDGE_LIFECYCLE_HOOK_TIMEOUT): a draining worker heartbeats the hook every third of it; drain_timeout_seconds + cancel_grace_seconds + 60 must fit in min(48 h, 100 x this)."
  type        = number
  default     = 600
}

################################################################################
# Dead letters (docs/dead-letters.md)
################################################################################

variable "claim_check" {
  description = "Deploy the claim-check bucket: outputs too large for a result message (or over claim_check_threshold_bytes) are stored under s3://<bucket>/claim-checks/ and the task output becomes a pointer to them (bridge/claim_check.py). false: such outputs fail their task with Bridge.OutputTooLarge."
  type        = bool
  default     = true
}

variable "claim_check_expiration_days" {
  description = "Days after which a claim-checked output expires (lifecycle rule on claim-checks/); longer than the longest execution plus whatever reads its output afterwards."
  type        = number
  default     = 30
}

variable "claim_check_kms_key_arn" {
  description = "Customer managed KMS key for the claim-check bucket's default encryption; null (default) uses SSE-S3 (AES256). The workers' role gets kms:GenerateDataKey on it."
  type        = string
  default     = null
}

variable "claim_check_threshold_bytes" {
  description = "Outputs over this many bytes always go to the claim-check bucket; null (default) claim-checks only outputs that do not fit in a result message. Needs claim_check."
  type        = number
  default     = null
}

variable "dead_letter_handling" {
  description = "Deploy dead-letter handling: archive queues, the DLQs' redrive to them, and the dead-letter Lambda that fails each dead letter's task with Bridge.DeadLettered (or delivers its result) and archives it. false for teams that redrive instead: executions then wait for their own timeouts."
  type        = bool
  default     = true
}

################################################################################
# Completion Lambda
################################################################################

variable "lambda_package_path" {
  description = "Path of the Lambda zip (bridge package + pydantic) deployed as the completion and the dead-letter Lambda, built as described in infra/modules/completion/README.md."
  type        = string
  default     = "../../../dist/callback-bridge-lambda-py3.12-x86_64.zip"
}

variable "lambda_architecture" {
  description = "Architecture of the completion and dead-letter Lambdas (x86_64 or arm64); the package must be built for it."
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

variable "worker_wheels_s3_uri" {
  description = "s3://bucket/prefix/ holding the worker wheels: `make wheels HANDLER_PACKAGES=...`, then `aws s3 sync dist/wheels s3://bucket/prefix/` (infra/README.md, Artifacts)."
  type        = string
}

variable "worker_wheels_kms_key_arn" {
  description = "Customer managed KMS key ARN of the wheels bucket's SSE-KMS, if any (the workers get kms:Decrypt on it); null: SSE-S3."
  type        = string
  default     = null
}

variable "handler_packages" {
  description = "Requirements of the handler packages installed beside callback-bridge from those wheels, e.g. [\"mypackage==1.4.0\"]."
  type        = list(string)
  default     = []
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

variable "target_backlog_per_slot" {
  description = "Scaling target: jobs (waiting + running) per worker slot (slots = workers x worker_concurrency); 1 + max_queue_wait_seconds / average job duration."
  type        = number
  default     = 2
}

variable "use_mixed_instances_policy" {
  description = "Run the workers through a mixed instances policy (mixed_instance_types, on-demand base, spot above it)."
  type        = bool
  default     = false
}

variable "mixed_instance_types" {
  description = "Instance types of the mixed instances policy (empty: instance_type only)."
  type        = list(string)
  default     = []
}

variable "on_demand_base_capacity" {
  description = "Mixed instances policy: workers that are always on-demand."
  type        = number
  default     = 1
}

variable "on_demand_percentage_above_base_capacity" {
  description = "Mixed instances policy: on-demand percentage above the base; the rest is spot."
  type        = number
  default     = 0
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

variable "fanout" {
  description = "Deploy the fan-out bucket: large fan-outs put their jobs in it (callback-bridge run --jobs-file) and a Distributed Map reads them from S3 and writes each job's result back (infra/modules/fanout). false: only {\"jobs\": [...]} executions, whose input and output must each fit 256 KiB."
  type        = bool
  default     = true
}

variable "fanout_expiration_days" {
  description = "Days after which the fan-out bucket's job files and result files expire."
  type        = number
  default     = 30
}

variable "fanout_kms_key_arn" {
  description = "KMS key for the fan-out bucket's default encryption (SSE-KMS); null (default) uses SSE-S3. The state machine's role gets kms:GenerateDataKey and kms:Decrypt on it."
  type        = string
  default     = null
}
