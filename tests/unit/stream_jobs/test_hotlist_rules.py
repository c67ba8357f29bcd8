from datetime import UTC, datetime

from gantry.events import HotlistEntry, PlateRead
from stream_jobs.hotlist.rules import HotlistIndex, confusable_variants, match

T = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def read(plate: str, read_id: str = "r1") -> PlateRead:
    return PlateRead(read_id=read_id, camera_id="c1", ts=T, plate=plate, confidence=0.9)


def index(*entries: HotlistEntry) -> HotlistIndex:
    idx = HotlistIndex()
    for e in entries:
        idx.put(e)
    return idx


def test_variants_swap_exactly_one_confusable_character():
    assert sorted(confusable_variants("B0X")) == ["80X", "BOX"]
    assert list(confusable_variants("XYW")) == []


def test_exact_and_possible_matches():
    idx = index(HotlistEntry(plate="AB12CDE", list="stolen", priority=1))
    assert [h.match for h in match(read("AB12CDE"), idx)] == ["exact"]
    assert [h.match for h in match(read("A812CDE"), idx)] == ["possible"]
    assert match(read("A812CD3"), idx) == []  # two differences (one not confusable)
    assert match(read("A8I2CDE"), idx) == []  # two confusable differences


def test_validity_window_is_respected():
    idx = index(HotlistEntry(plate="AB12CDE", list="wanted", valid_from=T.replace(hour=13)))
    assert match(read("AB12CDE"), idx) == []
    idx = index(HotlistEntry(plate="AB12CDE", list="wanted", valid_until=T))  # exclusive end
    assert match(read("AB12CDE"), idx) == []


def test_hit_id_is_stable_per_read_and_entry_and_tombstones_remove():
    entries = [HotlistEntry(plate="AB12CDE", list="stolen"), HotlistEntry(plate="AB12CDE", list="permit")]
    idx = index(*entries)
    hits = match(read("AB12CDE"), idx)
    assert len({h.hit_id for h in hits}) == 2
    assert [h.hit_id for h in match(read("AB12CDE"), idx)] == [h.hit_id for h in hits]
    idx.remove("stolen:AB12CDE")
    assert [h.list for h in match(read("AB12CDE"), idx)] == ["permit"]
    assert len(idx) == 1


def test_a_hit_carries_the_picture_of_its_read():
    idx = index(HotlistEntry(plate="AB12CDE", list="stolen"))
    pictured = read("AB12CDE").model_copy(update={"image_ref": "file:///snapshots/2026-11-21/c1/r1-overview.jpg"})
    assert [h.image_ref for h in match(pictured, idx)] == [pictured.image_ref]
    assert [h.image_ref for h in match(read("AB12CDE"), idx)] == [None]
