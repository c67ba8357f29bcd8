"""Admission of reads into the jobs: a read outside the event-time window is a dead letter, never an exception."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gantry.config import EventTimeConfig
from gantry.events import DeadLetter, PlateRead, encode
from stream_jobs.intake import admit, receipt

WINDOW = EventTimeConfig()
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def raw_read(ts: datetime) -> bytes:
    # Built by hand: the model itself accepts any aware time, as a producer outside Gantry would.
    return (b'{"v":1,"read_id":"r1","camera_id":"cam-1","ts":"%s","plate":"AB12CDE","confidence":0.9}'
            % ts.isoformat().encode())


def test_a_read_within_the_window_is_admitted() -> None:
    read = admit(raw_read(NOW - timedelta(hours=1)), {"cam-1"}, WINDOW, NOW)
    assert isinstance(read, PlateRead) and read.plate == "AB12CDE"


def test_far_future_and_far_past_reads_are_dead_letters_with_the_reason() -> None:
    for ts, key in ((datetime(9999, 12, 31, 23, 59, tzinfo=UTC), "max_future_s"),
                    (NOW + timedelta(hours=1), "max_future_s"),
                    (datetime(1, 1, 1, tzinfo=UTC), "max_past_s"),
                    (NOW - timedelta(days=30), "max_past_s")):
        letter = admit(raw_read(ts), {"cam-1"}, WINDOW, NOW, partition=2, offset=7)
        assert isinstance(letter, DeadLetter), ts
        assert f"event_time.{key}" in letter.reason and letter.partition == 2 and letter.offset == 7


def test_the_dead_letter_names_its_source_topic() -> None:
    read = PlateRead(read_id="r2", camera_id="cam-1", ts=NOW + timedelta(days=1), plate="AB12CDE", confidence=0.9)
    letter = admit(encode(read), set(), WINDOW, NOW, source_topic="gantry-jobs-reads-by-plate")
    assert isinstance(letter, DeadLetter) and letter.source_topic == "gantry-jobs-reads-by-plate"


def test_the_receipt_is_the_records_timestamp_when_plausible_else_the_workers_clock() -> None:
    now_ms = int(NOW.timestamp() * 1000)
    produced = NOW - timedelta(minutes=5)
    assert receipt(int(produced.timestamp() * 1000), NOW, WINDOW) == produced  # a backlog keeps its own receipt
    assert receipt(now_ms + 10**12, NOW, WINDOW) == NOW  # a record stamped in the future widens nothing
    assert receipt(2**63 - 1, NOW, WINDOW) == NOW
    assert receipt(0, NOW, WINDOW) == NOW  # nor one stamped long ago
    assert receipt(-1, NOW, WINDOW) == NOW  # no timestamp
