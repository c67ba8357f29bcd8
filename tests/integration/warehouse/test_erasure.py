"""`gantry privacy erase` against a real broker, warehouse and snapshot store: rows, pictures,
the block-list that the sink honours, the changelog tombstone, the audit and the report; and the
short retention of the topics it cannot reach."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pydantic import SecretStr
from test_sink import past_the_backlog
from warehouse_helpers import T0, charge, hit, journey, load, reads, webhook_failure

from gantry import kafka, topics
from gantry.broker import EmbeddedBroker
from gantry.config import GantryConfig, RetentionConfig
from gantry.erasures import BlockList, Follower, publish
from gantry.events import encode
from gantry.kafka import ensure_topics, replay
from gantry.privacy import pseudonymise
from gantry.retention import kept_partitions
from gantry.site_events import GateDecision, ParkingPayment, ParkingSession
from ingest.snapshots import SnapshotStore
from warehouse.migrations import migrate
from warehouse.privacy import PICTURES, Reach, erase_plate
from warehouse.schema import PLATE_ROWS
from warehouse.sink import TOPICS, Sink

pytestmark = pytest.mark.integration
KEY = SecretStr("test-pseudonym-key")
DAY = T0.date()


@pytest.fixture(scope="module")
def broker():
    """A broker of its own: once a plate is erased on a broker, every sink and worker on it needs
    the pseudonymisation key, which other tests' processes do not have."""
    with EmbeddedBroker() as running:
        ensure_topics(GantryConfig(), running.bootstrap_servers)
        yield running.bootstrap_servers


def pictured(store: SnapshotStore, read):
    """The read as ingest makes it: both pictures stored, ``image_ref`` naming the overview."""
    store.put(read.ts, read.camera_id, read.read_id, "plate", b"\xff\xd8plate")
    return read.model_copy(update={"image_ref": store.put(read.ts, read.camera_id, read.read_id, "overview",
                                                          b"\xff\xd8overview")})


def test_erasure_removes_rows_and_pictures_blocklists_the_plate_and_is_audited(warehouse, broker, tmp_path):
    migrate(warehouse, RetentionConfig())
    plate = f"ER{uuid.uuid4().hex[:6].upper()}"
    store = SnapshotStore((tmp_path / "snapshots").as_uri())
    target = [pictured(store, r) for r in reads("cam-e", 5, plate=plate)]
    other = [pictured(store, r) for r in reads("cam-f", 3, plate="KE3PME")]
    load(warehouse, "plate_reads", target + other)
    load(warehouse, "hotlist_hits", [hit(r) for r in target[:2]])
    load(warehouse, "zone_charges", [charge("zone-a", plate, DAY), charge("zone-a", "KE3PME", DAY)])
    load(warehouse, "journeys", [journey(target[0], target[1], KEY), journey(target[2], target[3], KEY),
                                 journey(other[0], other[1], KEY)])  # fmt: skip
    load(warehouse, "webhook_dead_letters", [webhook_failure(hit(target[0])), webhook_failure(hit(other[0]))])

    erasure = erase_plate(warehouse, plate.lower(), "request REF-1", "dpo@example", KEY,
                          Reach(store, broker, embedded_broker=True))

    removed = dict.fromkeys(PLATE_ROWS, 0) | {"plate_reads": 5, "hotlist_hits": 2, "zone_charges": 1, "journeys": 2,
                                              "webhook_failures": 1, PICTURES: 10}  # none in the other tables
    assert erasure.rows_removed == removed
    for table in ("plate_reads", "hotlist_hits", "zone_charges"):
        assert warehouse.command(f"SELECT count() FROM {table} WHERE plate = {{p:String}}", parameters={"p": plate}) == 0
    assert warehouse.command("SELECT count() FROM plate_reads WHERE plate = 'KE3PME'") == 3
    assert warehouse.command("SELECT plate_pseudonym FROM journeys") == pseudonymise("KE3PME", KEY)
    assert warehouse.command("SELECT count() FROM webhook_failures") == 1
    pictures = sorted(p.name for p in (tmp_path / "snapshots").rglob("*.jpg"))
    assert pictures == sorted(f"{r.read_id}-{kind}.jpg" for r in other for kind in ("overview", "plate"))

    subject = pseudonymise(plate, KEY)
    audit = warehouse.query("SELECT actor, action, subject, reason, rows_removed FROM audit_log").result_rows
    assert audit == [("dpo@example", "erase_plate", subject, "request REF-1", removed)]
    assert plate not in json.dumps(audit[0][2:])

    entries = [r for r in replay(broker, topics.ERASURES) if r.key == subject.encode()]
    assert [orjson.loads(r.value)["erased_at_ms"] for r in entries] == [int(erasure.erased_at.timestamp() * 1000)]
    assert not [r for r in replay(broker, topics.ERASURES) if plate.encode() in r.key + (r.value or b"")]
    tombstones = [r for r in replay(broker, topics.PLATE_HISTORIES) if r.key == plate.encode()]
    assert tombstones and all(r.value is None for r in tombstones)
    assert {h.topic for h in erasure.held} >= {topics.PLATE_READS, topics.READS_BY_PLATE, topics.LATE_READS,
                                               topics.DEAD_LETTERS, topics.WEBHOOK_DEAD_LETTERS}


