"""Every worker's own copy of the whole hotlist, tailed from the compacted ``hotlist`` topic.

Reads are partitioned by plate but a possible match can name a *different* plate, so a worker
cannot make do with a partition of the hotlist (see :mod:`stream_jobs.runtime.compacted`).
"""

from __future__ import annotations

from gantry import topics
from gantry.events import HotlistEntry
from stream_jobs.hotlist.rules import HotlistIndex
from stream_jobs.runtime.compacted import RegisterFeed


class HotlistFeed(RegisterFeed[HotlistEntry]):
    """Keeps a :class:`HotlistIndex` equal to the topic."""

    index: HotlistIndex

    def __init__(self, bootstrap_servers: str, index: HotlistIndex, **kwargs) -> None:
        super().__init__(bootstrap_servers, topics.HOTLIST, HotlistEntry, index, **kwargs)
