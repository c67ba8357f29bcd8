"""``gantry bench gate``: how many barrier decisions the edge endpoint answers, and how fast.

The endpoint runs as its own process against a private broker, with a site of one car park
(an entry and an exit gate) and a hotlist of ``lists`` entries, as ``gantry up`` would run it;
the load comes from this process over keep-alive connections to ``POST /v1/plate``. Each answer
includes the decision, so the figures cover parsing, the token check, the decision from the
local lists and the broker's acknowledgement of both the read and the decision. Requests mix
listed entries, unknown plates, deny-listed plates and exits that owe a fee. Two runs: as fast
as possible (decisions/s), then a fixed rate (latency percentiles; the target is p99 < 50 ms
at 200 requests/s).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from gantry.broker import BenchStorage, bench_broker, free_port
from gantry.config import GantryConfig
from gantry.events import HotlistEntry
from gantry.kafka import ensure_topics
from ingest.bench import EndpointProcess, HttpFigures, load_figures, post_all, token_of
from ingest.examples import gantry_json
from stream_jobs.hotlist.store import publish

ENTRY, EXIT = "bench-gate-in", "bench-gate-out"
SITE = {
    "id": "bench-site",
    "gates": [{"camera": ENTRY, "direction": "entry", "car_park": "bench-park"},
              {"camera": EXIT, "direction": "exit", "car_park": "bench-park"}],
    "lists": [{"list": "staff", "access": "allow", "hours": {d: [{"start": "00:00", "end": "00:00"}]
                                                             for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}},
              {"list": "permit", "access": "allow", "free_parking": True}, {"list": "stolen", "access": "deny"}],
    "fuzzy_match": True,
    "car_parks": [{"id": "bench-park", "capacity": 100_000,
                   "tariff": {"free_minutes": 15, "per_hour": "2.00", "daily_cap": "12.00"}}],
}


def hotlist(count: int) -> list[HotlistEntry]:
    lists = ("staff", "staff", "permit", "stolen")
    return [HotlistEntry(plate=f"GT{n:06d}", list=lists[n % len(lists)], holder=f"holder-{n // 2}") for n in range(count)]


def requests(count: int, listed: int, offset: int) -> list[tuple[bytes, str]]:
    """Entries of listed plates (allow or deny), of unknown plates, and exits (fee due)."""
    start = datetime.now(UTC) - timedelta(hours=1)
    made = []
    for n in range(offset, offset + count):
        ts = start + timedelta(milliseconds=n - offset)
        kind = n % 4
        if kind == 3:  # the exit of a plate that entered three requests before, or of one never seen
            made.append((gantry_json(f"GT{(n - 3) % listed:06d}", ts, f"gate-{n}"), EXIT))
        else:
            plate = f"GT{n % listed:06d}" if kind < 2 else f"UN{n % 1_000_000:06d}"
            made.append((gantry_json(plate, ts, f"gate-{n}"), ENTRY))
    return made


async def bench_http(bootstrap: str, port: int, lists: int, events: int, concurrency: int, rate: float,
                     rate_seconds: float) -> tuple[HttpFigures, HttpFigures]:
    endpoint = EndpointProcess(bootstrap, port, cameras=(ENTRY, EXIT), path="/v1/plate", sites=[SITE])
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
            await endpoint.wait_ready(session)
            await post_all(session, endpoint.url, requests(min(events, 2000), lists, 3 * 10**8), concurrency, None)
            flat_out = await post_all(session, endpoint.url, requests(events, lists, 0), concurrency, None)
            paced = await post_all(session, endpoint.url, requests(int(rate * rate_seconds), lists, 10**8),
                                   concurrency, rate)
            await _check_decides(session, endpoint)
        return flat_out, paced
    finally:
        endpoint.stop()


async def _check_decides(session: aiohttp.ClientSession, endpoint: EndpointProcess) -> None:
    """The figures are of decisions only if the endpoint decides: a listed plate must be let in."""
    body, camera = requests(1, 1, 0)[0]
    async with session.post(endpoint.url, data=body, headers={"X-Gantry-Token": token_of(camera),
                                                              "Content-Type": "application/json"}) as answer:
        got = await answer.json()
    if got.get("decision") != "allow":
        raise RuntimeError(f"the endpoint did not decide as expected: {got}")


def run(storage: BenchStorage, lists: int, events: int, concurrency: int, rate: float, rate_seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="gantry-bench-broker-") as folder, \
            bench_broker(storage, Path(folder)) as broker:
        ensure_topics(GantryConfig(), broker.bootstrap_servers)
        publish(broker.bootstrap_servers, hotlist(lists))
        flat_out, paced = asyncio.run(bench_http(broker.bootstrap_servers, free_port(), lists, events, concurrency,
                                                 rate, rate_seconds))
    return {
        "storage": str(storage),
        "list_entries": lists,
        **load_figures(flat_out, paced, concurrency, rate, counted="decisions"),
    }