def test_erasure_removes_the_pictures_that_hits_and_charges_kept_after_their_reads_expired(warehouse, broker,
                                                                                         tmp_path):
    """The reads are gone (past their retention), their hit and charge still refer to the pictures:
    the erasure finds them through those rows; another plate's possible hit on the erased
    listed plate keeps its picture (it shows the other plate)."""
    migrate(warehouse, RetentionConfig())
    plate = f"EV{uuid.uuid4().hex[:6].upper()}"
    store = SnapshotStore((tmp_path / "snapshots").as_uri())
    charged, hit_only = [pictured(store, r) for r in reads("cam-v", 2, plate=plate)]
    near_miss = pictured(store, reads("cam-w", 1, plate="NE4RMS")[0])
    load(warehouse, "zone_charges", [charge("zone-a", plate, DAY).model_copy(update={"image_ref": charged.image_ref})])
    load(warehouse, "hotlist_hits", [hit(hit_only).model_copy(update={"image_ref": hit_only.image_ref}),
                                     hit(near_miss).model_copy(update={"listed_plate": plate, "match": "possible",
                                                                       "image_ref": near_miss.image_ref})])

    erasure = erase_plate(warehouse, plate, "request REF-2", "dpo@example", KEY, Reach(store, broker, embedded_broker=True))

    assert (erasure.rows_removed["zone_charges"], erasure.rows_removed["hotlist_hits"]) == (1, 2)
    assert erasure.rows_removed[PICTURES] == 4
    pictures = sorted(p.name for p in (tmp_path / "snapshots").rglob("*.jpg"))
    assert pictures == [f"{near_miss.read_id}-overview.jpg", f"{near_miss.read_id}-plate.jpg"]


def test_the_sink_leaves_out_rows_of_an_erased_plate_from_before_its_erasure(warehouse, broker):
    """Reads, hits, charges, journeys and webhook failures of the plate still in Kafka (the sink
    was behind) stay out; a new sighting after the erasure, and other plates, go in."""
    migrate(warehouse, RetentionConfig())
    plate, camera = f"SK{uuid.uuid4().hex[:6].upper()}", f"cam-{uuid.uuid4().hex[:8]}"
    erased_at = datetime.now(UTC)
    old, kept = reads(camera, 4, plate=plate), reads(camera, 2, plate="KE3PME")
    new = old[0].model_copy(update={"read_id": f"{camera}-new", "ts": erased_at + timedelta(seconds=1)})
    sink = Sink(warehouse, kafka.consumer(broker, f"test-{uuid.uuid4().hex}", TOPICS), kafka.producer(broker), 500,
                0.5, Follower(broker, BlockList(lambda: KEY)))
    past_the_backlog(sink)
    sent = kafka.producer(broker)
    for read in old + kept + [new]:
        sent.send(topics.PLATE_READS, key=read.plate.encode(), value=encode(read))
    sent.send(topics.HOTLIST_HITS, value=encode(hit(old[0])))
    sent.send(topics.ZONE_CHARGES, value=encode(charge("zone-s", plate, DAY)))
    sent.send(topics.JOURNEYS, value=encode(journey(old[0], old[1], KEY)))
    sent.send(topics.WEBHOOK_DEAD_LETTERS, value=encode(webhook_failure(hit(old[1]))))
    sent.flush()
    publish(broker, plate, pseudonymise(plate, KEY), erased_at)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not warehouse.command(
            "SELECT count() FROM plate_reads WHERE camera_id = {c:String}", parameters={"c": camera}) >= 3:
        sink.poll_once()
        sink.step(time.monotonic())
    sink.flush()
    sink.consumer.close(autocommit=False)
    stored = warehouse.query("SELECT read_id FROM plate_reads WHERE camera_id = {c:String} ORDER BY read_id",
                             parameters={"c": camera}).result_rows
    assert sorted(r for (r,) in stored) == sorted([kept[0].read_id, kept[1].read_id, new.read_id])
    for table, where in (("hotlist_hits", "plate = {p:String}"), ("zone_charges", "plate = {p:String}"),
                         ("journeys", "plate_pseudonym = {s:String}"),
                         ("webhook_failures", "position(payload, {p:String}) > 0")):
        count = warehouse.command(f"SELECT count() FROM {table} WHERE {where}",
                                  parameters={"p": plate, "s": pseudonymise(plate, KEY)})
        assert count == 0, table


