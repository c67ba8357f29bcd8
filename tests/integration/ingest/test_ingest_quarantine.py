"""What the broker will never take, and spool files that hold no event, are set aside, not retried.

Before, either stopped the spool for good: a refused event was replayed after every pause with
every later event waiting behind it, and a stray ``*.event`` file stopped start-up. Each test
fills the spool as a previous run of ``serve`` would have left it, then starts the server
against the session's broker and watches the good events arrive.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from gantry import stack, topics
from gantry.config import load_config
from gantry.events import PlateRead, decode, encode
from ingest.delivery import Delivery
from ingest.examples import gantry_json
from ingest.quarantine import Quarantine
from ingest.spool import Spool

pytestmark = pytest.mark.integration
TS = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)  # within event_time.max_past_s
OVER_THE_LIMIT = b"x" * (9 * 1024 * 1024)  # the ingest producer sends at most 8 MiB per record


def spooled_read(plate: str, n: int) -> bytes:
    read = PlateRead(read_id=f"{plate}-{n}", camera_id="cam-1", ts=TS + timedelta(seconds=n), plate=plate,
                     confidence=0.9)
    return encode(read)


def fill_spool(data_dir: Path, plate: str, values: list[bytes]) -> Path:
    spool = Spool(data_dir / "ingest-spool", max_bytes=64 * 1024 * 1024, max_events=100)
    for value in values:
        spool.append(topics.PLATE_READS, plate.encode(), value)
    return spool.directory


def arrived(topic_records, broker, plate: str, expected: int) -> list[str]:
    records = topic_records(broker.bootstrap_servers, topics.PLATE_READS, plate.encode(), expected)
    return [decode(PlateRead, r.value).read_id for r in records]


def gantry_status(data_dir: Path) -> str:
    """What `gantry status` prints for the data directory (no stack runs there)."""
    console = Console(file=io.StringIO(), width=1000)
    stack.print_status(stack.status(load_config(data_dir / "gantry.yaml")), console)
    return console.file.getvalue()


def test_a_spooled_event_the_broker_refuses_is_set_aside_and_the_rest_replay(
    broker, make_server, topic_records, tmp_path
) -> None:
    plate = "REFUSE1"
    spool = fill_spool(tmp_path, plate, [spooled_read(plate, 1), OVER_THE_LIMIT, spooled_read(plate, 2)])
    server = make_server(broker.bootstrap_servers, tmp_path)
    server.start()
    try:
        assert arrived(topic_records, broker, plate, 2) == [f"{plate}-1", f"{plate}-2"]
        answer = httpx.post(
            f"{server.url}/v1/reads", content=gantry_json(plate, TS + timedelta(seconds=3), "evt-3"),
            headers={"X-Gantry-Token": "token-one", "Content-Type": "application/json"}, timeout=30,
        )
        assert answer.json()["status"] == "acked", answer.text  # the spool is drained, not wedged
        metrics = httpx.get(f"{server.health_url}/metrics").text
    finally:
        server.stop()
    quarantine = Quarantine(spool / "quarantine")
    [held] = quarantine.held()
    assert held.read_bytes().endswith(OVER_THE_LIMIT) and not list(spool.glob("*.event"))
    assert quarantine.reason(held).startswith("undeliverable: [Error 10] MessageSizeTooLargeError: ")
    assert 'gantry_ingest_quarantined_total{cause="refused"} 1.0' in metrics
    shown = gantry_status(tmp_path)
    assert f"1 ingest events quarantined in {quarantine.directory}" in shown
    assert "(the latest: undeliverable: [Error 10] MessageSizeTooLargeError: The message is" in shown


def test_spool_files_that_hold_no_event_are_set_aside_and_start_up_replays_the_rest(
    broker, make_server, topic_records, tmp_path
) -> None:
    plate = "UNREAD1"
    spool = fill_spool(tmp_path, plate, [spooled_read(plate, n) for n in (1, 2, 3)])
    cut_short = spool / f"{2:020d}.event"
    cut_short.write_bytes(cut_short.read_bytes()[:-10])
    (spool / f"{7:020d}.event").write_bytes(b"junk")
    (spool / "notes.event").write_text("not a spool event")
    server = make_server(broker.bootstrap_servers, tmp_path)
    server.start()
    try:
        assert arrived(topic_records, broker, plate, 2) == [f"{plate}-1", f"{plate}-3"]
        metrics = httpx.get(f"{server.health_url}/metrics").text
    finally:
        server.stop()
    quarantine = Quarantine(spool / "quarantine")
    assert sorted(p.name.split("-", 1)[1] for p in quarantine.held()) == [
        f"{2:020d}.event", f"{7:020d}.event", "notes.event"
    ]
    assert 'gantry_ingest_quarantined_total{cause="unreadable"} 3.0' in metrics
    assert f"3 ingest events quarantined in {quarantine.directory}" in gantry_status(tmp_path)


def test_an_event_refused_while_the_broker_acknowledges_is_no_outage(broker, tmp_path) -> None:
    plate = "REFUSE2"
    spool = Spool(tmp_path / "ingest-spool", max_bytes=64 * 1024 * 1024, max_events=100)

    async def deliver_both() -> tuple[str, str, bool]:
        delivery = Delivery(broker.bootstrap_servers, spool, ack_timeout_s=5)
        await delivery.start()
        try:
            refused = await delivery.deliver(topics.PLATE_READS, plate.encode(), OVER_THE_LIMIT)
            after = await delivery.deliver(topics.PLATE_READS, plate.encode(), spooled_read(plate, 1))
            return refused, after, delivery.healthy
        finally:
            await delivery.stop()

    assert asyncio.run(deliver_both()) == ("quarantined", "acked", True)
    [held] = spool.quarantine.held()
    assert held.read_bytes().endswith(OVER_THE_LIMIT) and len(spool) == 0
