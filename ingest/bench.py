"""``gantry bench ingest``: how fast the edge endpoint accepts reads, and a video reader decodes.

The endpoint runs as its own process (as in production) against a private broker started for the
run, on disk as ``gantry up`` runs it or in memory (``--storage``), and the
load comes from this process over keep-alive HTTP connections, so the figures include HTTP
parsing, validation, the token check and the broker's acknowledgement of every read. Two runs:
as fast as possible (accepted events/s), then a fixed rate (acknowledgement latency percentiles).
The reader figure is a synthetic 720p video through :class:`CameraReader` with every frame
sampled, so it measures decode, JPEG re-encode and publish per frame.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import numpy as np
import yaml

from gantry.broker import BenchStorage, bench_broker, free_port
from gantry.config import GantryConfig, IngestConfig, MotionConfig, StreamSource
from gantry.kafka import ensure_topics
from gantry.processes import stop
from ingest.examples import gantry_json
from ingest.publish import Publisher
from ingest.readers import CameraReader
from ingest.synthetic import Footage, write_video

CAMERA, TOKEN = "bench-cam", "bench-token"


@dataclass(frozen=True)
class HttpFigures:
    events: int
    seconds: float
    failures: int
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.events / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


def load_figures(flat_out: HttpFigures, paced: HttpFigures, concurrency: int, rate: float, *,
                 counted: str, latency: str = "") -> dict:
    """A flat-out and a paced HTTP run as flat figures, named as the benches have always named
    them (scripts read ``--json``): ``counted`` is what was counted (``events``, ``decisions``),
    ``latency`` prefixes the percentiles (``ack_``: what was timed is the acknowledgement)."""
    return {
        counted: flat_out.events,
        "concurrency": concurrency,
        f"{counted}_per_s": round(flat_out.per_second, 1),
        f"flat_out_{latency}p50_ms": round(flat_out.percentile(50), 2),
        f"flat_out_{latency}p99_ms": round(flat_out.percentile(99), 2),
        "flat_out_failures": flat_out.failures,
        "paced_rate_per_s": rate,
        f"paced_{counted}": paced.events,
        "paced_achieved_per_s": round(paced.per_second, 1),
        f"{latency}p50_ms": round(paced.percentile(50), 2),
        f"{latency}p99_ms": round(paced.percentile(99), 2),
        "paced_failures": paced.failures,
    }


def load_table(title: str, figures: dict, *, counted: str, per_s: str, latency: str = ""):
    """The two runs of :func:`load_figures` as a rich table, a row each (``per_s``: the rate's heading)."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("run", counted, per_s, "p50 ms", "p99 ms", "failures"):
        table.add_column(column, justify="right" if column != "run" else "left")
    table.add_row(f"flat out, {figures['concurrency']} connections", str(figures[counted]),
                  f"{figures[f'{counted}_per_s']:,.0f}", f"{figures[f'flat_out_{latency}p50_ms']:.1f}",
                  f"{figures[f'flat_out_{latency}p99_ms']:.1f}", str(figures["flat_out_failures"]))
    table.add_row(f"paced at {figures['paced_rate_per_s']:g}/s", str(figures[f"paced_{counted}"]),
                  f"{figures['paced_achieved_per_s']:,.0f}", f"{figures[f'{latency}p50_ms']:.1f}",
                  f"{figures[f'{latency}p99_ms']:.1f}", str(figures["paced_failures"]))
    return table


def bodies(count: int, offset: int = 0) -> list[bytes]:
    start = datetime.now(UTC) - timedelta(hours=1)  # within the endpoint's event_time window
    return [
        gantry_json(
            f"BN{(offset + n) % 100_000:05d}",
            start + timedelta(milliseconds=n),
            f"bench-{offset + n}",
        )
        for n in range(count)
    ]


class EndpointProcess:
    """`python -m ingest serve` with a throw-away configuration: one camera, its token, a temp spool
    (or the given cameras, each with the token ``<camera>-token``, and more configuration)."""

    def __init__(self, bootstrap: str, port: int, cameras: tuple[str, ...] = (CAMERA,), path: str = "/v1/reads",
                 **more_config: object) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="gantry-bench-ingest-"))
        self.url = f"http://127.0.0.1:{port}{path}"
        self.ready_url = f"http://127.0.0.1:{port}/v1/reads"
        self.ready_headers = _headers(token_of(cameras[0]))
        config = {
            "data_dir": str(self.folder),
            "broker": {"bootstrap_servers": bootstrap},
            "warehouse": {"dsn": f"chdb://{self.folder}/unused"},
            "cameras": [{"id": camera, "lat": 0, "lon": 0} for camera in cameras],
            "ingest": {"http_host": "127.0.0.1", "http_port": port},
            **more_config,
        }
        (self.folder / "gantry.yaml").write_text(yaml.safe_dump(config))
        env = os.environ | {
            "GANTRY_CONFIG": str(self.folder / "gantry.yaml"),
            "GANTRY_INGEST_TOKENS": ",".join(f"{camera}={token_of(camera)}" for camera in cameras),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ingest", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "serve.log", "wb"),  # noqa: SIM115 - the child owns it
        )

    async def wait_ready(self, session: aiohttp.ClientSession, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the endpoint exited: {(self.folder / 'serve.log').read_text()[-2000:]}")
            try:
                async with session.post(self.ready_url, data=bodies(1, 10**9)[0], headers=self.ready_headers) as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError("the endpoint did not become ready")

    def stop(self) -> None:
        stop(self.process, grace_s=15)


def token_of(camera: str) -> str:
    return TOKEN if camera == CAMERA else f"{camera}-token"


def _headers(token: str = TOKEN) -> dict[str, str]:
    return {"X-Gantry-Token": token, "Content-Type": "application/json"}


async def post_all(
    session: aiohttp.ClientSession, url: str, payloads: list[bytes] | list[tuple[bytes, str]], concurrency: int,
    rate: float | None,
) -> HttpFigures:
    """POST each payload (a body, or a body and the camera whose token it goes with), as fast as
    ``concurrency`` connections allow or at ``rate`` per second; the latencies of the 200s."""
    queue: asyncio.Queue[tuple[float, bytes | tuple[bytes, str]]] = asyncio.Queue()
    latencies: list[float] = []
    failures = 0
    started = time.perf_counter()
    for n, payload in enumerate(payloads):
        queue.put_nowait((started + n / rate if rate else 0.0, payload))

    async def worker() -> None:
        nonlocal failures
        while not queue.empty():
            due, payload = queue.get_nowait()
            body, token = (payload[0], token_of(payload[1])) if isinstance(payload, tuple) else (payload, TOKEN)
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            sent = time.perf_counter()
            async with session.post(url, data=body, headers=_headers(token)) as answer:
                await answer.read()
                if answer.status == 200:
                    latencies.append((time.perf_counter() - sent) * 1000)
                else:
                    failures += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return HttpFigures(len(payloads), time.perf_counter() - started, failures, latencies)


async def bench_http(
    bootstrap: str, port: int, events: int, concurrency: int, rate: float, rate_seconds: float
) -> tuple[HttpFigures, HttpFigures]:
    """(as fast as possible, at a fixed rate) against a fresh endpoint process."""
    endpoint = EndpointProcess(bootstrap, port)
    try:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await endpoint.wait_ready(session)
            await post_all(
                session, endpoint.url, bodies(min(events, 2000), 2 * 10**8), concurrency, None
            )  # warm-up
            flat_out = await post_all(session, endpoint.url, bodies(events), concurrency, None)
            paced = await post_all(
                session, endpoint.url, bodies(int(rate * rate_seconds), 10**8), concurrency, rate
            )
        return flat_out, paced
    finally:
        endpoint.stop()


def bench_reader(bootstrap: str, seconds: float = 8.0) -> tuple[int, float]:
    """(frames, frames/s) of one reader over a 1280x720 25 fps video, every frame sampled and sent."""
    with tempfile.TemporaryDirectory() as folder:
        footage = Footage(seconds=seconds, fps=25, width=1280, height=720, car_from_s=0, car_to_s=seconds)
        video = write_video(Path(folder) / "bench.avi", footage)
        settings = IngestConfig(motion=MotionConfig(enabled=False))
        publisher = Publisher(bootstrap)
        sent = 0

        def publish(frame) -> None:
            nonlocal sent
            publisher.fire_frame(frame)
            sent += 1

        reader = CameraReader(
            "bench-reader", StreamSource(url=str(video), fps=25), settings, publish, threading.Event()
        )
        started = time.perf_counter()
        reader.run()  # in this thread: the figure is one reader's own pace
        publisher.close()  # waits for the broker's acks, which belong in the figure
        return sent, sent / (time.perf_counter() - started)


def run(
    storage: BenchStorage, events: int, concurrency: int, rate: float, rate_seconds: float
) -> dict:
    """The figures as one flat dict: what ``--json`` prints and the table shows."""
    with tempfile.TemporaryDirectory(prefix="gantry-bench-broker-") as folder, \
            bench_broker(storage, Path(folder)) as broker:
        ensure_topics(GantryConfig(), broker.bootstrap_servers)
        flat_out, paced = asyncio.run(
            bench_http(broker.bootstrap_servers, free_port(), events, concurrency, rate, rate_seconds)
        )
        frames, fps = bench_reader(broker.bootstrap_servers)
    return {
        "storage": str(storage),
        **load_figures(flat_out, paced, concurrency, rate, counted="events", latency="ack_"),
        "reader_frames": frames,
        "reader_frames_per_s": round(fps, 1),
    }
