"""Fixtures shared by every test folder: real services on free ports, started once, torn down."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from kafka import KafkaProducer

from gantry import topics
from gantry.broker import EmbeddedBroker
from gantry.config import GantryConfig
from gantry.kafka import ensure_topics, producer


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """One real broker for the session, with the pipeline's topics created."""
    with EmbeddedBroker() as running:
        ensure_topics(GantryConfig(), running.bootstrap_servers)
        yield running


@pytest.fixture
def deaf_producer() -> Iterator[KafkaProducer]:
    """A real producer whose broker stopped after it connected: each send fails two seconds later,
    and ``flush()`` returns all the same, as kafka-python's does whenever a record failed."""
    with EmbeddedBroker() as gone:
        ensure_topics(GantryConfig(), gone.bootstrap_servers)
        deaf = producer(gone.bootstrap_servers, delivery_timeout_ms=2000, request_timeout_ms=1000)
        for topic in topics.ALL:  # metadata for every topic, so that no send waits for it
            deaf.send(topic, value=b"warm-up")
        deaf.flush()
    yield deaf
    deaf.close(timeout=5)  # what is still pending expires within two seconds


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory) -> str:
    """The in-process warehouse engine. chDB opens one data directory per process, so every test
    folder shares this one and keeps apart by database."""
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture(autouse=True)
def _no_stray_gantry_env(monkeypatch):
    """Tests see only the GANTRY_* variables they set themselves."""
    for name in list(os.environ):
        if name.startswith("GANTRY_") and name != "GANTRY_TEST_CLICKHOUSE_URL":
            monkeypatch.delenv(name)
