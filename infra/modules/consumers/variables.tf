variable "create" {
  description = "Create the workers (launch template, Auto Scaling group, scaling policy, lifecycle hook, role, profile, security group); false creates nothing (outputs are null)."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name prefix: Auto Scaling group <name>-worker (BRIDGE_ASG_NAME), its termination lifecycle hook <name>-drain (BRIDGE_LIFECYCLE_HOOK_NAME), IAM role and instance profile <name>-worker, launch template <name>-worker-*."
  type        = string
  default     = "callback-bridge"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.name))
    error_message = "name must be 1-40 characters of A-Z, a-z, 0-9, '-' or '_'."
  }
}

################################################################################
# Queues
################################################################################

variable "jobs_queue_url" {
  description = "URL of the jobs queue (BRIDGE_JOBS_QUEUE_URL)."
  type        = string

  validation {
    condition     = can(regex("^(https://|http://(127\\.0\\.0\\.1|localhost)(:[0-9]+)?/)", var.jobs_queue_url))
    error_message = "jobs_queue_url must be an SQS queue URL (https://..., or http:// on a loopback endpoint: 127.0.0.1 or localhost)."
  }
}

variable "jobs_queue_arn" {
  description = "ARN of the jobs queue: receive, delete, change visibility, get attributes; its name is the QueueName of the scaling metric."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.jobs_queue_arn))
    error_message = "jobs_queue_arn must be an SQS queue ARN."
  }
}

variable "results_queue_url" {
  description = "URL of the results queue (BRIDGE_RESULTS_QUEUE_URL)."
  type        = string

  validation {
    condition     = can(regex("^(https://|http://(127\\.0\\.0\\.1|localhost)(:[0-9]+)?/)", var.results_queue_url))
    error_message = "results_queue_url must be an SQS queue URL (https://..., or http:// on a loopback endpoint: 127.0.0.1 or localhost)."
  }
}

variable "results_queue_arn" {
  description = "ARN of the results queue (sqs:SendMessage)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.results_queue_arn))
    error_message = "results_queue_arn must be an SQS queue ARN."
  }
}

variable "jobs_dlq_url" {
  description = "URL of the jobs DLQ (BRIDGE_JOBS_DLQ_URL): the worker moves malformed job messages there."
  type        = string

  validation {
    condition     = can(regex("^(https://|http://(127\\.0\\.0\\.1|localhost)(:[0-9]+)?/)", var.jobs_dlq_url))
    error_message = "jobs_dlq_url must be an SQS queue URL (https://..., or http:// on a loopback endpoint: 127.0.0.1 or localhost)."
  }
}

variable "jobs_dlq_arn" {
  description = "ARN of the jobs DLQ (sqs:SendMessage)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.jobs_dlq_arn))
    error_message = "jobs_dlq_arn must be an SQS queue ARN."
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

variable "claim_check_bucket" {
  description = "Name of the claim-check bucket (the claim_check module's bucket_id), or null (default) for none. When set, worker.env gets BRIDGE_CLAIM_CHECK_BUCKET and the role s3:PutObject on <bucket>/claim-checks/* only; without it, outputs too large for a result message fail with Bridge.OutputTooLarge."
  type        = string
  default     = null
}

variable "claim_check_threshold_bytes" {
  description = "Outputs over this many bytes always go to the claim-check bucket (BRIDGE_CLAIM_CHECK_THRESHOLD); null (default) claim-checks only what does not fit in a result message. Needs claim_check_bucket."
  type        = number
  default     = null

  validation {
    condition     = var.claim_check_threshold_bytes == null || try(var.claim_check_threshold_bytes >= 0 && floor(var.claim_check_threshold_bytes) == var.claim_check_threshold_bytes, false)
    error_message = "claim_check_threshold_bytes must be a whole number >= 0, or null."
  }
}

variable "claim_check_kms_key_arn" {
  description = "ARN of the KMS key of the claim-check bucket's default encryption (the claim_check module's kms_key_arn), if any: adds kms:GenerateDataKey on that key. null for SSE-S3."
  type        = string
  default     = null

  validation {
    condition     = var.claim_check_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.claim_check_kms_key_arn))
    error_message = "claim_check_kms_key_arn must be a KMS key ARN (not a key ID or alias) or null."
  }
}

