"""The embedded stack keeps its data: the broker killed mid-stream, or the whole stack stopped and
started again, and the warehouse still ends with exactly the simulator's hits, journeys and
charges, each once, and the hotlist still lists every entry."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import clickhouse_connect
import pytest
import yaml

from gantry import stack, topics
from gantry.broker import free_port
from gantry.config import GantryConfig, load_config
from gantry.events import encode
from gantry.kafka import delivered, producer
from gantry.runtime import endpoints, read_stack
from stream_jobs.hotlist import store
from stream_jobs.simulator import MONDAY_MORNING, Simulation, city, simulate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CAMERAS = 4
WAIT_S = 180


@contextmanager
def configured(config_file: Path) -> Iterator[None]:
    """The stack's processes read the same file through $GANTRY_CONFIG."""
    previous = os.environ.get("GANTRY_CONFIG")
    os.environ["GANTRY_CONFIG"] = str(config_file)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("GANTRY_CONFIG")
        else:
            os.environ["GANTRY_CONFIG"] = previous


@pytest.fixture(scope="module")
def durable_stack(tmp_path_factory) -> Iterator[tuple[GantryConfig, Path]]:
    root = tmp_path_factory.mktemp("durable")
    config_file = root / "gantry.yaml"
    config_file.write_text(yaml.safe_dump(city(CAMERAS) | {
        "data_dir": str(root / "data"),
        "ingest": {"http_port": free_port()},
        "warehouse": {"batch_seconds": 0.5},
    }))
    config = load_config(config_file)
    assert config.broker.storage == "disk"  # the default under test
    with configured(config_file):
        stack.up(config)
    yield config, config_file
    stack.down(config)


def send(config: GantryConfig, reads) -> None:
    """Reads sent as an importer does, each acknowledged by the broker before it counts as sent."""
    sender = producer(read_stack(config)["broker"])
    try:
        futures = [sender.send(topics.PLATE_READS, key=r.plate.encode(), value=encode(r)) for r in reads]
        sender.flush()
        assert delivered(sender, futures)
    finally:
        sender.close()


def warehouse(config: GantryConfig):
    return clickhouse_connect.get_client(dsn=endpoints(config).warehouse_dsn, database=config.warehouse.database)


def outputs(client, sim: Simulation) -> dict[str, list]:
    """What the warehouse holds for this simulation, as the billing and alert users read it (FINAL),
    as sorted lists: a hit, journey or charge made twice under two ids shows up twice."""
    read_ids = [r.read_id for r in sim.reads]
    rows = lambda sql: sorted(tuple(r) for r in client.query(sql, parameters={"ids": read_ids}).result_rows)  # noqa: E731
    return {
        "hits": rows("SELECT read_id, listed_plate, list, match FROM hotlist_hits FINAL WHERE read_id IN %(ids)s"),
        "journeys": rows("SELECT segment_id, from_read_id, to_read_id, travel_s FROM journeys FINAL "
                         "WHERE from_read_id IN %(ids)s AND NOT withdrawn"),
        "charges": rows("SELECT zone_id, plate, toString(charge_date), first_read_id, read_count, toDecimalString(amount, 2) "
                        "FROM zone_charges FINAL WHERE first_read_id IN %(ids)s"),
    }


def expected(sim: Simulation) -> dict[str, list]:
    return {
        "hits": sorted(sim.expected.hits),
        "journeys": sorted(sim.expected.journeys),
        "charges": sorted((*key, *value) for key, value in sim.expected.charges.items()),
    }


def assert_exactly_once(config: GantryConfig, sim: Simulation) -> None:
    client = warehouse(config)
    want = expected(sim)
    assert all(want.values()), "the simulation must produce hits, journeys and charges"
    deadline = time.monotonic() + WAIT_S
    while (got := outputs(client, sim)) != want and time.monotonic() < deadline:
        time.sleep(1)
    assert got == want
    counted = client.query(
        "SELECT count(), uniqExact(read_id) FROM plate_reads FINAL WHERE read_id IN %(ids)s",
        parameters={"ids": [r.read_id for r in sim.reads]},
    ).result_rows[0]
    assert tuple(counted) == (len(sim.reads), len(sim.reads))
    listed = {(e.plate, e.list) for e in store.current(read_stack(config)["broker"])}
    assert {(e.plate, e.list) for e in sim.hotlist} <= listed


def run(config: GantryConfig, config_file: Path, day: int, interruption) -> None:
    """A simulated day (each test its own: the stack's watermarks stay where the last test left
    them, and reads from before them are late) streamed in two halves around ``interruption``."""
    start = MONDAY_MORNING + timedelta(days=day)
    sim = simulate(cameras=CAMERAS, vehicles=80, hours=3, seed=20 + day, hotlisted_share=0.1, start=start)
    store.publish(read_stack(config)["broker"], sim.hotlist)
    half = len(sim.reads) // 2
    send(config, sim.reads[:half])
    time.sleep(2)  # mid-stream: the jobs and the sink are working on the first half
    interruption()
    with configured(config_file):
        stack.up(config)
    send(config, sim.reads[half:])
    assert_exactly_once(config, sim)


def test_a_broker_killed_mid_stream_loses_nothing_and_duplicates_nothing(durable_stack):
    config, config_file = durable_stack
    broker = read_stack(config)["processes"]["broker"]

    def kill_broker() -> None:
        os.kill(broker["pid"], signal.SIGKILL)
        time.sleep(1)
        assert not stack.status(config).processes["broker"]["alive"]

    run(config, config_file, day=0, interruption=kill_broker)
    assert read_stack(config)["processes"]["broker"]["port"] == broker["port"]  # clients kept their address


def test_down_and_up_mid_stream_loses_nothing_and_duplicates_nothing(durable_stack):
    config, config_file = durable_stack
    run(config, config_file, day=1, interruption=lambda: stack.down(config))
    assert not stack.status(config).warnings
