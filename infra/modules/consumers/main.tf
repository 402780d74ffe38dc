# EC2 consumers: an Auto Scaling group of workers running
# `callback-bridge worker` (systemd unit from consumers/systemd/), scaled on
# jobs-queue backlog per instance, with a termination lifecycle hook that gives
# a draining worker time to finish its jobs.
#
# The worker handles the instance's lifecycle itself (consumers/instance.py,
# BRIDGE_INSTANCE_HANDLING=on): it protects the instance from scale-in while it
# runs jobs, sees the group terminating it (instance metadata
# autoscaling/target-lifecycle-state) or a spot interruption notice, drains,
# heartbeats the lifecycle hook every third of its heartbeat timeout meanwhile,
# and completes the lifecycle action when it is done.

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

locals {
  create = var.create

  # The jobs queue's region (the workers' AWS_REGION): read from its ARN rather than from
  # data.aws_region, whose region attribute is `name` in hashicorp/aws 5.x and deprecated
  # (with `id`) in 6.x for `region`, which 5.100 lacks; this works on both.
  region = split(":", var.jobs_queue_arn)[3]

  # Names derived from var.name, not read from the resources: the user data (launch
  # template) must carry them, and the group depends on the launch template.
  autoscaling_group_name = "${var.name}-worker"
  lifecycle_hook_name    = "${var.name}-drain"
  # The group's ARN with its UUID wildcarded, so the instance role's policy exists
  # before the group launches its first instance.
  autoscaling_group_arn = "arn:${data.aws_partition.current.partition}:autoscaling:${local.region}:${data.aws_caller_identity.current.account_id}:autoScalingGroup:*:autoScalingGroupName/${local.autoscaling_group_name}"

  # The worker wheels (worker_wheels_s3_uri = s3://bucket/prefix/): the instance role reads
  # exactly that prefix. An empty prefix means the whole bucket.
  wheels_bucket      = try(regex("^s3://([^/]+)", var.worker_wheels_s3_uri)[0], "")
  wheels_prefix      = trim(try(regex("^s3://[^/]+/(.*)$", var.worker_wheels_s3_uri)[0], ""), "/")
  wheels_bucket_arn  = "arn:${data.aws_partition.current.partition}:s3:::${local.wheels_bucket}"
  wheels_objects_arn = local.wheels_prefix == "" ? "${local.wheels_bucket_arn}/*" : "${local.wheels_bucket_arn}/${local.wheels_prefix}/*"

  # QueueName dimension of the jobs queue, from its ARN.
  jobs_queue_name = element(split(":", var.jobs_queue_arn), 5)

  systemd_dir = "${path.module}/../../../consumers/systemd"

  # The workers' role: created here, or brought (create_iam_role = false, iam_role_arn); the
  # module's policy goes on it either way. A role ARN's name is its last path segment.
  iam_role_name = var.create_iam_role ? one(aws_iam_role.this[*].name) : (
    # "" (never applied): the role policy's precondition refuses a missing iam_role_arn first.
    var.iam_role_arn == null ? "" : element(split("/", var.iam_role_arn), length(split("/", var.iam_role_arn)) - 1)
  )
  iam_role_arn = var.create_iam_role ? one(aws_iam_role.this[*].arn) : var.iam_role_arn

  worker_env = merge(
    {
      AWS_REGION                = local.region
      AWS_DEFAULT_REGION        = local.region
      BRIDGE_JOBS_QUEUE_URL     = var.jobs_queue_url
      BRIDGE_RESULTS_QUEUE_URL  = var.results_queue_url
      BRIDGE_JOBS_DLQ_URL       = var.jobs_dlq_url
      BRIDGE_WORKER_CONCURRENCY = tostring(var.worker_concurrency)
      # The worker's clocks (bridge/timing.py; the worker validates them at start).
      BRIDGE_MAX_QUEUE_WAIT     = tostring(var.max_queue_wait_seconds)
      BRIDGE_JOB_TIMEOUT        = tostring(var.job_timeout_seconds)
      BRIDGE_DRAIN_TIMEOUT      = tostring(var.drain_timeout_seconds)
      BRIDGE_CANCEL_GRACE       = tostring(var.cancel_grace_seconds)
      BRIDGE_HEARTBEAT_INTERVAL = tostring(var.heartbeat_interval_seconds)
      BRIDGE_STALE_CHECK_AGE    = tostring(var.stale_check_age_seconds)
      # Instance lifecycle (consumers/instance.py): scale-in protection while busy,
      # termination and spot notices, the termination lifecycle action.
      BRIDGE_SCALE_IN_PROTECTION    = "true"
      BRIDGE_INSTANCE_HANDLING      = "on"
      BRIDGE_ASG_NAME               = local.autoscaling_group_name
      BRIDGE_LIFECYCLE_HOOK_NAME    = local.lifecycle_hook_name
      BRIDGE_LIFECYCLE_HOOK_TIMEOUT = tostring(var.termination_heartbeat_timeout_seconds)
    },
    {
      for k, v in {
        BRIDGE_WORKER_HANDLER = var.worker_handler
        BRIDGE_WORKER_COMMAND = var.worker_command
        # Job processes run as this user (created, and refused the metadata endpoint, by
        # the user data: templates/user_data.sh.tftpl, step 3b).
        BRIDGE_RUN_AS = var.job_user
      } : k => v if v != null
    },
    # Claim checks (bridge/claim_check.py): outputs too large for a result message go to S3.
    {
      for k, v in {
        BRIDGE_CLAIM_CHECK_BUCKET    = var.claim_check_bucket
        BRIDGE_CLAIM_CHECK_THRESHOLD = var.claim_check_threshold_bytes == null ? null : tostring(var.claim_check_threshold_bytes)
        BRIDGE_CLAIM_CHECK_KMS_KEY   = var.claim_check_bucket == null ? null : var.claim_check_kms_key_arn
      } : k => v if v != null
    },
  )

  # systemd EnvironmentFile syntax: double-quoted values, backslash and quote escaped.
  worker_env_file = join("", [
    for k in sort(keys(local.worker_env)) :
    format("%s=\"%s\"\n", k, replace(replace(local.worker_env[k], "\\", "\\\\"), "\"", "\\\""))
  ])

  # systemd's TimeoutStopSec for the worker: drain, then kill with grace, then hand the
  # messages back (bridge.timing.TimingModel.stop_timeout_s; 60 = RESULT_SLACK_S).
  stop_timeout_seconds = floor(var.drain_timeout_seconds + var.cancel_grace_seconds + 60)
  # The termination lifecycle action's global timeout (TimingModel.lifecycle_global_timeout_s).
  lifecycle_global_timeout_seconds = min(172800, 100 * var.termination_heartbeat_timeout_seconds)

  user_data = templatefile("${path.module}/templates/user_data.sh.tftpl", {
    stop_timeout_seconds = local.stop_timeout_seconds
    os_packages          = join(" ", var.os_packages)
    python_executable    = var.python_executable
    wheels_s3_uri        = var.worker_wheels_s3_uri
    handler_packages     = join(" ", var.handler_packages)
    import_check         = var.worker_handler == null ? "" : var.worker_handler
    install_script_b64   = base64encode(file("${path.module}/templates/install_worker.sh"))
    worker_env_b64       = base64encode(local.worker_env_file)
    worker_unit_b64      = base64encode(file("${local.systemd_dir}/callback-bridge-worker.service"))
    job_user             = var.job_user == null ? "" : var.job_user
    asg_name             = local.autoscaling_group_name
    lifecycle_hook_name  = local.lifecycle_hook_name
  })

  security_group_ids = concat(aws_security_group.this[*].id, var.additional_security_group_ids)

  tags = merge(var.tags, { "callback-bridge:component" = "worker" })

  # CloudWatch metric math of the scaling policy (ids of its metrics blocks). Slots are
  # InService workers x BRIDGE_WORKER_CONCURRENCY. tests/infra/test_scaling.py evaluates it.
  backlog_per_slot_expression = "(visible + in_flight) / (in_service * ${var.worker_concurrency})"
}