################################################################################
# Worker
################################################################################

variable "worker_wheels_s3_uri" {
  description = "s3://bucket/prefix/ holding the wheels the workers install with pip --no-index: callback-bridge, the handler packages and all their dependencies, for python_executable and the instance architecture. Build them with `make wheels` (dist/wheels) and upload with `aws s3 sync dist/wheels s3://bucket/prefix/` (infra/README.md, Artifacts). The instance role gets s3:GetObject on that prefix and s3:ListBucket restricted to it."
  type        = string
  default     = null

  validation {
    condition     = var.worker_wheels_s3_uri != null && can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._/=+-]*)?$", var.worker_wheels_s3_uri))
    error_message = "Set worker_wheels_s3_uri to the s3://bucket/prefix/ where the worker wheels were uploaded (`make wheels`, then `aws s3 sync dist/wheels s3://bucket/prefix/`); prefix characters: A-Z a-z 0-9 . _ / = + -. The workers install nothing from a public package index."
  }
}

variable "handler_packages" {
  description = "Requirements installed beside callback-bridge from the wheels under worker_wheels_s3_uri, e.g. [\"mypackage==1.4.0\"]: the packages of worker_handler (or worker_command). Their wheels and their dependencies' wheels must be under that prefix (`make wheels HANDLER_PACKAGES=path/to/mypackage`). The bootstrap imports worker_handler before starting the worker and marks the instance Unhealthy if it cannot."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.handler_packages : can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*(\\[[A-Za-z0-9._,-]+\\])?((==|>=|<=|~=|!=|<|>)[A-Za-z0-9.*+!_-]+(,(==|>=|<=|~=|!=|<|>)[A-Za-z0-9.*+!_-]+)*)?$", p))])
    error_message = "handler_packages must be pip requirements without spaces or URLs: a name with optional extras and version pins (\"mypackage==1.4.0\")."
  }
}

variable "python_executable" {
  description = "Python interpreter used to create the worker's virtual environment (/opt/callback-bridge)."
  type        = string
  default     = "python3.12"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.python_executable))
    error_message = "python_executable must be a command name or path."
  }
}

variable "os_packages" {
  description = "OS packages installed first (dnf, or apt-get on Debian/Ubuntu AMIs) to provide python_executable with venv and pip. The default fits Amazon Linux 2023."
  type        = list(string)
  default     = ["python3.12", "python3.12-pip"]

  validation {
    condition     = alltrue([for p in var.os_packages : can(regex("^[A-Za-z0-9.+_:-]+$", p))])
    error_message = "os_packages must be plain package names."
  }
}

variable "worker_handler" {
  description = "BRIDGE_WORKER_HANDLER: Python callable \"module:function\" that runs a job. Set this or worker_command."
  type        = string
  default     = null

  validation {
    condition     = var.worker_handler == null || can(regex("^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$", var.worker_handler))
    error_message = "worker_handler must look like package.module:function."
  }
}

variable "worker_command" {
  description = "BRIDGE_WORKER_COMMAND: shell command that runs a job (the worker runs it through a shell). Set this or worker_handler. Written to worker.env as one double-quoted value with backslashes and double quotes escaped."
  type        = string
  default     = null

  validation {
    condition     = var.worker_command == null || (length(trimspace(coalesce(var.worker_command, " "))) > 0 && !can(regex("[\\r\\n]", coalesce(var.worker_command, " "))))
    error_message = "worker_command must be a non-empty single line."
  }
}

variable "create_iam_role" {
  description = "Create the workers' IAM role (and trust ec2.amazonaws.com). false: bring one with iam_role_arn. Either way the module puts its least-privilege policy (callback-bridge-worker, plus iam_role_policy_statements) on the role and builds the instance profile from it."
  type        = bool
  default     = true
}

