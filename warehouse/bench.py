"""``gantry bench sink``: how many reads per second the sink gets into the warehouse.

It times the sink's own path — buffer each message, decode and validate a batch of
``warehouse.batch_rows`` messages, hand it to the writer thread that inserts it with its
deduplication token while the next batch is decoded — against a fresh embedded warehouse
(``warehouse serve`` on a temporary directory, reached over HTTP as in the embedded stack), or an
existing one with ``--dsn``. Messages are generated before the clock starts, and Kafka is not in
the loop: the broker's own throughput is another benchmark's business.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import httpx
from rich.progress import Progress

from gantry import topics
from gantry.config import RetentionConfig
from gantry.events import PlateRead, encode
from gantry.ids import stable_id
from warehouse.batch import Batch, Message
from warehouse.client import connect
from warehouse.migrations import migrate
from warehouse.writer import Writer

_SERVE = [sys.executable, "-c", "from warehouse.cli import app; app()", "serve"]


@dataclass(frozen=True)
class BenchResult:
    rows: int
    batch_rows: int
    seconds: float
    decode_seconds: float
    insert_wait_seconds: float
    """Time the decoder waited for the writer: the part of the inserts not hidden behind decoding."""
    warehouse: str

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    def as_dict(self) -> dict:
        return asdict(self) | {"rows_per_s": round(self.rows_per_s)}

    def summary(self) -> str:
        return (
            f"{self.rows:,} reads in {self.seconds:.2f}s = [bold]{self.rows_per_s:,.0f} rows/s[/] "
            f"(decode {self.decode_seconds:.2f}s, waiting for inserts {self.insert_wait_seconds:.2f}s; "
            f"batches of {self.batch_rows:,}; {self.warehouse})"
        )


def sample_reads(n: int) -> list[bytes]:
    """Plausible reads: 200 cameras, 50,000 plates, one read every few milliseconds."""
    start = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
    return [
        encode(PlateRead(read_id=stable_id("bench", i), camera_id=f"cam-{i % 200:03d}",
                         ts=start + timedelta(milliseconds=3 * i), plate=f"BN{i % 50_000:05d}X",
                         confidence=0.8 + (i % 20) / 100, region="uk", direction="in"))
        for i in range(n)
    ]  # fmt: skip


@contextlib.contextmanager
def embedded_warehouse() -> Iterator[str]:
    """``warehouse serve`` on a temporary directory, stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="gantry-bench-") as data_dir:
        port, health = _free_port(), _free_port()
        process = subprocess.Popen(
            [*_SERVE, "--port", str(port), "--health-port", str(health)],
            env=os.environ | {"GANTRY_DATA_DIR": data_dir},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not _healthy(health):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the embedded warehouse did not start")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(30)


def run_bench(rows: int, batch_rows: int, dsn: str | None, quiet: bool = False) -> BenchResult:
    messages = [Message(topics.PLATE_READS, 0, offset, raw) for offset, raw in enumerate(sample_reads(rows))]
    # In a real sink these messages wait in Kafka, not in the heap the garbage collector walks.
    gc.freeze()
    with contextlib.ExitStack() as stack:
        target = dsn or stack.enter_context(embedded_warehouse())
        client = connect(target, f"bench_{uuid.uuid4().hex[:8]}")
        migrate(client, RetentionConfig())
        try:
            result = _timed_sink(client, messages, batch_rows, quiet)
            stored = client.command("SELECT count() FROM plate_reads")
            if stored != rows:
                raise RuntimeError(f"benchmark stored {stored} rows of {rows}")
        finally:
            client.command(f"DROP DATABASE IF EXISTS `{client.database}`", use_database=False)
    kind = "given warehouse" if dsn else "embedded warehouse over HTTP"
    return BenchResult(rows, batch_rows, result[0], result[1], result[2], kind)


def _timed_sink(client, messages: list[Message], batch_rows: int, quiet: bool) -> tuple[float, float, float]:
    batch = Batch(batch_rows, max_seconds=float("inf"))
    writer = Writer(client, threading.Event())
    decode_s = wait_s = 0.0
    with Progress(disable=quiet, transient=True) as progress:
        task = progress.add_task("sink benchmark", total=len(messages))
        started = time.perf_counter()
        for offset in range(0, len(messages), batch_rows):
            t0 = time.perf_counter()
            batch.extend(messages[offset : offset + batch_rows], now=0.0)
            drained = batch.drain()
            t1 = time.perf_counter()
            if writer.busy:
                _collect(writer, progress, task)
            writer.submit(drained)
            wait_s += time.perf_counter() - t1
            decode_s += t1 - t0
        t2 = time.perf_counter()
        _collect(writer, progress, task)
        elapsed = time.perf_counter() - started
        wait_s += time.perf_counter() - t2
    writer.close()
    return elapsed, decode_s, wait_s


def _collect(writer: Writer, progress: Progress, task) -> None:
    written = writer.collect()
    if written.refused:
        raise RuntimeError(f"the warehouse refused {len(written.refused)} benchmark rows: {written.refused[0].reason}")
    progress.advance(task, written.rows)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
