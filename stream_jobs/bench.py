"""``gantry bench jobs``: sustained throughput of all three jobs and read -> hit latency.

Everything runs on a private broker started for the run, with the simulator's city, so the
figures are repeatable and the run knows exactly how many hits, journeys and charges to wait for.

Two modes:

- ``--rate R`` (R > 0): the workers are up first and the reads are offered at R per second, as
  cameras would send them, in record batches of what fell due (see :func:`_send`); this is the
  latency measurement (read acknowledged by the broker -> hit arrived).
- ``--rate 0``: sustained throughput. A Python producer sending read by read on the same two
  cores cannot offer reads as fast as the workers take them, so once every worker holds its
  partitions the whole backlog is appended in record batches (well under a second), and
  throughput is reads divided by the time from the first output to the last expected one: how
  fast the workers drain a backlog, the way a consumer's capacity is measured. Loading the
  backlog before the workers start would time their start-up instead: a group member's first
  join takes seconds on the embedded broker, and one worker would drain alone meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tqdm import tqdm

from gantry import topics
from gantry.broker import BenchStorage, EmbeddedBroker, bench_broker, free_port
from gantry.config import load_config
from gantry.events import HotlistEntry, encode
from gantry.kafka import ensure_topics
from gantry.processes import wait_healthy
from stream_jobs.hotlist import store
from stream_jobs.runtime.outbox import RECORD_BATCH_BYTES, Outbox
from stream_jobs.simulator import simulate

READS_PER_VEHICLE = 3.6  # what the 8-camera city gives on average, to size the simulation
SEND_EVERY_S = 0.005  # how long the offered reads linger in the producer (gantry.kafka's default)


class Outputs(threading.Thread):
    """Watches the output topics: distinct ids seen, when the first and the last new one came, hit arrival times.

    It shares the two cores with what it measures, so it reads with aiokafka (records parsed in C)
    and picks each id out of the JSON instead of decoding every message.
    """

    IDS = {topics.HOTLIST_HITS: re.compile(rb'"hit_id":"([^"]+)"'), topics.JOURNEYS: re.compile(rb'"journey_id":"([^"]+)"'),
           topics.ZONE_CHARGES: re.compile(rb'"charge_id":"([^"]+)"')}
    READ_ID = re.compile(rb'"read_id":"([^"]+)"')

    def __init__(self, bootstrap: str, fetch_max_wait_ms: int) -> None:
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        # The broker holds a fetch of a quiet partition for the whole wait: timing latency, a
        # long wait would show up as latency the jobs never added; timing a backlog, a short wait
        # would only cost the cores the workers are measured on.
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.seen: dict[str, set[bytes]] = {t: set() for t in self.IDS}
        self.hit_arrivals: dict[str, float] = {}
        self.first_new = 0.0  # when the first and the last new output id arrived
        self.last_new = 0.0
        self.stopping = False

    def run(self) -> None:
        asyncio.run(self._watch())

    async def _watch(self) -> None:
        consumer = AIOKafkaConsumer(*self.IDS, bootstrap_servers=self.bootstrap, group_id=None,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=self.fetch_max_wait_ms)
        await consumer.start()
        try:
            while not self.stopping:
                for tp, records in (await consumer.getmany(timeout_ms=100)).items():
                    now = time.monotonic()
                    ids, seen = self.IDS[tp.topic], self.seen[tp.topic]
                    for r in records:
                        output_id = ids.search(r.value).group(1)
                        if output_id not in seen:
                            seen.add(output_id)
                            self.first_new = self.first_new or now
                            self.last_new = now
                        if tp.topic == topics.HOTLIST_HITS:
                            self.hit_arrivals.setdefault(self.READ_ID.search(r.value).group(1).decode(), now)
        finally:
            await consumer.stop()


class Subscriber(ThreadingHTTPServer):
    """A local webhook subscriber noting when each hit's request arrived."""

    def __init__(self) -> None:
        arrivals: dict[str, float] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                arrivals.setdefault(json.loads(body)["read_id"], time.monotonic())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        super().__init__(("127.0.0.1", 0), Handler)
        self.arrivals = arrivals
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Listener(Protocol):
    """Something else that hears of hits (the API's live stream, say), timed like the webhook."""

    arrivals: dict[str, float]  # read_id -> when its first hit arrived (time.monotonic)

    def close(self) -> None: ...