variable "iam_role_arn" {
  description = "ARN of an existing role for the workers (create_iam_role = false): it must trust ec2.amazonaws.com; the module adds its inline policy to it. null when the module creates the role."
  type        = string
  default     = null

  validation {
    condition     = var.iam_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", coalesce(var.iam_role_arn, "x")))
    error_message = "iam_role_arn must be an IAM role ARN (arn:aws:iam::<account>:role/<path/name>) or null."
  }
}

variable "iam_role_policy_statements" {
  description = "Extra statements for the workers' policy, keyed by Sid (e.g. what the handler itself calls): effect (default Allow), actions, resources and optional conditions (test, variable, values)."
  type = map(object({
    effect    = optional(string, "Allow")
    actions   = list(string)
    resources = list(string)
    conditions = optional(list(object({
      test     = string
      variable = string
      values   = list(string)
    })), [])
  }))
  default = {}

  validation {
    condition     = alltrue([for sid, s in var.iam_role_policy_statements : can(regex("^[A-Za-z0-9]+$", sid)) && contains(["Allow", "Deny"], s.effect) && length(s.actions) > 0 && length(s.resources) > 0])
    error_message = "iam_role_policy_statements: each key is a Sid (letters and digits), effect Allow or Deny, at least one action and one resource."
  }
}

variable "worker_wheels_kms_key_arn" {
  description = "ARN of the customer managed KMS key the wheels bucket encrypts worker_wheels_s3_uri with (SSE-KMS), if any: the instance role gets kms:Decrypt on it, without which the bootstrap cannot read the wheels. null: SSE-S3 or an AWS managed key."
  type        = string
  default     = null

  validation {
    condition     = var.worker_wheels_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/.+$", coalesce(var.worker_wheels_kms_key_arn, "x")))
    error_message = "worker_wheels_kms_key_arn must be a KMS key or alias ARN, or null."
  }
}

variable "job_user" {
  description = "Unprivileged system user the worker runs job processes as (BRIDGE_RUN_AS; the worker keeps CAP_SETUID, CAP_SETGID and CAP_KILL for it). The user data creates it (no home, nologin shell) and refuses it the instance metadata endpoint (iptables and ip6tables owner-match REJECT to 169.254.169.254 and fd00:ec2::254, restored at boot by callback-bridge-imds-block.service, ordered before the worker), so a job cannot use the instance role. null: jobs run as the worker's own user, with the role's credentials in reach."
  type        = string
  default     = "callback-bridge-job"

  validation {
    condition     = var.job_user == null || can(regex("^[a-z_][a-z0-9_-]{0,31}$", coalesce(var.job_user, "x")))
    error_message = "job_user must be a Linux user name (a lowercase letter or _, then up to 31 of a-z, 0-9, _ and -) or null."
  }

  validation {
    condition     = !contains(["root", "callback-bridge"], coalesce(var.job_user, "x"))
    error_message = "job_user must be a user of its own: not root, not the worker's user callback-bridge."
  }
}

variable "worker_concurrency" {
  description = "BRIDGE_WORKER_CONCURRENCY: jobs one instance runs at the same time."
  type        = number
  default     = 1

  validation {
    condition     = var.worker_concurrency >= 1 && var.worker_concurrency <= 1000 && floor(var.worker_concurrency) == var.worker_concurrency
    error_message = "worker_concurrency must be an integer between 1 and 1000."
  }
}

################################################################################
# Timing (bridge/timing.py and docs/timing.md: the same rules, the same numbers)
################################################################################

variable "job_timeout_seconds" {
  description = "BRIDGE_JOB_TIMEOUT: longest a job may run; the worker then kills its process group and fails the task with Bridge.JobTimeout. At most 43130: SQS keeps a message hidden at most 12 hours from its receipt, minus 70 s to kill and report. Pass the same value to the state_machine module."
  type        = number
  default     = 42600

  validation {
    condition     = var.job_timeout_seconds >= 1 && var.job_timeout_seconds <= 43130 && floor(var.job_timeout_seconds) == var.job_timeout_seconds
    error_message = "job_timeout_seconds must be an integer between 1 and 43130: SQS keeps a message hidden at most 43200 s from its receipt, minus 70 s to kill and report; split longer work into several jobs."
  }
}

