# Complete callback-bridge deployment: queues, state machine, completion
# Lambda, dead-letter Lambda, EC2 consumers and alarms. See README.md for apply
# instructions.

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

data "aws_partition" "current" {}

# Latest Amazon Linux 2023 AMI for the workers, unless ami_id is given.
data "aws_ami" "al2023" {
  count = var.ami_id == null ? 1 : 0

  owners      = ["amazon"]
  most_recent = true

  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-kernel-*-x86_64"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

locals {
  ami_id = coalesce(var.ami_id, one(data.aws_ami.al2023[*].id))

  # Public Powertools for AWS Lambda (Python) v3 layer (commercial partition
  # account 017000801446); override with powertools_layer_arn elsewhere.
  powertools_layer_arn = coalesce(
    var.powertools_layer_arn,
    "arn:${data.aws_partition.current.partition}:lambda:${var.region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-${var.lambda_architecture}:${var.powertools_layer_version}",
  )
}

module "queues" {
  source = "../../modules/queues"

  name              = var.name
  kms_master_key_id = var.kms_key_arn

  jobs_visibility_timeout_seconds = var.jobs_visibility_timeout_seconds

  dead_letter_handling = var.dead_letter_handling

  # Queue policies: TLS only, and each queue accepts messages only from the role that produces
  # them (and the operators who redrive dead letters).
  sender_arns = {
    jobs            = [module.state_machine.role_arn]
    results         = [module.consumers.role_arn]
    jobs_dlq        = [module.consumers.role_arn]
    results_dlq     = [module.completion.role_arn]
    jobs_archive    = compact([module.dead_letter.role_arn])
    results_archive = compact([module.dead_letter.role_arn])
  }
  operator_arns = var.operator_arns

  tags = var.tags
}

module "state_machine" {
  source = "../../modules/state_machine"

  name           = var.name
  jobs_queue_url = module.queues.jobs_queue_url
  jobs_queue_arn = module.queues.jobs_queue_arn
  kms_key_arn    = var.kms_key_arn
  map_mode       = var.map_mode

  execution_data_kms_key_arn = var.execution_data_kms_key_arn
  log_kms_key_arn            = var.log_kms_key_arn

  heartbeat_seconds = var.heartbeat_seconds
  timeout_seconds   = var.timeout_seconds
  max_concurrency   = var.max_concurrency

  # Fail executions whose jobs failed (Bridge.JobsFailed), so the ExecutionsFailed alarm means
  # failed work; "report" keeps failures as data in a succeeded execution's output.
  failure_policy               = var.failure_policy
  tolerated_failure_count      = var.tolerated_failure_count
  tolerated_failure_percentage = var.tolerated_failure_percentage

  # Large fan-outs through S3 ({"items": {...}}: callback-bridge run --jobs-file); null: none.
  fanout_bucket_arn  = module.fanout.bucket_arn
  fanout_kms_key_arn = module.fanout.kms_key_arn

  # What the task timeouts are validated against (the same values the workers get).
  max_queue_wait_seconds            = var.max_queue_wait_seconds
  job_timeout_seconds               = var.job_timeout_seconds
  jobs_visibility_timeout_seconds   = var.jobs_visibility_timeout_seconds
  worker_heartbeat_interval_seconds = var.heartbeat_interval_seconds
  worker_cancel_grace_seconds       = var.cancel_grace_seconds

  tags = var.tags
}

module "completion" {
  source = "../../modules/completion"

  function_name        = "${var.name}-completion"
  package_path         = var.lambda_package_path
  architecture         = var.lambda_architecture
  powertools_layer_arn = local.powertools_layer_arn

  results_queue_arn                        = module.queues.results_queue_arn
  results_queue_visibility_timeout_seconds = module.queues.results_visibility_timeout_seconds
  results_dlq_url                          = module.queues.results_dlq_url
  results_dlq_arn                          = module.queues.results_dlq_arn
  kms_key_arn                              = var.kms_key_arn
  log_kms_key_arn                          = var.log_kms_key_arn
  environment_kms_key_arn                  = var.lambda_environment_kms_key_arn

  tags = var.tags
}

module "dead_letter" {
  source = "../../modules/dead_letter"

  create = var.dead_letter_handling

  function_name = "${var.name}-dead-letter"
  # The same package as the completion Lambda; the layer only keeps both functions alike.
  package_path = var.lambda_package_path
  architecture = var.lambda_architecture
  layers       = [local.powertools_layer_arn]

  jobs_queue_arn                         = module.queues.jobs_queue_arn
  results_queue_arn                      = module.queues.results_queue_arn
  jobs_dlq_url                           = module.queues.jobs_dlq_url
  jobs_dlq_arn                           = module.queues.jobs_dlq_arn
  jobs_dlq_visibility_timeout_seconds    = module.queues.jobs_dlq_visibility_timeout_seconds
  results_dlq_url                        = module.queues.results_dlq_url
  results_dlq_arn                        = module.queues.results_dlq_arn
  results_dlq_visibility_timeout_seconds = module.queues.results_dlq_visibility_timeout_seconds
  jobs_archive_url                       = module.queues.jobs_archive_url
  jobs_archive_arn                       = module.queues.jobs_archive_arn
  results_archive_url                    = module.queues.results_archive_url
  results_archive_arn                    = module.queues.results_archive_arn
  kms_key_arn                            = var.kms_key_arn
  log_kms_key_arn                        = var.log_kms_key_arn
  environment_kms_key_arn                = var.lambda_environment_kms_key_arn

  tags = var.tags
}

module "consumers" {
  source = "../../modules/consumers"

  name       = var.name
  vpc_id     = var.vpc_id
  subnet_ids = var.subnet_ids
  ami_id     = local.ami_id

  instance_type      = var.instance_type
  min_size           = var.min_size
  max_size           = var.max_size
  desired_capacity   = var.min_size
  worker_handler     = var.worker_handler
  worker_command     = var.worker_command
  worker_concurrency = var.worker_concurrency

  # Wheels built by `make wheels` and uploaded with `aws s3 sync dist/wheels <uri>`.
  worker_wheels_s3_uri = var.worker_wheels_s3_uri
  # SSE-KMS on the wheels bucket with a customer managed key: kms:Decrypt for the workers.
  worker_wheels_kms_key_arn = var.worker_wheels_kms_key_arn
  handler_packages     = var.handler_packages

  target_backlog_per_slot = var.target_backlog_per_slot

  use_mixed_instances_policy               = var.use_mixed_instances_policy
  mixed_instance_types                     = var.mixed_instance_types
  on_demand_base_capacity                  = var.on_demand_base_capacity
  on_demand_percentage_above_base_capacity = var.on_demand_percentage_above_base_capacity

  max_queue_wait_seconds     = var.max_queue_wait_seconds
  job_timeout_seconds        = var.job_timeout_seconds
  heartbeat_interval_seconds = var.heartbeat_interval_seconds
  drain_timeout_seconds      = var.drain_timeout_seconds
  cancel_grace_seconds       = var.cancel_grace_seconds

  termination_heartbeat_timeout_seconds = var.termination_heartbeat_timeout_seconds

  jobs_queue_url    = module.queues.jobs_queue_url
  jobs_queue_arn    = module.queues.jobs_queue_arn
  results_queue_url = module.queues.results_queue_url
  results_queue_arn = module.queues.results_queue_arn
  jobs_dlq_url      = module.queues.jobs_dlq_url
  jobs_dlq_arn      = module.queues.jobs_dlq_arn
  kms_key_arn       = var.kms_key_arn

  # Outputs too large for a result message go to the claim-check bucket (null: none).
  claim_check_bucket          = module.claim_check.bucket_id
  claim_check_kms_key_arn     = module.claim_check.kms_key_arn
  claim_check_threshold_bytes = var.claim_check_threshold_bytes

  tags = var.tags
}

module "claim_check" {
  source = "../../modules/claim_check"

  create = var.claim_check
  # S3 bucket names are lowercase, without '_'.
  name            = lower(replace(var.name, "_", "-"))
  expiration_days = var.claim_check_expiration_days
  kms_key_arn     = var.claim_check_kms_key_arn

  tags = var.tags
}

module "fanout" {
  source = "../../modules/fanout"

  create = var.fanout
  # S3 bucket names are lowercase, without '_'.
  name            = lower(replace(var.name, "_", "-"))
  expiration_days = var.fanout_expiration_days
  kms_key_arn     = var.fanout_kms_key_arn

  tags = var.tags
}

module "alarms" {
  source = "../../modules/alarms"

  name          = var.name
  alarm_actions = var.alarm_sns_topic_arns

  jobs_queue_name          = module.queues.jobs_queue_name
  jobs_dlq_name            = module.queues.jobs_dlq_name
  results_dlq_name         = module.queues.results_dlq_name
  results_queue_name       = module.queues.results_queue_name
  completion_function_name = module.completion.function_name
  # Throttles of the dead-letter Lambda and jobs it dead-lettered (DeadLettersFailed).
  dead_letter_function_name = var.dead_letter_handling ? module.dead_letter.function_name : null

  # With dead-letter handling, letters wait in the archives, not in the DLQs.
  archive_names = var.dead_letter_handling ? {
    jobs    = module.queues.jobs_archive_name
    results = module.queues.results_archive_name
  } : {}

  state_machine_arn = module.state_machine.state_machine_arn

  # Workers replaced after a failed bootstrap or a worker systemd gave up on.
  autoscaling_group_name = module.consumers.autoscaling_group_name

  oldest_job_age_threshold_seconds = var.oldest_job_age_threshold_seconds

  tags = var.tags
}
