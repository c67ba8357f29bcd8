"""The embedded broker's retention rule: which stored record batches go."""

from pathlib import Path

from gantry.retention import StoredBatch, expired, retention_s


def batches(*written: float) -> list[StoredBatch]:
    return [StoredBatch(Path(f"{n:020d}.batch"), n * 10, at) for n, at in enumerate(written)]


def test_a_topic_keeps_batches_for_its_retention_ms_only_where_its_policy_deletes():
    assert retention_s([{"name": "retention.ms", "value": "86400000"}]) == 86400
    assert retention_s([{"name": "retention.ms", "value": "60000"}, {"name": "cleanup.policy", "value": "delete"}]) == 60
    assert retention_s([{"name": "retention.ms", "value": "60000"},
                        {"name": "cleanup.policy", "value": "compact,delete"}]) == 60
    assert retention_s([{"name": "retention.ms", "value": "60000"}, {"name": "cleanup.policy", "value": "compact"}]) is None
    assert retention_s([{"name": "retention.ms", "value": "-1"}]) is None
    assert retention_s([]) is None  # no retention.ms: kept for ever (state and hotlist topics)


def test_the_oldest_batches_go_in_offset_order_and_never_the_newest():
    now = 1000.0
    assert [b.base_offset for b in expired(batches(100, 200, 950, 990), keep_s=60, now=now)] == [0, 10]
    assert expired(batches(100, 200), keep_s=60, now=now) == batches(100)  # the newest stays, however old
    assert expired(batches(100), keep_s=60, now=now) == []


def test_a_young_batch_stops_the_removal_so_the_kept_offsets_have_no_hole():
    # a batch rewritten later (younger) in the middle: nothing after it goes either
    assert [b.base_offset for b in expired(batches(100, 990, 200, 995), keep_s=60, now=1000.0)] == [0]
    assert expired(list(reversed(batches(100, 200, 995))), keep_s=60, now=1000.0) == batches(100, 200)
