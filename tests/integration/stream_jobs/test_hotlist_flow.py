import csv
import time

import pytest
from jobs_helpers import Worker, read_topic, run_gantry, write_config

from gantry import topics
from gantry.events import DeadLetter, HotlistHit, PlateRead, decode, encode, now_utc
from gantry.kafka import producer

pytestmark = pytest.mark.integration


def test_hotlist_commands_and_hits(broker, tmp_path, workers):
    config = write_config(tmp_path / "gantry.yaml", broker, {"cameras": [{"id": "cam-1", "lat": 51.5, "lon": 0}]})
    assert run_gantry(config, "hotlist", "add", "--plate", "hl 01 abc", "--list", "stolen", "--priority", "1").returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("plate,list,priority\nHL02ABC,wanted,2\nHL03ABC,wanted,9\n")
    refused = run_gantry(config, "hotlist", "import", str(bad))
    assert refused.returncode != 0 and "bad.csv:3: priority" in refused.stderr
    good = tmp_path / "good.csv"
    good.write_text("plate,list,priority,reason\nHL04XYZ,wanted,2,warrant\n")
    assert run_gantry(config, "hotlist", "import", str(good)).returncode == 0

    workers.append(worker := Worker(config, 0, tmp_path))
    worker.wait_ready()
    exported = tmp_path / "export.csv"
    assert run_gantry(config, "hotlist", "export", str(exported)).returncode == 0
    ours = [r for r in csv.DictReader(exported.open()) if r["plate"].startswith("HL")]  # the session broker is shared
    assert {(r["plate"], r["list"]) for r in ours} == {("HL01ABC", "stolen"), ("HL04XYZ", "wanted")}

    # Added while the worker runs: usable moments later.
    assert run_gantry(config, "hotlist", "add", "--plate", "HL05QRS", "--list", "wanted").returncode == 0
    assert run_gantry(config, "hotlist", "remove", "--plate", "HL04XYZ", "--list", "wanted").returncode == 0
    time.sleep(1)
    send = producer(broker)
    reads = {
        "exact": PlateRead(read_id="hl-r1", camera_id="cam-1", ts=now_utc(), plate="HL01ABC", confidence=0.9),
        "possible": PlateRead(read_id="hl-r2", camera_id="cam-1", ts=now_utc(), plate="HL0IABC", confidence=0.8),
        "live": PlateRead(read_id="hl-r3", camera_id="cam-1", ts=now_utc(), plate="HL05QRS", confidence=0.8),
        "removed": PlateRead(read_id="hl-r4", camera_id="cam-1", ts=now_utc(), plate="HL04XYZ", confidence=0.8),
        "unknown_camera": PlateRead(read_id="hl-r5", camera_id="cam-9", ts=now_utc(), plate="HL01ABC", confidence=0.8),
    }
    for read in reads.values():
        send.send(topics.PLATE_READS, key=read.plate.encode(), value=encode(read))
    send.send(topics.PLATE_READS, key=b"junk", value=b"not json")
    send.flush()

    def ours(messages: list[bytes]) -> list[HotlistHit]:
        return [h for h in map(lambda m: decode(HotlistHit, m), messages) if h.read_id.startswith("hl-")]

    hits = ours(read_topic(broker, topics.HOTLIST_HITS, until=lambda m: len(ours(m)) >= 3, timeout_s=30))
    assert sorted((h.read_id, h.listed_plate, h.match) for h in hits) == [
        ("hl-r1", "HL01ABC", "exact"), ("hl-r2", "HL01ABC", "possible"), ("hl-r3", "HL05QRS", "exact"),
    ]

    # Listed moments after it passed (the call came in while the car drove by): still a hit.
    passed = PlateRead(read_id="hl-r6", camera_id="cam-1", ts=now_utc(), plate="HL06NEW", confidence=0.9)
    marker = PlateRead(read_id="hl-r7", camera_id="cam-1", ts=now_utc(), plate="HL01ABC", confidence=0.9)
    for read in (passed, marker):  # one partition: once the marker's hit is out, the passing read was screened
        send.send(topics.PLATE_READS, key=read.plate.encode(), value=encode(read), partition=0)
    send.flush()
    read_topic(broker, topics.HOTLIST_HITS, until=lambda m: any(h.read_id == "hl-r7" for h in ours(m)), timeout_s=30)
    assert not any(h.read_id == "hl-r6" for h in ours(read_topic(broker, topics.HOTLIST_HITS, idle_s=0.5)))
    assert run_gantry(config, "hotlist", "add", "--plate", "HL06NEW", "--list", "wanted").returncode == 0
    late = [h for h in ours(read_topic(broker, topics.HOTLIST_HITS, until=lambda m: any(
        h.read_id == "hl-r6" for h in ours(m)), timeout_s=30)) if h.read_id == "hl-r6"]
    assert [(h.listed_plate, h.list, h.match) for h in late] == [("HL06NEW", "wanted", "exact")]

    def reasons(messages: list[bytes]) -> str:
        return " | ".join(sorted(decode(DeadLetter, m).reason for m in messages))

    expected = ("unknown camera 'cam-9'", "invalid PlateRead")
    letters = read_topic(broker, topics.DEAD_LETTERS, until=lambda m: all(e in reasons(m) for e in expected), timeout_s=30)
    assert all(e in reasons(letters) for e in expected)
