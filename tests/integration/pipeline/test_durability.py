"""The embedded stack keeps its data: any one process killed mid-stream (``kill -9``), every
process killed at once (a power cut), or the whole stack stopped and started again, and after
``gantry up`` the warehouse still ends with exactly the simulator's hits, journeys and charges,
each once, every acknowledged read once, and the hotlist still lists every entry ever published.

The module shares one stack; each test streams its own simulated day, later than the last one's.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
WORKERS = 2  # so that killing one worker hands its partitions, and their state, to the other
WAIT_S = 180
DEATH_S = 10
HOTLIST_SETTLE_S = 3


def weekdays() -> Iterator[int]:
    """Days after MONDAY_MORNING that charge (the zone charges nothing on weekend mornings)."""
    return (day for day in itertools.count() if (MONDAY_MORNING + timedelta(days=day)).weekday() < 5)


@dataclass
class Durable:
    """The module's stack, and what its tests have done to it so far."""

    config: GantryConfig
    config_file: Path
    days: Iterator[int] = field(default_factory=weekdays)
    published: set[tuple[str, str]] = field(default_factory=set)  # every hotlist entry: none may go


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
def durable_stack(tmp_path_factory) -> Iterator[Durable]:
    root = tmp_path_factory.mktemp("durable")
    config_file = root / "gantry.yaml"
    config_file.write_text(yaml.safe_dump(city(CAMERAS) | {
        "data_dir": str(root / "data"),
        "ingest": {"http_port": free_port()},
        "api": {"port": free_port()},
        "warehouse": {"batch_seconds": 0.5},
        "stream_jobs": {"workers": WORKERS},
    }))
    config = load_config(config_file)
    assert config.broker.storage == "disk"  # the default under test
    with configured(config_file):
        stack.up(config)
    yield Durable(config, config_file)
    stack.down(config)


@pytest.fixture
def durable(durable_stack) -> Durable:
    """The module's stack, whole again whatever an earlier test (one that failed) left behind."""
    if not all(map(stack.running, read_stack(durable_stack.config)["processes"].values())):
        with configured(durable_stack.config_file):
            stack.up(durable_stack.config)
    return durable_stack


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


def assert_exactly_once(durable: Durable, sim: Simulation) -> None:
    config = durable.config
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
    assert durable.published <= listed


def run(durable: Durable, interruption: Callable[[], None]) -> None:
    """A simulated day (each test its own, later than the last: the stack's watermarks stay where
    the last test left them, and reads from before them are late) streamed in two halves around
    ``interruption``, then ``gantry up``."""
    day = next(durable.days)
    config = durable.config
    sim = simulate(cameras=CAMERAS, vehicles=80, hours=3, seed=20 + day, hotlisted_share=0.1,
                   start=MONDAY_MORNING + timedelta(days=day))
    store.publish(read_stack(config)["broker"], sim.hotlist)
    durable.published |= {(e.plate, e.list) for e in sim.hotlist}
    # A new entry screens the reads handled after each worker's feed has it (a poll, ~50 ms, longer
    # on a busy machine); the day's first reads, sent at once, could otherwise go unscreened.
    time.sleep(HOTLIST_SETTLE_S)
    half = len(sim.reads) // 2
    send(config, sim.reads[:half])
    time.sleep(2)  # mid-stream: the jobs and the sink are working on the first half
    interruption()
    with configured(durable.config_file):
        stack.up(config)
    send(config, sim.reads[half:])
    assert_exactly_once(durable, sim)


def kill(config: GantryConfig, names: list[str], *, groups: bool = False) -> None:
    """SIGKILL the named processes, or with ``groups`` everything in their process groups (the
    Ray processes under the recognizer too), and wait until the stack sees each one dead."""
    processes = read_stack(config)["processes"]
    for name in names:
        (os.killpg if groups else os.kill)(processes[name]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + DEATH_S
    while alive := [name for name in names if stack.running(processes[name])]:
        assert time.monotonic() < deadline, f"{alive} still alive {DEATH_S} s after SIGKILL"
        time.sleep(0.2)


def assert_restarted_in_place(config: GantryConfig, before: dict[str, dict], killed: set[str]) -> None:
    """Each killed process runs again with its old command and ports, so that the survivors and
    every client find it where it was; the survivors were left alone."""
    after = read_stack(config)["processes"]
    assert after.keys() == before.keys()
    for name, was in before.items():
        now = after[name]
        assert (now["cmd"], now["port"], now["health"]) == (was["cmd"], was["port"], was["health"]), name
        assert ((now["pid"], now["started"]) != (was["pid"], was["started"])) == (name in killed), name
    deadline = time.monotonic() + WAIT_S  # a worker answers ready once the group has settled
    while unhealthy := [n for n, p in stack.status(config).processes.items() if not p["healthy"]]:
        assert time.monotonic() < deadline, f"not healthy after gantry up: {unhealthy}"
        time.sleep(1)


@pytest.mark.parametrize("victim", ["broker", "broker-store", "warehouse", "jobs-0", "sink"])
def test_any_one_process_killed_mid_stream_loses_nothing_and_duplicates_nothing(durable, victim):
    config = durable.config
    before = read_stack(config)["processes"]
    run(durable, lambda: kill(config, [victim]))
    assert_restarted_in_place(config, before, {victim})


def test_down_and_up_mid_stream_loses_nothing_and_duplicates_nothing(durable):
    config = durable.config
    run(durable, lambda: stack.down(config))
    assert not stack.status(config).warnings


def test_a_power_cut_mid_stream_loses_nothing_and_duplicates_nothing(durable):
    config = durable.config
    before = read_stack(config)["processes"]
    run(durable, lambda: kill(config, list(before), groups=True))
    assert_restarted_in_place(config, before, set(before))
    assert not stack.status(config).warnings
