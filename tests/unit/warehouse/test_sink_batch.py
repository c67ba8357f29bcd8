"""The sink's batching rules, without services."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gantry import topics
from gantry.events import PlateRead, encode
from warehouse.sink import Batch, insert_token


def read(i: int, plate: str = "AB12CDE") -> bytes:
    return encode(PlateRead(read_id=f"r{i}", camera_id="cam-1", ts=datetime(2026, 11, 21, tzinfo=UTC),
                            plate=plate, confidence=0.9))  # fmt: skip


def test_rows_are_the_validated_normalised_event():
    batch = Batch(10, 60)
    assert batch.add(topics.PLATE_READS, 0, 5, read(1, plate="ab-12 cde"), now=0) is None
    [pending] = batch.drain()
    row = json.loads(pending.rows[0])
    assert pending.table == "plate_reads"
    assert row["plate"] == "AB12CDE" and row["read_id"] == "r1" and row["ts"] == "2026-11-21T00:00:00Z"


def test_poison_becomes_a_dead_letter_naming_the_field_and_still_counts():
    batch = Batch(10, 60)
    letter = batch.add(topics.PLATE_READS, 2, 41, b'{"v": 1, "read_id": "x"}', now=0)
    assert letter is not None
    assert (letter.source_topic, letter.partition, letter.offset, letter.stage) == ("plate_reads", 2, 41, "warehouse-sink")
    assert "camera_id" in letter.reason and letter.payload == '{"v": 1, "read_id": "x"}'
    assert len(batch) == 1 and batch.drain() == []


def test_unknown_topic_is_a_dead_letter():
    assert Batch(10, 60).add("frames", 0, 0, b"{}", now=0).reason.startswith("no warehouse table")


def test_due_by_rows_or_by_age_of_oldest_message():
    batch = Batch(3, 2.0)
    assert not batch.due(now=100)
    batch.add(topics.PLATE_READS, 0, 0, read(0), now=100)
    assert not batch.due(now=101.9)
    assert batch.due(now=102)
    batch.add(topics.PLATE_READS, 0, 1, read(1), now=101)
    batch.add(topics.PLATE_READS, 0, 2, read(2), now=101)
    assert batch.due(now=100)
    batch.drain()
    assert len(batch) == 0 and not batch.due(now=1000)


def test_batches_split_per_table_with_offset_tokens():
    batch = Batch(100, 60)
    for offset in (7, 3, 5):
        batch.add(topics.PLATE_READS, 1, offset, read(offset), now=0)
    pending = {p.table: p for p in batch.drain()}
    assert set(pending) == {"plate_reads"} and len(pending["plate_reads"].rows) == 3
    assert pending["plate_reads"].token == insert_token("plate_reads", {("plate_reads", 1): [3, 7]})


def test_token_is_stable_and_distinguishes_ranges():
    a = insert_token("plate_reads", {("plate_reads", 0): [0, 9], ("plate_reads", 1): [4, 8]})
    b = insert_token("plate_reads", {("plate_reads", 1): [4, 8], ("plate_reads", 0): [0, 9]})
    assert a == b
    assert a != insert_token("plate_reads", {("plate_reads", 0): [0, 10], ("plate_reads", 1): [4, 8]})
