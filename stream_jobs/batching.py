"""Batches in Faust agents: Faust's cost per message, not the rules, bounds the throughput.

An agent takes its events in batches (``stream.take_events``) and writes each table key once per
batch, since every table write is a changelog message. Faust acknowledges a batch only after the
agent has handled it, and flushes the producer before committing, so this stays at-least-once.

A table sends a key's changelog message to the partition of the event being processed, which is
how a key's state follows its source partition to whichever worker owns it. Inside a batch there
is no such event, so a write names the event whose partition it belongs to.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from faust.streams import _current_event
from faust.types import EventT

BATCH_MAX = 2_000  # events handled per batch, at most
BATCH_WITHIN_S = 0.05  # how long a batch waits to fill: the delay it adds to day summaries


@contextmanager
def in_partition_of(event: EventT) -> Iterator[None]:
    """Table writes in this block go to ``event``'s partition, as if it were being processed."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
