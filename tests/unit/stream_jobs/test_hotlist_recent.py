"""A plate listed moments after it passed: the screener's recent reads and the hits they raise."""

from datetime import timedelta

from gantry.events import HotlistEntry, PlateRead, now_utc
from stream_jobs.hotlist.recent import RecentReads
from stream_jobs.hotlist.rules import HotlistIndex, hit_id, listing_hits, listing_plates

T0 = now_utc()


def read(read_id: str, plate: str, after_s: float = 0.0) -> PlateRead:
    return PlateRead(read_id=read_id, camera_id="cam-1", ts=T0 + timedelta(seconds=after_s), plate=plate,
                     confidence=0.9)


def test_reads_are_kept_by_plate_for_the_window_only() -> None:
    recent = RecentReads(keep_s=60)
    recent.add(read("r1", "AB12CDE"), now=0)
    recent.add(read("r2", "XY34ZZZ"), now=30)
    recent.add(read("r3", "AB12CDE"), now=50)
    assert [r.read_id for r in recent.of_plates(["AB12CDE"], now=55)] == ["r1", "r3"]
    assert [r.read_id for r in recent.of_plates(["AB12CDE", "XY34ZZZ"], now=70)] == ["r3", "r2"]  # r1 too old
    assert recent.of_plates(["AB12CDE", "XY34ZZZ"], now=200) == [] and len(recent) == 0


def test_the_window_is_bounded_oldest_first() -> None:
    recent = RecentReads(keep_s=60, max_reads=2)
    for i, plate in enumerate(["AB12CDE", "XY34ZZZ", "AB12CDE"]):
        recent.add(read(f"r{i}", plate), now=i)
    assert len(recent) == 2
    assert [r.read_id for r in recent.of_plates(["AB12CDE", "XY34ZZZ"], now=3)] == ["r2", "r1"]


def test_a_new_entry_hits_the_recent_reads_of_its_plate_and_look_alikes() -> None:
    index = HotlistIndex()
    index.put(HotlistEntry(plate="AB12CDE", list="stolen"))
    index.put(HotlistEntry(plate="AB12CDE", list="wanted"))
    entry = HotlistEntry(plate="AB12CDE", list="wanted")
    reads = [read("r1", "AB12CDE"), read("r2", "A812CDE")]
    assert set(listing_plates(entry)) >= {"AB12CDE", "A812CDE"}
    hits = listing_hits(entry, reads, index)
    assert [(h.read_id, h.list, h.match) for h in hits] == [("r1", "wanted", "exact"), ("r2", "wanted", "possible")]
    assert hits[0].hit_id == hit_id("r1", entry)  # the id a read screened after the listing would raise


def test_an_entry_removed_or_not_yet_valid_raises_nothing() -> None:
    index = HotlistIndex()
    entry = HotlistEntry(plate="AB12CDE", list="wanted")
    assert listing_hits(entry, [read("r1", "AB12CDE")], index) == []  # removed again since
    later = HotlistEntry(plate="AB12CDE", list="wanted", valid_from=T0 + timedelta(hours=1))
    index.put(later)
    assert listing_hits(later, [read("r1", "AB12CDE")], index) == []
