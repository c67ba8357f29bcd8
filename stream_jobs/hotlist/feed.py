"""Every worker's own copy of the whole hotlist, tailed from the compacted ``hotlist`` topic.

Reads are partitioned by plate but a possible match can name a *different* plate, so a worker
cannot make do with a partition of the hotlist (see :mod:`stream_jobs.feeds`).
"""

from __future__ import annotations

import logging

from aiokafka import ConsumerRecord

from gantry import topics
from gantry.errors import InvalidEvent
from gantry.events import HotlistEntry, decode
from stream_jobs.feeds import CompactedFeed
from stream_jobs.hotlist.rules import HotlistIndex

log = logging.getLogger(__name__)


class HotlistFeed(CompactedFeed):
    """Keeps a :class:`HotlistIndex` equal to the topic."""

    topic = topics.HOTLIST

    def __init__(self, bootstrap_servers: str, index: HotlistIndex, **kwargs) -> None:
        super().__init__(bootstrap_servers, **kwargs)
        self.index = index

    def apply(self, record: ConsumerRecord) -> None:
        key = record.key.decode() if record.key else ""
        if record.value is None:
            self.index.remove(key)
            return
        try:
            self.index.put(decode(HotlistEntry, record.value))
        except InvalidEvent as exc:
            log.warning("ignoring bad hotlist entry %s at offset %s: %s", key, record.offset, exc)
