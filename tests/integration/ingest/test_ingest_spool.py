"""Broker outages: accepted events are spooled, replayed once and in order, and a full spool says 503.

Each test has its own broker, which it stops and starts again on the same port. The broker keeps
its data in memory, so after the restart the topic holds exactly what the spool replayed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gantry import topics
from gantry.events import PlateRead, decode
from ingest.examples import gantry_json

pytestmark = pytest.mark.integration
TS = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)  # within event_time.max_past_s
PLATE = "SPOOL1"


def post(server, n: int) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/reads",
        content=gantry_json(PLATE, TS + timedelta(seconds=n), f"evt-{n}"),
        headers={"X-Gantry-Token": "token-one", "Content-Type": "application/json"},
        timeout=30,
    )


def arrived(topic_records, broker, expected: int) -> list[str]:
    records = topic_records(broker.bootstrap_servers, topics.PLATE_READS, PLATE.encode(), expected, timeout_s=40)
    return [decode(PlateRead, r.value).read_id for r in records]


def test_outage_events_spooled_then_replayed_once_in_order(
    own_broker, make_server, topic_records, tmp_path
) -> None:
    server = make_server(own_broker.bootstrap_servers, tmp_path, ack_timeout_s=1.5)
    server.start()
    try:
        assert post(server, 0).json()["status"] == "acked"
        own_broker.stop()
        answers = [post(server, n) for n in range(1, 11)]
        assert [a.status_code for a in answers] == [202] * 10, [a.text for a in answers]
        assert len(list((tmp_path / "ingest-spool").glob("*.event"))) == 10
        own_broker.start()
        read_ids = arrived(topic_records, own_broker, 10)
        assert read_ids == [a.json()["read_id"] for a in answers], (read_ids, [a.json() for a in answers])
        after = post(server, 11)  # the spool is drained: straight to the broker again
        assert (
            after.status_code == 200 and arrived(topic_records, own_broker, 11)[-1] == after.json()["read_id"]
        )
        assert not list((tmp_path / "ingest-spool").glob("*.event"))
    finally:
        server.stop()


def test_full_spool_answers_503_and_the_spool_outlives_the_server(
    own_broker, make_server, topic_records, tmp_path
) -> None:
    server = make_server(own_broker.bootstrap_servers, tmp_path, ack_timeout_s=1.0, spool_max_events=4)
    server.start()
    try:
        own_broker.stop()
        answers = [post(server, n) for n in range(6)]
        assert [a.status_code for a in answers] == [202] * 4 + [503] * 2
        assert answers[-1].headers["Retry-After"] == "5"
    finally:
        server.stop()
    own_broker.start()
    server.start()
    try:
        assert arrived(topic_records, own_broker, 4) == [a.json()["read_id"] for a in answers[:4]]
    finally:
        server.stop()


def test_server_started_without_a_broker_spools_then_delivers(
    own_broker, make_server, topic_records, tmp_path
) -> None:
    own_broker.stop()
    server = make_server(own_broker.bootstrap_servers, tmp_path, ack_timeout_s=1.0)
    server.start()
    try:
        answers = [post(server, n) for n in range(3)]
        assert [a.status_code for a in answers] == [202] * 3
        own_broker.start()
        assert arrived(topic_records, own_broker, 3) == [a.json()["read_id"] for a in answers]
    finally:
        server.stop()
