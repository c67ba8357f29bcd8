"""A real Tansu broker and S3-compatible server (moto) on free ports for the ingest wiring tests, and helpers."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
import yaml
from kafka import KafkaConsumer, TopicPartition
from moto.server import ThreadedMotoServer

from gantry.broker import EmbeddedBroker, free_port
from gantry.config import GantryConfig
from gantry.kafka import ensure_topics
from gantry.processes import stop

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request


class Broker(EmbeddedBroker):
    """A broker that a test can stop and start again on the same port, topics made at each start.

    The broker keeps topics in memory, so every start needs them again (one partition each, so
    ``read_topic`` sees one ordered log).
    """

    def start(self, timeout_s: float = 20.0) -> Broker:
        super().start(timeout_s)
        one_partition = GantryConfig(broker={"bootstrap_servers": self.bootstrap_servers, "partitions": 1})
        ensure_topics(one_partition, self.bootstrap_servers)
        return self


def read_topic(bootstrap: str, topic: str, key: bytes | None, expected: int, timeout_s: float = 20.0) -> list:
    """The records of ``topic`` with ``key`` (None: all of them), once ``expected`` arrived or the
    time is up.

    Tests share the session's topics, so each one uses its own camera id (the key) to find its
    records. Every partition is read: a producer that reaches a restarted broker before the test
    re-creates the topics gets one auto-created with the broker's own partition count.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=500)
    deadline = time.monotonic() + timeout_s
    while not (numbers := consumer.partitions_for_topic(topic)) and time.monotonic() < deadline:
        time.sleep(0.1)
    partitions = [TopicPartition(topic, n) for n in sorted(numbers or {0})]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(records) < expected:
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(r for r in batch if key is None or r.key == key)
        # A moment longer: more than expected means duplicates, and the test should see them.
        for batch in consumer.poll(timeout_ms=300).values():
            records.extend(r for r in batch if key is None or r.key == key)
    finally:
        consumer.close()
    return records


@pytest.fixture(scope="session")
def topic_records():
    """``read_topic`` as a fixture: test modules cannot import from a conftest."""
    return read_topic


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    with Broker() as server:
        yield server


@pytest.fixture
def own_broker() -> Iterator[Broker]:
    """A broker of the test's own, which it may stop and start again."""
    with Broker() as server:
        yield server


TOKENS = "cam-1=token-one,cam-2=token-two,cam-ghost=token-ghost"


class IngestServer:
    """`python -m ingest serve` in a subprocess, on a free port, against a given broker.

    Cameras cam-1 and cam-2 are configured; the tokens are ``TOKENS`` (cam-ghost has a token but
    is not a configured camera).
    """

    def __init__(self, bootstrap: str, tmp: Path, tokens: str = TOKENS, event_time: dict | None = None,
                 **ingest: object) -> None:
        self.port = free_port()
        cert = ingest.get("tls_cert_file")
        self.url = f"{'https' if cert else 'http'}://127.0.0.1:{self.port}"
        self.verify = str(cert) if cert else True  # a test's own certificate authority
        self.tmp = tmp
        config = {
            "data_dir": str(tmp),
            "broker": {"bootstrap_servers": bootstrap},
            "warehouse": {"dsn": f"chdb://{tmp}/unused"},
            "cameras": [{"id": c, "lat": 51.5, "lon": -0.1} for c in ("cam-1", "cam-2")],
            "ingest": {"http_host": "127.0.0.1", "http_port": self.port, **{k: str(v) if isinstance(v, Path) else v
                                                                             for k, v in ingest.items()}},
            **({"event_time": event_time} if event_time else {}),
        }
        (tmp / "gantry.yaml").write_text(yaml.safe_dump(config))
        self.health_url = f"http://127.0.0.1:{free_port()}"
        self._env = os.environ | {
            "GANTRY_CONFIG": str(tmp / "gantry.yaml"),
            "GANTRY_INGEST_TOKENS": tokens,
            "GANTRY_HEALTH_PORT": self.health_url.rsplit(":", 1)[1],
        }
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._log = open(self.tmp / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ingest", "serve"],
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"ingest server exited: {(self.tmp / 'server.log').read_text()}")
            try:
                if httpx.get(f"{self.url}/v1/plate", timeout=1, verify=self.verify).status_code == 401:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("ingest server did not start")

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        if self._process is not None:
            stop(self._process)
            self._process = None
            self._log.close()


@pytest.fixture(scope="session")
def server(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestServer]:
    running = IngestServer(broker.bootstrap_servers, tmp_path_factory.mktemp("ingest"), max_body_bytes=65_536)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def make_server():
    """Build (not start) a server with its own settings, for tests that need their own broker."""
    return IngestServer


@dataclass(frozen=True)
class S3:
    """A bucket on a real S3-compatible server; ``url(prefix)`` is a ``snapshot_url`` inside it."""

    endpoint: str  # host:port
    bucket: str

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}?endpoint_override={self.endpoint}&scheme=http"

    def client(self):
        return boto3.client("s3", endpoint_url=f"http://{self.endpoint}")


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    """moto's S3 server on loopback with one bucket.

    The credentials are in the environment, as in production (servers started afterwards inherit
    them); the region is set and the instance metadata service is off so that nothing leaves loopback.
    """
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "gantry-test",
            "AWS_SECRET_ACCESS_KEY": "gantry-test-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            env.setenv(name, value)
        port = free_port()
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        moto.start()
        try:
            bucket = S3(f"127.0.0.1:{port}", "gantry-snapshots")
            bucket.client().create_bucket(Bucket=bucket.bucket)
            yield bucket
        finally:
            moto.stop()
