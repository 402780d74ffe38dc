"""Configuration precedence and the errors that name what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.config import ConfigError, load_config


def write_state(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "endpoint_url": "http://127.0.0.1:9999",
                "region": "us-east-1",
                "jobs_queue_url": "local-jobs",
                "results_queue_url": "local-results",
                "access_key_id": "testing",
                "secret_access_key": "testing",
            }
        )
    )
    return path


def test_state_file_is_used_when_the_environment_names_no_queue(tmp_path: Path) -> None:
    config = load_config({}, write_state(tmp_path / "local.json"))
    assert config.jobs_queue_url == "local-jobs"
    assert config.endpoint_url == "http://127.0.0.1:9999"


def test_environment_wins_over_state_file_and_never_mixes(tmp_path: Path) -> None:
    env = {"BRIDGE_JOBS_QUEUE_URL": "aws-jobs", "AWS_REGION": "eu-west-1"}
    config = load_config(env, write_state(tmp_path / "local.json"))
    assert config.jobs_queue_url == "aws-jobs"
    assert config.results_queue_url is None  # not borrowed from the local stack
    assert config.endpoint_url is None
    assert config.region == "eu-west-1"


def test_flags_override(tmp_path: Path) -> None:
    config = load_config({}, write_state(tmp_path / "local.json"))
    assert config.with_overrides(jobs_queue_url="flag", region=None).jobs_queue_url == "flag"


def test_missing_settings_are_named_with_their_variables() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({}, Path("/nonexistent/state.json")).require(
            "jobs_queue_url", "results_queue_url"
        )
    message = str(info.value)
    assert "BRIDGE_JOBS_QUEUE_URL" in message and "BRIDGE_RESULTS_QUEUE_URL" in message


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "local.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config({}, path)
