"""The whole embedded stack, started once for the pipeline tests and stopped at the end."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import clickhouse_connect
import pytest
import yaml

from gantry import stack
from gantry.broker import free_port
from gantry.config import load_config
from gantry.runtime import endpoints
from gantry.synthetic import build_city


@pytest.fixture(scope="session")
def city():
    return build_city(cameras=2, vehicles=5, seed=11, start=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2))


API_OPERATOR_TOKEN = "stack-operator-" + uuid.uuid4().hex


def api_tokens(root: Path) -> Path:
    """The stack API's tokens, in a file as a deployment mounts them."""
    path = root / "api-tokens.yaml"
    path.write_text(yaml.safe_dump({"control-room": {"role": "operator", "token": API_OPERATOR_TOKEN}}))
    return path


@pytest.fixture(scope="session")
def stack_config_file(tmp_path_factory, city):
    root = tmp_path_factory.mktemp("stack")
    config_file = root / "gantry.yaml"
    config_file.write_text(yaml.safe_dump({
        "data_dir": str(root / "data"),
        "cameras": [c.__dict__ for c in city.cameras],
        "segments": [{"id": "s12", "from_camera": "cam1", "to_camera": "cam2", "distance_m": 1000, "max_travel_s": 900}],
        "zones": [{"id": "centre", "cameras": ["cam1"]}],
        "stream_jobs": {"allowed_lateness_s": 86400},
        "warehouse": {"batch_seconds": 0.5},
        "ingest": {"http_port": free_port()},
        "api": {"port": free_port(), "tokens_file": str(api_tokens(root))},
    }))
    return config_file


@pytest.fixture(scope="session")
def stack_config(stack_config_file):
    """The running stack; its processes read the same file through $GANTRY_CONFIG."""
    previous = os.environ.get("GANTRY_CONFIG")
    os.environ["GANTRY_CONFIG"] = str(stack_config_file)
    config = load_config(stack_config_file)
    try:
        stack.up(config)
    finally:
        if previous is None:
            os.environ.pop("GANTRY_CONFIG")
        else:
            os.environ["GANTRY_CONFIG"] = previous
    yield config
    stack.down(config)


@pytest.fixture(scope="session")
def warehouse(stack_config):
    client = clickhouse_connect.get_client(dsn=endpoints(stack_config).warehouse_dsn)
    client.database = stack_config.warehouse.database
    return client
