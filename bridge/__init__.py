"""callback-bridge: Step Functions → SQS → EC2 consumers → task token callbacks.

The public API is small: the message contract, the configuration object and the client factory.
Names are imported on first use (PEP 562): a process that needs only the contract, such as an
isolated job's interpreter (``consumers.isolated``), does not pay for importing boto3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.aws import Clients, build_clients
    from bridge.config import BridgeConfig, ConfigError, load_config
    from bridge.contract import ContractError, Job, Result, mask_token, parse_job, parse_result

#: Public name -> the module that defines it.
_HOMES = {
    "Clients": "bridge.aws",
    "build_clients": "bridge.aws",
    "BridgeConfig": "bridge.config",
    "ConfigError": "bridge.config",
    "load_config": "bridge.config",
    "ContractError": "bridge.contract",
    "Job": "bridge.contract",
    "Result": "bridge.contract",
    "mask_token": "bridge.contract",
    "parse_job": "bridge.contract",
    "parse_result": "bridge.contract",
}

__all__ = [
    "BridgeConfig",
    "Clients",
    "ConfigError",
    "ContractError",
    "Job",
    "Result",
    "build_clients",
    "load_config",
    "mask_token",
    "parse_job",
    "parse_result",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bridge' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