variable "drain_timeout_seconds" {
  description = "BRIDGE_DRAIN_TIMEOUT: how long a stopping worker waits for its running jobs before it cancels them and hands their messages back. The systemd stop timeout follows: drain_timeout_seconds + cancel_grace_seconds + 60 (written to a drop-in), and must fit in the termination lifecycle action's global timeout (checked at plan time)."
  type        = number
  default     = 1800

  validation {
    condition     = var.drain_timeout_seconds >= 1 && floor(var.drain_timeout_seconds) == var.drain_timeout_seconds
    error_message = "drain_timeout_seconds must be a positive integer."
  }
}

variable "cancel_grace_seconds" {
  description = "BRIDGE_CANCEL_GRACE: seconds between SIGTERM and SIGKILL when the worker stops a job (cancelled, timed out, or left over at the end of a drain)."
  type        = number
  default     = 10

  validation {
    condition     = var.cancel_grace_seconds > 0
    error_message = "cancel_grace_seconds must be positive."
  }
}

variable "heartbeat_interval_seconds" {
  description = "BRIDGE_HEARTBEAT_INTERVAL: seconds between SendTaskHeartbeat calls for each execution a worker runs jobs of (each task where HeartbeatSeconds is set). A heartbeat is how a worker learns that an execution was stopped or timed out, so this bounds how long a cancelled job keeps running (1.1 x this + the cancel grace; docs/timing.md). Default 360: 100,000 jobs in flight, one per execution, send 278 heartbeats/s, 56 % of the largest regions' 500/s refill; halving it doubles that. Pass the same value to the state_machine module (worker_heartbeat_interval_seconds)."
  type        = number
  default     = 360

  validation {
    condition     = var.heartbeat_interval_seconds > 0
    error_message = "heartbeat_interval_seconds must be positive."
  }
}

variable "stale_check_age_seconds" {
  description = "BRIDGE_STALE_CHECK_AGE: a job message older than this (or redelivered) is heartbeated before it runs, so a job whose task already closed is dropped instead of run in full; 0 checks every job."
  type        = number
  default     = 30

  validation {
    condition     = var.stale_check_age_seconds >= 0
    error_message = "stale_check_age_seconds must be 0 or more."
  }
}

variable "max_queue_wait_seconds" {
  description = "BRIDGE_MAX_QUEUE_WAIT: the longest a job may wait in the queue, the acceptable backlog that target_backlog_per_slot is set for; the worker validates its timing against it. Pass the same value to the state_machine module."
  type        = number
  default     = 1800

  validation {
    condition     = var.max_queue_wait_seconds >= 1 && floor(var.max_queue_wait_seconds) == var.max_queue_wait_seconds
    error_message = "max_queue_wait_seconds must be a positive integer."
  }
}

################################################################################
# Instances
################################################################################

variable "ami_id" {
  description = "AMI of the workers. The user data expects systemd and dnf or apt-get; the default os_packages fit Amazon Linux 2023."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be an AMI ID (ami-...)."
  }
}

variable "instance_type" {
  description = "EC2 instance type of the workers."
  type        = string
  default     = "m7i.large"
}

variable "key_name" {
  description = "EC2 key pair for SSH; null (default): no key, use SSM Session Manager (enable_ssm)."
  type        = string
  default     = null
}

variable "root_device_name" {
  description = "Root device name of the AMI (/dev/xvda for Amazon Linux 2023, /dev/sda1 for Ubuntu)."
  type        = string
  default     = "/dev/xvda"
}

variable "root_volume_size" {
  description = "Size of the encrypted gp3 root volume in GiB."
  type        = number
  default     = 30

  validation {
    condition     = var.root_volume_size >= 8 && var.root_volume_size <= 16384
    error_message = "root_volume_size must be between 8 and 16384 GiB."
  }
}

variable "ebs_kms_key_arn" {
  description = "KMS key ARN for the root volume; null uses the account's default EBS key (the volume is always encrypted)."
  type        = string
  default     = null
}

variable "detailed_monitoring" {
  description = "Enable 1-minute EC2 detailed monitoring."
  type        = bool
  default     = true
}

