"""A car's whole visit to a car park, through the processes `gantry up` runs for it.

`gantry ingest serve` answers the gate cameras, `gantry jobs worker` pairs the passages into a
stay, `gantry parking pay` records the payment and the warehouse sink stores the decisions, the stay
and the payment: entry, told to pay at the exit, paid, let out, and the stay in
``parking_sessions`` at the fee that was paid, the payment in ``parking_payments``. Its own
broker and processes, so it needs none of the stack's fixtures.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from gantry import kafka, stack
from gantry.broker import EmbeddedBroker, free_port
from gantry.cli import app
from gantry.config import GantryConfig, RetentionConfig
from gantry.kafka import ensure_topics
from gantry.processes import stop, wait_healthy
from ingest.examples import gantry_json
from warehouse.client import connect
from warehouse.migrations import migrate
from warehouse.sink import TOPICS, Sink

pytestmark = pytest.mark.integration

TOKENS = {"gate-in": "token-in", "gate-out": "token-out"}
SITE = {
    "id": "depot",
    "unknown_plates": "allow",
    "gates": [{"camera": "gate-in", "direction": "entry", "car_park": "yard"},
              {"camera": "gate-out", "direction": "exit", "car_park": "yard"}],
    "car_parks": [{"id": "yard", "capacity": 10, "timezone": "UTC",
                   "tariff": {"free_minutes": 20, "per_hour": "2.00", "daily_cap": "12.00", "exit_grace_minutes": 15}}],
}
PLATE = "PK17FLW"


@pytest.fixture
def car_park(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    """A private broker, then the endpoint and a worker on one configuration: (config file,
    broker address, endpoint URL)."""
    with EmbeddedBroker() as broker:
        port = free_port()
        config_file = tmp_path / "gantry.yaml"
        config_file.write_text(yaml.safe_dump({
            "data_dir": str(tmp_path / "data"),
            "broker": {"bootstrap_servers": broker.bootstrap_servers, "partitions": 1},
            "warehouse": {"dsn": f"chdb://{tmp_path}/unused"},
            "cameras": [{"id": c, "lat": 51.5, "lon": -0.1} for c in TOKENS],
            "ingest": {"http_host": "127.0.0.1", "http_port": port},
            "sites": [SITE],
        }))
        ensure_topics(GantryConfig(broker={"partitions": 1}), broker.bootstrap_servers)
        env = {"GANTRY_CONFIG": str(config_file), "GANTRY_PSEUDONYM_KEY": "test-key",
               "GANTRY_INGEST_TOKENS": ",".join(f"{c}={t}" for c, t in TOKENS.items())}
        processes = []
        try:
            for name, args in (("worker", ("jobs", "worker")), ("ingest", ("ingest", "serve"))):
                health = free_port()
                log = (tmp_path / f"{name}.log").open("wb")
                processes.append(subprocess.Popen(stack.gantry_command(*args, "--health-port", str(health)),
                                                  env=os.environ | env, stdout=log, stderr=subprocess.STDOUT))
                wait_healthy(processes[-1], health, timeout_s=60, what=f"{name} (see {log.name})")
            yield config_file, broker.bootstrap_servers, f"http://127.0.0.1:{port}/v1/plate"
        finally:
            for process in processes:
                stop(process)


@pytest.fixture
def sink(car_park, chdb_dsn: str) -> Iterator:
    """The warehouse sink on the car park's broker, in a thread, into a fresh database."""
    client = connect(chdb_dsn, f"test_{uuid.uuid4().hex[:12]}")
    migrate(client, RetentionConfig())
    bootstrap = car_park[1]
    running = Sink(client, kafka.consumer(bootstrap, f"test-{uuid.uuid4().hex}", TOPICS), kafka.producer(bootstrap),
                   batch_rows=500, batch_seconds=0.3)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    yield client
    running.stop.set()
    thread.join(30)
    client.command(f"DROP DATABASE IF EXISTS `{client.database}`", use_database=False)


def read(url: str, camera: str, ts: datetime) -> dict:
    answer = httpx.post(url, content=gantry_json(PLATE, ts, f"{camera}-{ts.timestamp()}"),
                        headers={"X-Gantry-Token": TOKENS[camera], "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def until(what: str, check, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s: {what}"
        time.sleep(0.2)
    return found


def test_entry_pay_at_the_exit_and_leave_reach_the_warehouse_at_the_fee_paid(car_park, sink):
    config_file, _, url = car_park
    now = datetime.now(UTC).replace(microsecond=0)
    entered = read(url, "gate-in", now - timedelta(minutes=90))
    assert (entered["decision"], entered["reason"]) == ("allow", "unknown_allowed")

    def stay_row():
        rows = sink.query("SELECT status, fee, entry_read_id, exit_read_id FROM parking_sessions FINAL "
                          "WHERE plate = {p:String} AND NOT withdrawn", parameters={"p": PLATE}).result_rows
        return rows[0] if rows else None

    # The worker paired the entry: the stay is open (its fee is 0 until the car leaves).
    assert until("the open stay in the warehouse", stay_row) == ("open", Decimal("0.00"), entered["read_id"], None)
    told = read(url, "gate-out", now)
    assert (told["decision"], told["reason"], told["amount"], told["currency"]) == ("pay", "fee_due", "4.00", "GBP")

    paid = CliRunner().invoke(app, ["--config", str(config_file), "parking", "pay", "--car-park", "yard",
                                    "--plate", PLATE])
    assert paid.exit_code == 0 and "4.00 GBP paid" in paid.output, paid.output

    # The endpoint follows parking_payments: the exit opens for the paid stay, nothing more due.
    left = until("the exit opening once paid", lambda: (a := read(url, "gate-out", datetime.now(UTC)))["decision"]
                 == "allow" and a)
    assert (left["reason"], left["amount"]) == ("paid", "0.00")

    closed = until("the closed stay in the warehouse", lambda: (row := stay_row()) and row[0] == "closed" and row)
    assert closed == ("closed", Decimal("4.00"), entered["read_id"], left["read_id"])
    decisions = sink.query("SELECT direction, decision, paid_at IS NOT NULL FROM gate_decisions FINAL "
                           "WHERE plate = {p:String} ORDER BY ts", parameters={"p": PLATE}).result_rows
    assert decisions[0] == ("entry", "allow", False) and decisions[-1] == ("exit", "allow", True)
    assert ("exit", "pay", False) in decisions
    # The money taken is in the warehouse too, for the stay it paid, and matches the stay's fee.
    taken = until("the payment in the warehouse", lambda: sink.query(
        "SELECT amount, stay_paid, stay_entry_ts FROM parking_payments WHERE plate = {p:String}",
        parameters={"p": PLATE}).result_rows)
    assert [(amount, total) for amount, total, _ in taken] == [(Decimal("4.00"), Decimal("4.00"))]