def test_topics_an_erasure_cannot_reach_are_created_with_a_short_retention(tmp_path):
    """As the embedded broker on disk records them, where its object store enforces them."""
    with EmbeddedBroker(data_dir=tmp_path / "broker") as running:
        ensure_topics(GantryConfig(), running.bootstrap_servers)
        send = kafka.producer(running.bootstrap_servers)
        for topic in topics.ALL:  # a partition folder exists once it holds a batch
            send.send(topic, key=b"k", value=b"{}", partition=0)
        send.flush()
        send.close()
        kept = {folder.parent.parent.name: keep_s for keep_s, folder in kept_partitions(tmp_path / "broker")}
    assert kept == {name: kept_ms / 1000 for name, kept_ms in topics.RETENTION_MS.items()}
    assert topics.SHORT_LIVED < kept.keys() and kept[topics.FRAMES] == 86_400


def test_erasure_reaches_the_car_parks_decisions_stays_and_payments(warehouse, broker, tmp_path):
    """Rows of gate_decisions, parking_sessions and parking_payments go, and the plate's keys on
    the two compacted car-park topics are tombstoned, so an edge endpoint's copy loses them too."""
    migrate(warehouse, RetentionConfig())
    plate = f"EP{uuid.uuid4().hex[:6].upper()}"
    for who in (plate, "KE3PME"):
        load(warehouse, topics.GATE_DECISIONS, [
            GateDecision(decision_id=f"d-{who}-{n}", read_id=f"r-{who}-{n}", site_id="depot", camera_id="gate",
                         direction="entry", car_park_id="yard", ts=T0 + timedelta(minutes=n), plate=who,
                         decision="allow", reason="unknown_allowed") for n in range(2)])
        load(warehouse, topics.PARKING_SESSIONS, [
            ParkingSession(session_id=f"s-{who}", car_park_id="yard", plate=who, status="open", first_ts=T0,
                           entry_ts=T0, fee="0.00", currency="GBP", version=1)])
        load(warehouse, topics.PARKING_PAYMENTS, [
            ParkingPayment(payment_id=f"p-{who}", car_park_id="yard", plate=who, stay_entry_ts=T0,
                           paid_at=T0 + timedelta(hours=1), amount="2.00", currency="GBP")])

    erasure = erase_plate(warehouse, plate, "request REF-3", "dpo@example", KEY,
                          Reach(SnapshotStore((tmp_path / "snapshots").as_uri()), broker, embedded_broker=True,
                                car_parks=("yard",)))

    assert {t: erasure.rows_removed[t] for t in ("gate_decisions", "parking_sessions", "parking_payments")} == {
        "gate_decisions": 2, "parking_sessions": 1, "parking_payments": 1}
    for table in ("gate_decisions", "parking_sessions", "parking_payments"):
        assert warehouse.query(f"SELECT DISTINCT plate FROM {table}").result_rows == [("KE3PME",)]
    for topic in (topics.PARKING_SESSIONS, topics.PARKING_PAYMENTS):
        (tombstone,) = [r for r in replay(broker, topic) if r.key == f"yard:{plate}".encode()]
        assert tombstone.value is None
    assert {topics.GATE_DECISIONS, topics.PARKING_SESSIONS, topics.PARKING_PAYMENTS} <= {h.topic for h in erasure.held}
