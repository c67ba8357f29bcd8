"""Barrier decisions answered by `gantry ingest serve` in the request, against a real broker.

One server with a site: camera cam-1 is the car park's entry gate, cam-2 its exit. Every dialect
gets its decision (allow, deny, unknown, pay at exit), the decisions reach ``gate_decisions``
next to the reads, and with the broker stopped the decisions still come from the local copy of
the lists (events spooled), also after the endpoint restarts, from its copy on disk. A payment
on ``parking_payments`` opens the exit for the stay it paid.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml

from gantry import topics
from gantry.events import HotlistEntry, decode, encode
from gantry.kafka import producer
from gantry.site_events import GateDecision, ParkingPayment
from ingest.examples import access_query, gantry_json, hikvision_xml

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
ENTRY = {"X-Gantry-Token": "token-one"}  # cam-1
EXIT = {"X-Gantry-Token": "token-two"}  # cam-2
SITE = {
    "id": "depot",
    "gates": [{"camera": "cam-1", "direction": "entry", "car_park": "yard"},
              {"camera": "cam-2", "direction": "exit", "car_park": "yard"}],
    "lists": [{"list": "staff", "access": "allow"}, {"list": "permit", "access": "allow", "free_parking": True},
              {"list": "stolen", "access": "deny"}],
    "unknown_plates": "deny",
    "car_parks": [{"id": "yard", "capacity": 50,
                   "tariff": {"free_minutes": 20, "per_hour": "2.00", "daily_cap": "12.00"}}],
}
LISTS = [HotlistEntry(plate="STAFF1", list="staff", holder="emp-42"), HotlistEntry(plate="STAFF2", list="staff"),
         HotlistEntry(plate="PERM1", list="permit"),
         HotlistEntry(plate="BAD1", list="stolen", reason="stolen car")]


def with_site(server):
    path = server.tmp / "gantry.yaml"
    config = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(config | {"sites": [SITE]}))
    return server


def entry_json(server, plate: str, ts: datetime) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/plate", content=gantry_json(plate, ts, f"in-{plate}-{ts.timestamp()}"),
                      headers=ENTRY | {"Content-Type": "application/json"})


def exit_query(server, plate: str, ts: datetime) -> httpx.Response:
    return httpx.get(f"{server.url}/v1/plate", params=access_query(plate, entry=False, time=ts.isoformat()),
                     headers=EXIT)


def test_gate_decisions_while_the_car_waits_and_while_the_broker_is_down(own_broker, make_server, tmp_path,
                                                                         topic_records):
    send = producer(own_broker.bootstrap_servers)
    for entry in LISTS:
        send.send(topics.HOTLIST, key=entry.key.encode(), value=encode(entry))
    send.flush()
    send.close()
    server = with_site(make_server(own_broker.bootstrap_servers, tmp_path, ack_timeout_s=1.0))
    server.start()
    try:
        allowed = entry_json(server, "STAFF1", NOW - timedelta(hours=2))
        denied = httpx.post(f"{server.url}/isapi/anpr", content=hikvision_xml("BAD1", NOW, "evt-bad"),
                            headers=ENTRY | {"Content-Type": "application/xml"})
        unknown = httpx.get(f"{server.url}/v1/plate", params=access_query("NEW1", entry=True), headers=ENTRY)
        pay = exit_query(server, "STAFF1", NOW)
        free = [entry_json(server, "PERM1", NOW - timedelta(hours=5)), exit_query(server, "PERM1", NOW)]
        answers = [a.json() for a in (allowed, denied, unknown, pay, *free)]
        assert [a.status_code for a in (allowed, denied, unknown, pay, *free)] == [200] * 6, answers
        assert {k: answers[0][k] for k in ("decision", "reason", "list", "holder", "valid")} == {
            "decision": "allow", "reason": "listed", "list": "staff", "holder": "emp-42", "valid": True}
        assert (answers[1]["decision"], answers[1]["reason"], answers[1]["list"]) == ("deny", "deny_list", "stolen")
        assert "valid" not in answers[1]  # only the access-query form says valid
        assert (answers[2]["decision"], answers[2]["reason"], answers[2]["valid"]) == ("deny", "unknown_denied", False)
        assert {k: answers[3][k] for k in ("decision", "reason", "amount", "currency", "valid")} == {
            "decision": "pay", "reason": "fee_due", "amount": "4.00", "currency": "GBP", "valid": False}
        assert (answers[5]["decision"], answers[5]["amount"], answers[5]["list"]) == ("allow", "0.00", "permit")

        recorded = [decode(GateDecision, r.value)
                    for plate in ("STAFF1", "BAD1", "NEW1")
                    for r in topic_records(own_broker.bootstrap_servers, topics.GATE_DECISIONS, plate.encode(),
                                           expected=2 if plate == "STAFF1" else 1)]
        assert [(d.plate, d.direction, d.decision, d.read_id) for d in recorded] == [
            ("STAFF1", "entry", "allow", answers[0]["read_id"]), ("STAFF1", "exit", "pay", answers[3]["read_id"]),
            ("BAD1", "entry", "deny", answers[1]["read_id"]), ("NEW1", "entry", "deny", answers[2]["read_id"])]
        assert len(topic_records(own_broker.bootstrap_servers, topics.PLATE_READS, b"BAD1", expected=1)) == 1

        # Paid at the pay station: the payment reaches the endpoint's copy and the exit opens.
        entered = NOW - timedelta(minutes=90)
        assert entry_json(server, "STAFF2", entered).json()["decision"] == "allow"
        assert exit_query(server, "STAFF2", NOW).json()["amount"] == "4.00"
        paid = ParkingPayment(payment_id="pay-1", car_park_id="yard", plate="STAFF2", stay_entry_ts=entered,
                              paid_at=NOW, amount="4.00", currency="GBP")
        send = producer(own_broker.bootstrap_servers)
        send.send(topics.PARKING_PAYMENTS, key=paid.key.encode(), value=encode(paid)).get(timeout=10)
        send.close()
        deadline = time.monotonic() + 10
        while (leaving := exit_query(server, "STAFF2", NOW + timedelta(minutes=2)).json())["decision"] != "allow":
            assert time.monotonic() < deadline, leaving
            time.sleep(0.2)
        assert (leaving["reason"], leaving["amount"], leaving["valid"]) == ("paid", "0.00", True)

        own_broker.stop()
        during = [entry_json(server, "STAFF1", NOW - timedelta(minutes=70)),
                  exit_query(server, "BAD1", NOW)]
        assert [a.status_code for a in during] == [202, 202]
        assert [(a.json()["status"], a.json()["decision"]) for a in during] == [("spooled", "allow"), ("spooled", "deny")]
        server.stop()
        server.start()  # the broker still down: the lists and who is inside come from the copy on disk
        after = [exit_query(server, "STAFF1", NOW + timedelta(minutes=1)), entry_json(server, "BAD1", NOW),
                 entry_json(server, "NEW2", NOW)]
        assert [(a.status_code, a.json()["decision"], a.json()["reason"]) for a in after] == [
            (202, "pay", "fee_due"), (202, "deny", "deny_list"), (202, "deny", "unknown_denied")]
        assert after[0].json()["amount"] == "4.00"  # 71 minutes since it entered during the outage
        spooled = sorted(p.name for p in (tmp_path / "ingest-spool").glob("*.event"))
        assert len(spooled) == 10  # five reads and their five decisions

        own_broker.start()
        replayed = topic_records(own_broker.bootstrap_servers, topics.GATE_DECISIONS, b"STAFF1", expected=2)
        assert [decode(GateDecision, r.value).read_id for r in replayed] == [during[0].json()["read_id"],
                                                                              after[0].json()["read_id"]]
    finally:
        server.stop()
