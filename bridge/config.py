"""Where the bridge's resources are: one object, filled from flags, the environment or the
embedded stack's state file.

Precedence: explicit values (CLI flags) > ``BRIDGE_*`` environment variables > the state file
written by ``callback-bridge local up``. The state file is read only when the environment names
no queue, so a shell set up for real AWS is never silently pointed at a local stack.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from bridge import strict_json
from bridge.contract import MAX_JSON_DEPTH

DEFAULT_STATE_FILE = Path(".callback-bridge/local.json")

#: Environment variable for each configuration field.
ENVIRONMENT = {
    "jobs_queue_url": "BRIDGE_JOBS_QUEUE_URL",
    "results_queue_url": "BRIDGE_RESULTS_QUEUE_URL",
    "jobs_dlq_url": "BRIDGE_JOBS_DLQ_URL",
    "results_dlq_url": "BRIDGE_RESULTS_DLQ_URL",
    "jobs_archive_url": "BRIDGE_JOBS_ARCHIVE_URL",
    "results_archive_url": "BRIDGE_RESULTS_ARCHIVE_URL",
    "state_machine_arn": "BRIDGE_STATE_MACHINE_ARN",
    "endpoint_url": "AWS_ENDPOINT_URL",
    "asg_name": "BRIDGE_ASG_NAME",
    "lifecycle_hook_name": "BRIDGE_LIFECYCLE_HOOK_NAME",
    "instance_id": "BRIDGE_INSTANCE_ID",
    "metadata_endpoint": "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "claim_check_bucket": "BRIDGE_CLAIM_CHECK_BUCKET",
    "fanout_bucket": "BRIDGE_FANOUT_BUCKET",
}


class ConfigError(ValueError):
    """Configuration that is missing or malformed; the message says which setting and where."""


class BridgeConfig(BaseModel):
    """Endpoints and resource identifiers. ``None`` means "not configured"."""

    model_config = ConfigDict(frozen=True)

    region: str | None = None
    endpoint_url: str | None = None
    jobs_queue_url: str | None = None
    results_queue_url: str | None = None
    jobs_dlq_url: str | None = None
    results_dlq_url: str | None = None
    #: The dead-letter archives (bridge.dead_letter): where handled dead letters are kept.
    jobs_archive_url: str | None = None
    results_archive_url: str | None = None
    state_machine_arn: str | None = None
    #: The consumers' Auto Scaling group and its termination lifecycle hook (consumers.instance);
    #: on EC2 the instance id and the group can also come from instance metadata.
    asg_name: str | None = None
    lifecycle_hook_name: str | None = None
    instance_id: str | None = None
    #: IMDS base URL; the embedded stack serves one on loopback for its one instance.
    metadata_endpoint: str | None = None
    #: S3 bucket for outputs too large for a result message (bridge.claim_check); without
    #: one such outputs fail ``Bridge.OutputTooLarge``.
    claim_check_bucket: str | None = None
    #: S3 bucket of large fan-outs (bridge.ops.fanout): job files under items/, the Distributed
    #: Map's result files under results/.
    fanout_bucket: str | None = None
    #: Only the embedded stack sets these (dummy values); on AWS the default chain is used.
    access_key_id: str | None = None
    secret_access_key: str | None = None
    #: Where the values came from, for error messages.
    source: str = "defaults"

    def require(self, *fields: str) -> BridgeConfig:
        """Fail early, naming every missing setting and how to provide it."""
        missing = [f for f in fields if not getattr(self, f)]
        if missing:
            hints = ", ".join(f"{f} (env {ENVIRONMENT.get(f, f.upper())})" for f in missing)
            raise ConfigError(
                f"missing configuration: {hints}; configuration came from {self.source}. "
                "Start the embedded stack with 'callback-bridge local up' or export the "
                "Terraform outputs (see README, 'Real AWS')."
            )
        return self

    def require_any(self, *fields: str) -> BridgeConfig:
        """Fail unless at least one of ``fields`` is set (a command that inspects whatever is
        configured still needs something to inspect), naming where the configuration came from."""
        if not any(getattr(self, f) for f in fields):
            raise ConfigError(
                f"nothing configured: none of {', '.join(fields)} is set; configuration came "
                f"from {self.source}. Start the embedded stack with 'callback-bridge local up', "
                "pass --state-file or --tf-outputs, or export the BRIDGE_* variables "
                "(see README, 'Real AWS')."
            )
        return self

    def with_overrides(self, **values: str | None) -> BridgeConfig:
        """Apply CLI flags: only values that were actually given replace configured ones."""
        given = {k: v for k, v in values.items() if v is not None}
        if not given:
            return self
        return self.model_copy(update={**given, "source": f"{self.source} + flags"})


def load_state_file(path: Path) -> BridgeConfig:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"state file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"state file {path} must hold a JSON object")
    known = set(BridgeConfig.model_fields) - {"source"}
    return BridgeConfig(**{k: v for k, v in data.items() if k in known}, source=str(path))


#: ``terraform output -json`` names (infra/examples/complete/outputs.tf) that differ from the
#: field they fill; every other output named like a field fills that field.
TF_OUTPUT_ALIASES: dict[str, str] = {}
#: Fields a Terraform output never sets (credentials, the endpoint, bookkeeping).
_NOT_FROM_TF = {"source", "access_key_id", "secret_access_key", "endpoint_url"}


def load_tf_outputs(path: Path) -> BridgeConfig:
    """The deployment's settings from a file holding ``terraform output -json`` of
    ``infra/examples/complete``: ``{"jobs_queue_url": {"value": "...", ...}, ...}``."""
    try:
        data = strict_json.loads(path.read_text(), max_depth=MAX_JSON_DEPTH)
    except OSError as exc:
        raise ConfigError(f"cannot read Terraform outputs {path}: {exc.strerror}") from None
    except (strict_json.JSONError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Terraform outputs {path} are not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Terraform outputs {path} must hold a JSON object")
    known = set(BridgeConfig.model_fields) - _NOT_FROM_TF
    values = {}
    for name, output in data.items():
        field = TF_OUTPUT_ALIASES.get(name, name)
        value = output.get("value") if isinstance(output, dict) else output
        if field in known and isinstance(value, str) and value:
            values[field] = value
    if not values:
        raise ConfigError(
            f"Terraform outputs {path} name no callback-bridge setting (expected jobs_queue_url, "
            "...); write them with 'terraform output -json > FILE' in infra/examples/complete"
        )
    return BridgeConfig(**values, source=f"Terraform outputs {path}")


def load_config(
    environ: Mapping[str, str] | None = None,
    state_file: Path | None = None,
    tf_outputs: Path | None = None,
) -> BridgeConfig:
    """Build the configuration from the environment, falling back to the local state file.
    An explicit Terraform outputs file replaces both (the endpoint still comes from the
    environment, where a test or an emulator sets it)."""
    env = os.environ if environ is None else environ
    if tf_outputs is not None:
        config = load_tf_outputs(tf_outputs)
        region = config.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        endpoint = env.get(ENVIRONMENT["endpoint_url"]) or None
        return config.model_copy(update={"region": region, "endpoint_url": endpoint})
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    from_env = {field: env[name] for field, name in ENVIRONMENT.items() if env.get(name)}
    names_a_queue = any(k.endswith(("_url", "_arn")) and k != "endpoint_url" for k in from_env)
    if names_a_queue:
        return BridgeConfig(region=region, **from_env, source="environment")
    path = state_file or Path(env.get("BRIDGE_STATE_FILE", DEFAULT_STATE_FILE))
    if path.exists():
        config = load_state_file(path)
        return config.model_copy(update={"region": region or config.region}) if region else config
    return BridgeConfig(
        region=region, **from_env, source=f"environment (no state file at {path.resolve()})"
    )