def run_bench(reads: int, rate: float, workers: int, hotlist_size: int, webhook: bool = False,
              progress: bool = True, partitions: int = 4, storage: BenchStorage = BenchStorage.disk,
              listeners: Mapping[str, Callable[[str], Listener]] | None = None) -> dict:
    """``listeners``: name -> a factory given the broker's address, returning a listener ready
    for hits; each gets ``<name>_latency_p50_ms`` and ``_p99_ms`` (with ``rate`` > 0)."""
    sim = simulate(cameras=8, vehicles=max(1, int(reads / READS_PER_VEHICLE)), hours=3, seed=1)
    expected = sim.expected
    subscriber = Subscriber() if webhook else None
    with tempfile.TemporaryDirectory() as tmp, bench_broker(storage, Path(tmp)) as broker:
        bootstrap = broker.bootstrap_servers
        config = Path(tmp) / "gantry.yaml"
        hotlist = {"subscribers": [{"id": "bench", "url": f"http://127.0.0.1:{subscriber.server_port}/",
                                    "secret_env": "GANTRY_BENCH_WEBHOOK_SECRET"}]} if subscriber else {}
        config.write_text(yaml.safe_dump(sim.city | {
            "data_dir": tmp, "broker": {"bootstrap_servers": bootstrap, "partitions": partitions},
            "warehouse": {"dsn": f"chdb:///{tmp}/warehouse"}, "hotlist": hotlist,
        }))
        ensure_topics(load_config(config), bootstrap)
        padding = (HotlistEntry(plate=f"PAD{n:07d}", list="bench") for n in range(max(0, hotlist_size - len(sim.hotlist))))
        store.publish(bootstrap, [*sim.hotlist, *padding])
        timed = {h[0] for h in expected.hits}
        broker_cpu_before = _broker_cpu_seconds(broker)
        backlog = [(read.plate.encode(), encode(read)) for read in sim.reads] if not rate else None
        procs = [_start_worker(config, i) for i in range(workers)]
        heard: dict[str, Listener] = {}
        try:
            outputs = Outputs(bootstrap, fetch_max_wait_ms=200 if backlog else 10)
            outputs.start()
            for proc, port in procs:
                wait_healthy(proc, port, timeout_s=90, what="bench worker")
            heard.update({name: make(bootstrap) for name, make in (listeners or {}).items()})
            sent = _load(bootstrap, backlog) if backlog else _send(bootstrap, sim.reads, rate, timed, progress)
            wanted = {topics.HOTLIST_HITS: len(expected.hits), topics.JOURNEYS: len(expected.journeys),
                      topics.ZONE_CHARGES: len(expected.charges)}
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and (
                any(len(outputs.seen[t]) < n for t, n in wanted.items())
                or (subscriber and len(subscriber.arrivals) < len(sent.at))
                or any(len(listener.arrivals) < len(sent.at) for listener in heard.values())
            ):
                time.sleep(0.2)
            outputs.stopping = True
            outputs.join(5)
            worker_cpu_s = sum(_cpu_seconds(proc.pid) for proc, _ in procs)
            broker_cpu_s = _broker_cpu_seconds(broker) - broker_cpu_before
        finally:
            for listener in heard.values():
                listener.close()
            for proc, _ in procs:
                proc.terminate()
            for proc, _ in procs:
                proc.wait(30)
    elapsed = outputs.last_new - (outputs.first_new if backlog else sent.started)
    latencies = {} if backlog else {
        **_percentiles("hit_latency", sent.at, outputs.hit_arrivals),
        **(_percentiles("webhook_latency", sent.at, subscriber.arrivals) if subscriber else {}),
        **{k: v for name, listener in heard.items() for k, v in _percentiles(f"{name}_latency", sent.at,
                                                                            listener.arrivals).items()},
        **{f"{name}_hits": f"{len(listener.arrivals)}/{len(sent.at)}" for name, listener in heard.items()},
    }
    return {
        "reads": len(sim.reads),
        "workers": workers,
        "storage": str(storage),
        "partitions": partitions,
        "hotlist_entries": max(hotlist_size, len(sim.hotlist)),
        "offered_reads_per_s": rate or "backlog",
        "sent_reads_per_s": round(len(sim.reads) / sent.duration, 1),
        "sustained_reads_per_s": round(len(sim.reads) / elapsed, 1),
        "complete": all(len(outputs.seen[t]) >= n for t, n in wanted.items()),
        "outputs": {t: f"{len(outputs.seen[t])}/{n}" for t, n in wanted.items()},
        # CPU the workers used per read, start-up included: steadier than reads/s on a shared machine
        "worker_cpu_us_per_read": round(worker_cpu_s / len(sim.reads) * 1e6, 1),
        # the object store's CPU included on disk; loading the reads included
        "broker_cpu_us_per_read": round(broker_cpu_s / len(sim.reads) * 1e6, 1),
        **latencies,
    }


