"""Real broker, real workers: fixtures for the stream_jobs wiring tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from jobs_helpers import Worker

from gantry.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker(broker: EmbeddedBroker) -> str:
    """The session broker of ``tests/conftest.py``; these tests only need its address."""
    return broker.bootstrap_servers


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    """Workers a test starts with ``Worker(...)`` and appends here are stopped afterwards."""
    started: list[Worker] = []
    yield started
    for w in started:
        w.stop()