variable "enable_ssm" {
  description = "Attach AmazonSSMManagedInstanceCore to the instance role (Session Manager access, no SSH needed)."
  type        = bool
  default     = true
}

variable "role_permissions_boundary_arn" {
  description = "Permissions boundary to attach to the instance role, if your account requires one."
  type        = string
  default     = null
}

################################################################################
# Network
################################################################################

variable "vpc_id" {
  description = "VPC of the subnets; the module's security group is created there."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the Auto Scaling group (private subnets with a NAT gateway or VPC endpoints for SQS, Step Functions and the package index)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must contain at least one subnet."
  }
}

variable "associate_public_ip_address" {
  description = "Give the workers a public IP address. Off by default: run them in private subnets."
  type        = bool
  default     = false
}

variable "create_security_group" {
  description = "Create a security group with no inbound rules and HTTPS (443) outbound to egress_cidr_blocks."
  type        = bool
  default     = true
}

variable "egress_cidr_blocks" {
  description = "IPv4 CIDR blocks the workers may reach on 443 (AWS APIs and the package index)."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for c in var.egress_cidr_blocks : can(cidrhost(c, 0))])
    error_message = "egress_cidr_blocks must be IPv4 CIDR blocks."
  }
}

variable "additional_security_group_ids" {
  description = "Extra security groups attached to the workers."
  type        = list(string)
  default     = []
}

################################################################################
# Auto Scaling
################################################################################

variable "min_size" {
  description = "Minimum number of workers. At least 1: the scaling metric divides the backlog by the InService count, which has no value with zero instances."
  type        = number
  default     = 1

  validation {
    condition     = var.min_size >= 1
    error_message = "min_size must be at least 1: backlog per slot divides by the InService workers, which has no value with zero instances."
  }
}

variable "max_size" {
  description = "Maximum number of workers."
  type        = number
  default     = 4

  validation {
    condition     = var.max_size >= 1
    error_message = "max_size must be at least 1."
  }
}

variable "desired_capacity" {
  description = "Initial number of workers; afterwards the scaling policy owns it (ignored on later applies)."
  type        = number
  default     = 1
}

variable "target_backlog_per_slot" {
  description = "Target of the scaling policy: jobs (waiting + running) per worker slot, slots = InService workers x worker_concurrency. 1 means every slot busy and nothing waiting; set 1 + acceptable wait / average job duration, e.g. 10-minute jobs and 30 minutes acceptable wait -> 4. Running jobs count, so busy workers are not scaled in once the queue is empty."
  type        = number
  default     = 2

  validation {
    condition     = var.target_backlog_per_slot >= 1
    error_message = "target_backlog_per_slot must be at least 1: below 1 the group scales out while slots are idle. Use 1 + acceptable wait / average job duration."
  }
}

variable "disable_scale_in" {
  description = "Stop the scaling policy from removing workers (scale in manually or on a schedule)."
  type        = bool
  default     = false
}

variable "instance_warmup_seconds" {
  description = "Seconds a new instance needs to install the package and start polling; used as health-check grace period, default instance warmup and the policy's estimated warmup."
  type        = number
  default     = 300

  validation {
    condition     = var.instance_warmup_seconds >= 0 && var.instance_warmup_seconds <= 3600
    error_message = "instance_warmup_seconds must be between 0 and 3600."
  }
}

variable "termination_heartbeat_timeout_seconds" {
  description = "Heartbeat timeout of the termination lifecycle hook (30 to 7200 s; BRIDGE_LIFECYCLE_HOOK_TIMEOUT). A draining worker records a lifecycle heartbeat every third of it and completes the action when done; a worker that died leaves the instance waiting this long. The lifecycle action lasts at most min(48 h, 100 x this value), and the worker's stop timeout (drain_timeout_seconds + cancel_grace_seconds + 60) must fit in it (checked at plan time)."
  type        = number
  default     = 600

  validation {
    condition     = var.termination_heartbeat_timeout_seconds >= 30 && var.termination_heartbeat_timeout_seconds <= 7200
    error_message = "termination_heartbeat_timeout_seconds must be between 30 and 7200."
  }
}

