"""Real services for the warehouse tests: a Tansu broker, chDB, and `gantry warehouse serve`.

``warehouse`` is parametrised over the ways Gantry reaches ClickHouse: the in-process chDB engine
(``chdb``), the embedded HTTP server in front of chDB (``served``), and, when
``GANTRY_TEST_CLICKHOUSE_URL`` is set, a real ClickHouse server (``server``). Each test gets its
own database, so tests do not see each other's rows.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from warehouse_helpers import PYTHON_CLI, cli_env

from gantry.broker import free_port
from gantry.credentials import warehouse_password_file
from gantry.processes import stop, wait_healthy
from warehouse.access import embedded_credential
from warehouse.client import connect


@pytest.fixture(scope="session")
def broker(broker) -> str:
    """The session's broker (tests/conftest.py), by the address these tests pass around."""
    return broker.bootstrap_servers


@pytest.fixture(scope="session")
def served_dsn(tmp_path_factory) -> Iterator[str]:
    """`gantry warehouse serve` on a fresh data dir, as `gantry up` starts it: with its credential,
    which the DSN carries, and an 8 MiB body limit that the security tests can exceed cheaply."""
    data_dir = tmp_path_factory.mktemp("served")
    port, health = free_port(), free_port()
    user, password = embedded_credential(data_dir)
    log = open(data_dir / "serve.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [*PYTHON_CLI, "serve", "--port", str(port), "--health-port", str(health),
         "--password-file", str(warehouse_password_file(data_dir)), "--max-body-bytes", str(8 * 1024 * 1024)],
        env=cli_env(data_dir), cwd=data_dir, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_healthy(process, health, what="warehouse serve")
        yield f"http://{user}:{quote(password, safe='')}@127.0.0.1:{port}"
    finally:
        stop(process)
        log.close()


WAREHOUSES = ["chdb", "served"] + (["server"] if os.environ.get("GANTRY_TEST_CLICKHOUSE_URL") else [])


@pytest.fixture(params=WAREHOUSES)
def warehouse_dsn(request) -> str:
    if request.param == "chdb":
        return request.getfixturevalue("chdb_dsn")
    if request.param == "served":
        return request.getfixturevalue("served_dsn")
    return os.environ["GANTRY_TEST_CLICKHOUSE_URL"]


@pytest.fixture
def database() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def warehouse(warehouse_dsn: str, database: str):
    """A client on a fresh, migrated-later database; dropped afterwards."""
    client = connect(warehouse_dsn, database)
    yield client
    client.command(f"DROP DATABASE IF EXISTS `{database}`", use_database=False)
    client.close()