################################################################################
# IAM: instance role and profile
################################################################################

data "aws_iam_policy_document" "assume" {
  count = local.create && var.create_iam_role ? 1 : 0

  statement {
    sid     = "EC2Assume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  count = local.create && var.create_iam_role ? 1 : 0

  name                 = var.use_name_prefix ? null : "${var.name}-worker"
  name_prefix          = var.use_name_prefix ? "${substr("${var.name}-worker", 0, 37)}-" : null
  description          = "callback-bridge workers (${var.name})"
  assume_role_policy   = data.aws_iam_policy_document.assume[0].json
  permissions_boundary = var.role_permissions_boundary_arn

  tags = local.tags
}

data "aws_iam_policy_document" "this" {
  count = local.create ? 1 : 0

  statement {
    sid = "ConsumeJobs"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [var.jobs_queue_arn]
  }

  # The results queue's MaximumMessageSize: the largest result sent without a claim check
  # (bridge.claim_check.queue_limit).
  statement {
    sid       = "ReadResultsQueueLimit"
    actions   = ["sqs:GetQueueAttributes"]
    resources = [var.results_queue_arn]
  }

  # Start probe (consumers/compose.py check_jobs_dlq): the jobs DLQ the worker moves malformed
  # jobs to must answer before the worker takes a job, so a wrong URL stops it at start.
  statement {
    sid       = "ProbeJobsDlq"
    actions   = ["sqs:GetQueueAttributes"]
    resources = [var.jobs_dlq_arn]
  }

  statement {
    sid       = "PublishResultsAndDeadLetterJobs"
    actions   = ["sqs:SendMessage"]
    resources = [var.results_queue_arn, var.jobs_dlq_arn]
  }

  # SendTaskHeartbeat and SendTaskFailure have no resource types in the IAM
  # service authorization reference (the task token is not an ARN): "*" is the
  # only valid resource. SendTaskFailure: a job message that breaks the contract
  # but carries a readable token fails its task at once with Bridge.InvalidJob.
  statement {
    sid       = "HeartbeatAndFailInvalidJobs"
    actions   = ["states:SendTaskHeartbeat", "states:SendTaskFailure"]
    resources = ["*"]
  }

  # Scale-in protection while busy, and the termination lifecycle action
  # (heartbeat while draining, complete when done): on this module's group only.
  statement {
    sid = "OwnGroupLifecycle"
    actions = [
      "autoscaling:SetInstanceProtection",
      "autoscaling:RecordLifecycleActionHeartbeat",
      "autoscaling:CompleteLifecycleAction",
    ]
    resources = [local.autoscaling_group_arn]
  }

  # Bootstrap (user data, templates/install_worker.sh): an instance that cannot install or
  # import the worker marks itself Unhealthy so its own group replaces it.
  statement {
    sid       = "ReplaceOwnBrokenInstance"
    actions   = ["autoscaling:SetInstanceHealth"]
    resources = [local.autoscaling_group_arn]
  }

  # Bootstrap: `aws s3 sync` of the worker wheels, on exactly worker_wheels_s3_uri.
  statement {
    sid       = "ReadWorkerWheels"
    actions   = ["s3:GetObject"]
    resources = [local.wheels_objects_arn]
  }

  statement {
    sid       = "ListWorkerWheels"
    actions   = ["s3:ListBucket"]
    resources = [local.wheels_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [local.wheels_prefix == "" ? "*" : "${local.wheels_prefix}/*"]
    }
  }

  # The bootstrap counts the instances it asks the group to replace (CallbackBridge
  # WorkersReplaced): PutMetricData has no resource type, so the namespace is the condition.
  statement {
    sid       = "CountReplacedWorkers"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["CallbackBridge"]
    }
  }

  # SSE-KMS with a customer managed key on the wheels bucket: GetObject needs kms:Decrypt.
  dynamic "statement" {
    for_each = var.worker_wheels_kms_key_arn == null ? [] : [var.worker_wheels_kms_key_arn]

    content {
      sid       = "DecryptWorkerWheels"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }

  # DescribeAutoScalingInstances has no resource types in the IAM service
  # authorization reference: "*" is the only valid resource. The worker uses it
  # to find its group when BRIDGE_ASG_NAME is not set (consumers.instance.discover_group).
  statement {
    sid       = "FindOwnGroup"
    actions   = ["autoscaling:DescribeAutoScalingInstances"]
    resources = ["*"]
  }

  # Claim checks (bridge/claim_check.py store): one PutObject per output too large for a result
  # message, under the claim-checks/ prefix only. Readers need s3:GetObject; the workers do not.
  dynamic "statement" {
    for_each = var.claim_check_bucket == null ? [] : ["arn:${data.aws_partition.current.partition}:s3:::${var.claim_check_bucket}/claim-checks/*"]

    content {
      sid       = "WriteClaimChecks"
      actions   = ["s3:PutObject"]
      resources = [statement.value]
    }
  }

  # Start probe (consumers/compose.py check_bucket): HeadBucket, which IAM authorizes as
  # s3:ListBucket, on the claim-check bucket only and with no s3:prefix condition (HeadBucket
  # sends none, so a condition would deny it). It also lets the workers list the bucket's keys,
  # names of claim-checked outputs they could write anyway; never their contents (no GetObject).
  dynamic "statement" {
    for_each = var.claim_check_bucket == null ? [] : ["arn:${data.aws_partition.current.partition}:s3:::${var.claim_check_bucket}"]

    content {
      sid       = "ProbeClaimCheckBucket"
      actions   = ["s3:ListBucket"]
      resources = [statement.value]
    }
  }

  # SSE-KMS on the claim-check bucket: S3 asks KMS for a data key with the caller's rights.
  dynamic "statement" {
    for_each = var.claim_check_bucket == null || var.claim_check_kms_key_arn == null ? [] : [var.claim_check_kms_key_arn]

    content {
      sid       = "ClaimCheckEncryption"
      actions   = ["kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "QueueEncryption"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
  # The caller's own statements (iam_role_policy_statements), e.g. what a handler calls.
  dynamic "statement" {
    for_each = var.iam_role_policy_statements

    content {
      sid       = statement.key
      effect    = statement.value.effect
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions

        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  count = local.create ? 1 : 0

  name   = "callback-bridge-worker"
  role   = local.iam_role_name
  policy = data.aws_iam_policy_document.this[0].json

  lifecycle {
    precondition {
      condition     = var.create_iam_role == (var.iam_role_arn == null)
      error_message = "Set iam_role_arn (the workers' role) exactly when create_iam_role is false."
    }
  }
}

resource "aws_iam_role_policy_attachment" "ssm" {
  count = local.create && var.enable_ssm ? 1 : 0

  role       = local.iam_role_name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "this" {
  count = local.create ? 1 : 0

  name        = var.use_name_prefix ? null : "${var.name}-worker"
  name_prefix = var.use_name_prefix ? "${substr("${var.name}-worker", 0, 37)}-" : null
  role        = local.iam_role_name

  tags = local.tags
}

################################################################################
# Network: no inbound, HTTPS outbound (SQS, Step Functions, package index)
################################################################################

resource "aws_security_group" "this" {
  #checkov:skip=CKV2_AWS_5:Attached to every worker by the launch template (network_interfaces.security_groups = local.security_group_ids). checkov loses that link once the complete example passes the workers' role to the queues module (sender_arns) while the workers take the queues' ARNs: a module-level cycle its graph does not follow, although Terraform's per-value graph has none.
  count = local.create && var.create_security_group ? 1 : 0

  name_prefix = "${var.name}-worker-"
  description = "callback-bridge workers: no inbound traffic, HTTPS outbound"
  vpc_id      = var.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-worker" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "https" {
  for_each = local.create && var.create_security_group ? toset(var.egress_cidr_blocks) : toset([])

  security_group_id = aws_security_group.this[0].id
  description       = "HTTPS to AWS APIs and the package index"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value

  tags = local.tags
}

################################################################################
# Launch template
################################################################################

resource "aws_launch_template" "this" {
  count = local.create ? 1 : 0

  name_prefix            = "${var.name}-worker-"
  description            = "callback-bridge worker"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  key_name               = var.key_name
  ebs_optimized          = true
  update_default_version = true
  user_data              = base64encode(local.user_data)

  iam_instance_profile {
    arn = aws_iam_instance_profile.this[0].arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  monitoring {
    enabled = var.detailed_monitoring
  }

  network_interfaces {
    device_index                = 0
    associate_public_ip_address = var.associate_public_ip_address
    delete_on_termination       = true
    security_groups             = local.security_group_ids
  }

  block_device_mappings {
    device_name = var.root_device_name

    ebs {
      volume_size           = var.root_volume_size
      volume_type           = "gp3"
      encrypted             = true
      kms_key_id            = var.ebs_kms_key_arn
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-worker" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { Name = "${var.name}-worker" })
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = (var.worker_handler == null) != (var.worker_command == null)
      error_message = "Set exactly one of worker_handler (BRIDGE_WORKER_HANDLER, module:function) or worker_command (BRIDGE_WORKER_COMMAND, a shell command)."
    }

    precondition {
      condition     = length(local.security_group_ids) > 0
      error_message = "The workers need a security group: keep create_security_group = true or pass additional_security_group_ids."
    }
  }
}

################################################################################
# Auto Scaling group
################################################################################

resource "aws_autoscaling_group" "this" {
  count = local.create ? 1 : 0

  # No load balancer: the workers serve no traffic, EC2 status checks are the health check.

  name                      = local.autoscaling_group_name
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  vpc_zone_identifier       = var.subnet_ids
  health_check_type         = "EC2"
  health_check_grace_period = var.instance_warmup_seconds
  default_instance_warmup   = var.instance_warmup_seconds
  enabled_metrics           = var.enabled_metrics
  metrics_granularity       = "1Minute"

  # One launch template for every worker, or a mixed instances policy (several types,
  # on-demand base plus spot) around the same template.
  dynamic "launch_template" {
    for_each = var.use_mixed_instances_policy ? [] : [aws_launch_template.this[0].id]

    content {
      id      = launch_template.value
      version = aws_launch_template.this[0].latest_version
    }
  }

  dynamic "mixed_instances_policy" {
    for_each = var.use_mixed_instances_policy ? [aws_launch_template.this[0].id] : []

    content {
      instances_distribution {
        on_demand_base_capacity                  = var.on_demand_base_capacity
        on_demand_percentage_above_base_capacity = var.on_demand_percentage_above_base_capacity
        spot_allocation_strategy                 = var.spot_allocation_strategy
      }

      launch_template {
        launch_template_specification {
          launch_template_id = mixed_instances_policy.value
          version            = aws_launch_template.this[0].latest_version
        }

        dynamic "override" {
          for_each = var.mixed_instance_types

          content {
            instance_type = override.value
          }
        }
      }
    }
  }

  # A new launch template version (user data, worker version, AMI) reaches running workers:
  # Terraform starts a rolling refresh whenever the template changes. Busy workers protect
  # themselves from scale-in; instance_refresh_scale_in_protected_instances says what the
  # refresh does with them (infra/README.md, "Instance refresh and busy workers").
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage       = var.instance_refresh_min_healthy_percentage
      instance_warmup              = var.instance_warmup_seconds
      scale_in_protected_instances = var.instance_refresh_scale_in_protected_instances
      skip_matching                = true
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-worker" })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  # Instances call SetInstanceProtection as soon as they run jobs: grant it first.
  depends_on = [aws_iam_role_policy.this]

  lifecycle {
    # The scaling policy owns the desired capacity after creation.
    ignore_changes = [desired_capacity]

    precondition {
      condition     = var.min_size <= var.max_size
      error_message = "min_size (${var.min_size}) is larger than max_size (${var.max_size}): lower min_size or raise max_size."
    }

    precondition {
      condition     = var.min_size <= var.desired_capacity && var.desired_capacity <= var.max_size
      error_message = "desired_capacity (${var.desired_capacity}) must lie between min_size (${var.min_size}) and max_size (${var.max_size}): change desired_capacity."
    }

    precondition {
      condition     = !var.use_mixed_instances_policy || var.on_demand_base_capacity <= var.max_size
      error_message = "on_demand_base_capacity (${var.on_demand_base_capacity}) is above max_size (${var.max_size}): lower on_demand_base_capacity."
    }
  }
}

# A terminating instance waits in Terminating:Wait. The worker sees the target
# lifecycle state in instance metadata, stops receiving, lets its jobs finish for
# up to drain_timeout_seconds, cancels the rest and hands their messages back,
# recording a lifecycle heartbeat every heartbeat_timeout / 3 meanwhile, then
# calls CompleteLifecycleAction (CONTINUE). A worker that died leaves the action
# to end by its heartbeat timeout with default_result CONTINUE.
resource "aws_autoscaling_lifecycle_hook" "drain" {
  count = local.create ? 1 : 0

  name                   = local.lifecycle_hook_name
  autoscaling_group_name = aws_autoscaling_group.this[0].name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  heartbeat_timeout      = var.termination_heartbeat_timeout_seconds
  default_result         = "CONTINUE"

  lifecycle {
    # bridge.timing.TimingModel._shutdown_rules: a stopping worker must be done (drained,
    # jobs killed, messages handed back) before the lifecycle action can last no longer.
    # A precondition because it relates three variables: required_version is ">= 1.5", and
    # only Terraform >= 1.9 lets a variable's validation refer to other variables.
    precondition {
      condition     = local.stop_timeout_seconds <= local.lifecycle_global_timeout_seconds
      error_message = "drain_timeout_seconds: drain + kill + hand-back (${local.stop_timeout_seconds} s = drain_timeout_seconds + cancel_grace_seconds + 60) outlasts the lifecycle action's global timeout (${local.lifecycle_global_timeout_seconds} s = min(48 h, 100 x termination_heartbeat_timeout_seconds)). Lower drain_timeout_seconds or raise termination_heartbeat_timeout_seconds."
    }
  }
}

################################################################################
# Scaling on backlog per instance
################################################################################

resource "aws_autoscaling_policy" "backlog_per_instance" {
  count = local.create ? 1 : 0

  name                      = "${var.name}-backlog-per-slot"
  autoscaling_group_name    = aws_autoscaling_group.this[0].name
  policy_type               = "TargetTrackingScaling"
  estimated_instance_warmup = var.instance_warmup_seconds

  # Backlog per slot = (jobs waiting + jobs running) / (InService workers x concurrency).
  # Counting the in-flight (running) jobs keeps busy instances in the numerator: once every
  # job is picked up the metric stays at about 1 per busy slot instead of falling to 0, so
  # the policy does not scale in hosts that are still working (scale-in protection, set by
  # the worker while it runs jobs, is the second guard).
  target_tracking_configuration {
    target_value     = var.target_backlog_per_slot
    disable_scale_in = var.disable_scale_in

    customized_metric_specification {
      metrics {
        id          = "visible"
        label       = "Jobs waiting in the queue"
        return_data = false

        metric_stat {
          stat = "Sum"

          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"

            dimensions {
              name  = "QueueName"
              value = local.jobs_queue_name
            }
          }
        }
      }

      metrics {
        id          = "in_flight"
        label       = "Jobs running on workers"
        return_data = false

        metric_stat {
          stat = "Sum"

          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesNotVisible"

            dimensions {
              name  = "QueueName"
              value = local.jobs_queue_name
            }
          }
        }
      }

      metrics {
        id          = "in_service"
        label       = "InService workers"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "AWS/AutoScaling"
            metric_name = "GroupInServiceInstances"

            dimensions {
              name  = "AutoScalingGroupName"
              value = aws_autoscaling_group.this[0].name
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_slot"
        label       = "Jobs (waiting + running) per worker slot"
        expression  = local.backlog_per_slot_expression
        return_data = true
      }
    }
  }
}