variable "use_mixed_instances_policy" {
  description = "Launch the workers through a mixed instances policy (several instance types, spot capacity). false: every worker is an on-demand instance_type."
  type        = bool
  default     = false
}

variable "mixed_instance_types" {
  description = "Instance types of the mixed instances policy, in order of preference (the launch template's instance_type is used when empty). Pick types with the same vCPU/memory shape so worker_concurrency fits each."
  type        = list(string)
  default     = []
}

variable "on_demand_base_capacity" {
  description = "Mixed instances policy: workers that are always on-demand before any spot capacity is used."
  type        = number
  default     = 1

  validation {
    condition     = var.on_demand_base_capacity >= 0 && floor(var.on_demand_base_capacity) == var.on_demand_base_capacity
    error_message = "on_demand_base_capacity must be an integer of 0 or more."
  }
}

variable "on_demand_percentage_above_base_capacity" {
  description = "Mixed instances policy: percentage of on-demand workers above on_demand_base_capacity; the rest are spot (0 = all spot above the base, 100 = no spot). A spot worker drains on the 2-minute interruption notice and hands its unfinished jobs back to the queue."
  type        = number
  default     = 0

  validation {
    condition     = var.on_demand_percentage_above_base_capacity >= 0 && var.on_demand_percentage_above_base_capacity <= 100
    error_message = "on_demand_percentage_above_base_capacity must be between 0 and 100."
  }
}

variable "spot_allocation_strategy" {
  description = "Mixed instances policy: how spot capacity is chosen. price-capacity-optimized (default) lowers interruptions, which cost long jobs a rerun."
  type        = string
  default     = "price-capacity-optimized"

  validation {
    condition     = contains(["price-capacity-optimized", "capacity-optimized", "capacity-optimized-prioritized", "lowest-price"], var.spot_allocation_strategy)
    error_message = "spot_allocation_strategy must be price-capacity-optimized, capacity-optimized, capacity-optimized-prioritized or lowest-price."
  }
}

variable "instance_refresh_min_healthy_percentage" {
  description = "Instance refresh (started on every launch template change, e.g. new user data or worker version): percentage of the group that must stay InService while instances are replaced."
  type        = number
  default     = 90

  validation {
    condition     = var.instance_refresh_min_healthy_percentage >= 0 && var.instance_refresh_min_healthy_percentage <= 100
    error_message = "instance_refresh_min_healthy_percentage must be between 0 and 100."
  }
}

variable "instance_refresh_scale_in_protected_instances" {
  description = "Instance refresh and busy workers (which protect themselves from scale-in while they run jobs): Wait (AWS default: wait up to an hour for the protection to go, then fail the refresh), Refresh (replace them anyway: the termination lifecycle hook lets each drain for drain_timeout_seconds, unfinished jobs go back to the queue and run again), or Ignore (leave them on the old launch template until they go idle and are scaled in)."
  type        = string
  default     = "Ignore"

  validation {
    condition     = contains(["Refresh", "Ignore", "Wait"], var.instance_refresh_scale_in_protected_instances)
    error_message = "instance_refresh_scale_in_protected_instances must be Refresh, Ignore or Wait."
  }
}

variable "enabled_metrics" {
  description = "Auto Scaling group metrics to publish; must include GroupInServiceInstances, the denominator of the scaling metric."
  type        = list(string)
  default = [
    "GroupMinSize",
    "GroupMaxSize",
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupPendingInstances",
    "GroupTerminatingInstances",
    "GroupTotalInstances",
  ]

  validation {
    condition     = contains(var.enabled_metrics, "GroupInServiceInstances")
    error_message = "enabled_metrics must include GroupInServiceInstances (the denominator of the backlog-per-slot scaling policy)."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module (propagated to the instances)."
  type        = map(string)
  default     = {}
}

variable "use_name_prefix" {
  description = "Give the IAM role and instance profile a unique name from a prefix (<name>-worker-<suffix>, at most 38 characters before the suffix) instead of the fixed name, so two deployments in one account (IAM names are global, across regions) do not collide."
  type        = bool
  default     = true
}
