"""The sink's batching and decoding rules, without services."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from gantry import topics
from gantry.events import PlateRead, encode
from warehouse.batch import Batch, Message, content_digest, insert_token
from warehouse.writer import Failure, classify, refusal_reason


def read(i: int, plate: str = "AB12CDE") -> bytes:
    return encode(PlateRead(read_id=f"r{i}", camera_id="cam-1", ts=datetime(2026, 11, 21, tzinfo=UTC),
                            plate=plate, confidence=0.9))  # fmt: skip


def messages(partition: int, offsets, topic: str = topics.PLATE_READS, raw=None) -> list[Message]:
    return [Message(topic, partition, o, read(o) if raw is None else raw) for o in offsets]


def test_rows_are_the_validated_normalised_event_as_a_json_array():
    batch = Batch(10, 60)
    batch.extend([Message(topics.PLATE_READS, 0, 5, read(1, plate="ab-12 cde"))], now=0)
    drained = batch.drain()
    [pending] = drained.inserts
    [row] = json.loads(pending.body())
    assert pending.table == "plate_reads" and drained.letters == []
    assert row["plate"] == "AB12CDE" and row["read_id"] == "r1" and row["ts"] == "2026-11-21T00:00:00Z"


def test_poison_becomes_a_dead_letter_naming_the_field_and_is_still_committed():
    batch = Batch(10, 60)
    poison = Message(topics.PLATE_READS, 2, 41, b'{"v": 1, "read_id": "x"}')
    batch.extend([*messages(2, [39, 40]), poison, *messages(2, [42])], now=0)
    assert len(batch) == 4
    drained = batch.drain()
    [letter] = drained.letters
    assert (letter.source_topic, letter.partition, letter.offset, letter.stage) == ("plate_reads", 2, 41, "warehouse-sink")
    assert "camera_id" in letter.reason and letter.payload == '{"v": 1, "read_id": "x"}'
    assert [s.offset for s in drained.inserts[0].sources] == [39, 40, 42]
    assert drained.commit_offsets == {("plate_reads", 2): 43}
    assert len(batch) == 0 and batch.drain().inserts == []


def test_an_empty_message_and_broken_json_are_dead_letters_too():
    batch = Batch(10, 60)
    batch.extend([Message(topics.PLATE_READS, 0, 0, None), Message(topics.PLATE_READS, 0, 1, b"{not json")], now=0)
    reasons = [letter.reason for letter in batch.drain().letters]
    assert reasons[0].startswith("empty message") and reasons[1].startswith("invalid PlateRead")


def test_unknown_topic_is_a_dead_letter():
    batch = Batch(10, 60)
    batch.extend(messages(0, [0], topic="frames", raw=b"{}"), now=0)
    assert batch.drain().letters[0].reason.startswith("no warehouse table")


def test_due_by_rows_or_by_age_of_oldest_message():
    batch = Batch(3, 2.0)
    assert not batch.due(now=100)
    batch.extend(messages(0, [0]), now=100)
    assert not batch.due(now=101.9)
    assert batch.due(now=102)
    batch.extend(messages(0, [1, 2]), now=101)
    assert batch.due(now=100)
    batch.drain()
    assert len(batch) == 0 and not batch.due(now=1000)


def test_offsets_to_commit_are_past_the_last_message_of_each_partition():
    batch = Batch(100, 60)
    batch.extend(messages(0, [3, 4, 5]), now=0)
    batch.extend(messages(1, [7]), now=0)
    batch.extend(messages(0, [6]), now=0)
    assert batch.drain().commit_offsets == {("plate_reads", 0): 7, ("plate_reads", 1): 8}


def test_batches_split_per_table_with_offset_tokens():
    batch = Batch(100, 60)
    batch.extend(messages(1, [3, 5, 7]), now=0)
    [pending] = batch.drain().inserts
    assert pending.table == "plate_reads" and len(pending.rows) == 3
    content = content_digest(pending.sources)
    assert pending.token == insert_token("plate_reads", {("plate_reads", 1): [(3, 3), (5, 5), (7, 7)]}, content)
    assert pending.token != insert_token("plate_reads", {("plate_reads", 1): [(3, 7)]}, content)


def test_the_same_offsets_with_other_messages_get_another_token():
    """After a broker reset offsets start at 0 again: new messages there are no retry."""
    tokens = []
    for reads in ([1, 2], [3, 4], [1, 2]):
        batch = Batch(100, 60)
        batch.extend([Message(topics.PLATE_READS, 0, offset, read(i)) for offset, i in enumerate(reads)], now=0)
        [pending] = batch.drain().inserts
        tokens.append(pending.token)
    assert tokens[0] == tokens[2] != tokens[1]


def test_halves_keep_rows_with_their_messages_and_get_their_own_tokens():
    batch = Batch(100, 60)
    batch.extend(messages(0, range(5)), now=0)
    [pending] = batch.drain().inserts
    first, second = pending.halves()
    assert [s.offset for s in first.sources] == [0, 1] and [r.read_id for r in second.rows] == ["r2", "r3", "r4"]
    assert len({pending.token, first.token, second.token}) == 3


def test_token_is_stable_and_distinguishes_ranges():
    a = insert_token("plate_reads", {("plate_reads", 0): [(0, 9)], ("plate_reads", 1): [(4, 8)]}, "c")
    b = insert_token("plate_reads", {("plate_reads", 1): [(4, 8)], ("plate_reads", 0): [(0, 9)]}, "c")
    assert a == b
    assert a != insert_token("plate_reads", {("plate_reads", 0): [(0, 10)], ("plate_reads", 1): [(4, 8)]}, "c")


def test_data_errors_are_refusals_sizes_are_split_and_outages_wait():
    assert classify(DatabaseError("Code: 69. Decimal value is too big", code=69)) is Failure.REFUSED
    assert classify(DatabaseError("Code: 241. Memory limit exceeded", code=241)) is Failure.TOO_BIG
    over_body = "Code: 290. DB::Exception: the request body is over the server's limit of 8388608 bytes"
    assert classify(DatabaseError(over_body, code=290)) is Failure.TOO_BIG
    too_many = "Code: 252. Too many partitions for single INSERT block (more than 100)"
    assert classify(DatabaseError(too_many, code=252)) is Failure.TOO_MANY_PARTITIONS
    assert classify(DatabaseError("Code: 252. Too many parts (300). Merges are slower", code=252)) is Failure.WAIT
    assert classify(OperationalError("Error HTTPConnectionPool: connection refused")) is Failure.WAIT
    assert classify(ConnectionError("reset by peer")) is Failure.WAIT
    reason = refusal_reason("zone_charges", DatabaseError("Code: 69.\n  Decimal value is too big", code=69))
    assert reason == "the warehouse refused the row for zone_charges: Code: 69. Decimal value is too big"
