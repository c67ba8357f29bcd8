"""Helpers of the stream_jobs wiring tests: configs, ``gantry`` subprocesses, workers, topic reads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from kafka import KafkaConsumer, TopicPartition

from gantry.broker import free_port
from gantry.processes import wait_healthy

REPO = Path(__file__).parents[3]
ROOT_COMMAND = [sys.executable, "-m", "gantry"]


def write_config(path: Path, broker: str, extra: dict) -> Path:
    data = {
        "data_dir": str(path.parent / "data"),
        "broker": {"bootstrap_servers": broker, "partitions": 4},
        "warehouse": {"dsn": f"chdb:///{path.parent / 'warehouse'}"},
    } | extra
    path.write_text(yaml.safe_dump(data))
    return path


def gantry_env(config: Path) -> dict[str, str]:
    return os.environ | {"GANTRY_CONFIG": str(config), "GANTRY_PSEUDONYM_KEY": "test-key", "PYTHONPATH": str(REPO),
                         "COLUMNS": "300"}


def run_gantry(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ROOT_COMMAND, *args], env=gantry_env(config), capture_output=True, text=True, timeout=60, cwd=REPO)


class Worker:
    """One ``gantry jobs worker`` process, started and waited for like ``gantry up`` does."""

    def __init__(self, config: Path, index: int, log_dir: Path) -> None:
        self.port = free_port()
        self.log = (log_dir / f"worker-{index}.log").open("a")
        self.proc = subprocess.Popen(
            [*ROOT_COMMAND, "jobs", "worker", "--health-port", str(self.port), "--worker-index", str(index)],
            env=gantry_env(config), stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        wait_healthy(self.proc, self.port, timeout_s=timeout, what=f"worker (see {self.log.name})")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def read_topic(broker: str, topic: str, idle_s: float = 3.0, until=None, timeout_s: float = 120) -> list[bytes]:
    """Every message on a topic from the beginning, once ``until(messages)`` holds or nothing new comes."""
    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        messages: list[bytes] = []
        deadline, last_new = time.monotonic() + timeout_s, time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=300)
            for records in batch.values():
                messages += [r.value for r in records if r.value is not None]
                last_new = time.monotonic()
            if until is not None and until(messages):
                break
            if until is None and time.monotonic() - last_new > idle_s:
                break
        return messages
    finally:
        consumer.close()
