"""callback-bridge: Step Functions → SQS → EC2 consumers → task token callbacks.

The public API is small: the message contract, the configuration object and the client factory.
"""

from bridge.aws import Clients, build_clients
from bridge.config import BridgeConfig, ConfigError, load_config
from bridge.contract import ContractError, Job, Result, mask_token, parse_job, parse_result

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
