"""Screening: every read is checked against the hotlist as soon as it arrives.

Screening is stateless, so it runs on whichever worker receives the read, straight off
``plate_reads``, and a hit leaves within milliseconds of the read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gantry import topics
from gantry.events import PlateRead, encode
from gantry.observability import MESSAGES_OUT
from stream_jobs.hotlist.rules import match
from stream_jobs.intake import STAGE


def screener(jobs) -> Callable[[PlateRead], Awaitable[None]]:
    hits = jobs.topic(topics.HOTLIST_HITS)

    async def screen(read: PlateRead) -> None:
        for hit in match(read, jobs.hotlist):
            await hits.send(key=hit.plate.encode(), value=encode(hit))
            MESSAGES_OUT.labels(STAGE, topics.HOTLIST_HITS).inc()

    return screen
