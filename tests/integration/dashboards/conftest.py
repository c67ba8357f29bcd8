"""The dashboards tests' warehouses, filled once per session with ``dashboards_data``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from dashboards_data import GANTRY, city_config, fill

from gantry.broker import free_port
from gantry.config import GantryConfig
from gantry.processes import stop, wait_healthy
from warehouse.client import connect


@pytest.fixture(scope="session")
def config() -> GantryConfig:
    return city_config()


@pytest.fixture(scope="session")
def in_process(chdb_dsn, config):
    """(client, expected) on chDB in this process, in a database of the dashboards' own."""
    client = connect(chdb_dsn, "dashboards")
    yield client, fill(client, config)
    client.close()


@pytest.fixture(scope="session")
def served_dsn(tmp_path_factory) -> Iterator[str]:
    """``gantry warehouse serve`` in its own process on a fresh data dir, as ``gantry up`` runs it."""
    data_dir = tmp_path_factory.mktemp("served")
    port, health = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANTRY_")} | {
        "GANTRY_DATA_DIR": str(data_dir)
    }
    with open(data_dir / "serve.log", "wb") as log:
        process = subprocess.Popen(
            [GANTRY, "warehouse", "serve", "--port", str(port), "--health-port", str(health)],
            env=env, cwd=data_dir, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_healthy(process, health, what=f"gantry warehouse serve (see {data_dir / 'serve.log'})")
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)


@pytest.fixture(scope="session")
def served(served_dsn, config):
    """(client, expected) over HTTP on ``gantry warehouse serve``."""
    client = connect(served_dsn)
    yield client, fill(client, config)
    client.close()


@pytest.fixture(scope="session", params=["chdb", "served"])
def filled(request):
    """(client, expected) on each way the panels reach the warehouse."""
    return request.getfixturevalue({"chdb": "in_process", "served": "served"}[request.param])