def _broker_cpu_seconds(broker: EmbeddedBroker) -> float:
    return sum(_cpu_seconds(p.pid) for p in (broker.process, broker.store) if p is not None)


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a running process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentiles(name: str, sent_at: dict[str, float], arrived_at: dict[str, float]) -> dict:
    """p50 and p99 in ms from a read being sent to its output arriving."""
    latencies = sorted((arrived_at[r] - t) * 1000 for r, t in sent_at.items() if r in arrived_at)
    if not latencies:
        return {f"{name}_p50_ms": None, f"{name}_p99_ms": None}
    return {
        f"{name}_p50_ms": round(statistics.median(latencies), 1),
        f"{name}_p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 1),
    }


def _start_worker(config: Path, index: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = os.environ | {"GANTRY_CONFIG": str(config), "GANTRY_BENCH_WEBHOOK_SECRET": "bench",
                        "GANTRY_PSEUDONYM_KEY": os.environ.get("GANTRY_PSEUDONYM_KEY", "bench")}
    code = ("import sys; from gantry.config import load_config; from stream_jobs.worker import run_worker; "
            "run_worker(load_config(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(config), str(index), str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


@dataclass
class Sent:
    started: float
    duration: float = 0.0
    at: dict[str, float] = field(default_factory=dict)  # send time of each read expected to hit


@asynccontextmanager
async def _outbox(bootstrap: str) -> AsyncIterator[Outbox]:
    """The jobs' own :class:`Outbox` on a started producer: reads go out in whole record
    batches, partitioned by key like every producer's."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, max_batch_size=RECORD_BATCH_BYTES)
    await producer.start()
    try:
        yield Outbox(producer)
    finally:
        await producer.stop()


def _load(bootstrap: str, backlog: list[tuple[bytes, bytes]]) -> Sent:
    """Append the (key, value) reads to ``plate_reads`` as fast as the broker takes them."""

    async def load() -> None:
        async with _outbox(bootstrap) as outbox:
            for key, value in backlog:
                await outbox.put(topics.PLATE_READS, value, key=key)
            await outbox.send()

    sent = Sent(started=time.monotonic())
    asyncio.run(load())
    sent.duration = time.monotonic() - sent.started
    return sent


def _send(bootstrap: str, reads: list, rate: float, timed: set[str], progress: bool) -> Sent:
    """Offer the reads at ``rate`` per second: every few milliseconds, those then due go out in
    record batches, as from a producer that lingers that long (the cameras' and recognisers'
    producers do). The reads are encoded beforehand, as their own processes would: the load
    generator shares the two cores with the workers it measures."""
    encoded = [(read.read_id, read.plate.encode(), encode(read)) for read in reads]
    sent = Sent(started=0.0)

    async def acknowledged(delivery: Awaitable[None], read_ids: list[str]) -> None:
        await delivery
        now = time.monotonic()
        sent.at.update((read_id, now) for read_id in read_ids)

    async def send() -> None:
        async with _outbox(bootstrap) as outbox:
            done, waiting = 0, []
            delivery: asyncio.Future | None = None
            sent.started = time.monotonic()
            with tqdm(total=len(encoded), desc="reads", disable=not progress, unit="read") as bar:
                while done < len(encoded):
                    due = min(len(encoded), int((time.monotonic() - sent.started) * rate) + 1)
                    for read_id, key, value in encoded[done:due]:
                        await outbox.put(topics.PLATE_READS, value, key=key)
                        if read_id in timed:
                            waiting.append(read_id)
                    bar.update(due - done)
                    done = due
                    # One delivery at a time, like a producer's batch per partition in flight:
                    # what falls due meanwhile goes out together once the broker has answered.
                    if delivery is None or delivery.done():
                        delivery = asyncio.ensure_future(acknowledged(outbox.send(), waiting))
                        waiting = []
                    await asyncio.sleep(SEND_EVERY_S)
            if delivery is not None:
                await delivery
            await acknowledged(outbox.send(), waiting)  # what fell due during the last delivery

    asyncio.run(send())
    sent.duration = time.monotonic() - sent.started
    return sent
