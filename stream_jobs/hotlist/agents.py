"""The screening agent: every read is checked against the hotlist as soon as it arrives.

Screening is stateless, so it runs straight off ``plate_reads`` whatever its partitioning, and a
hit leaves within milliseconds of the read: subscribers must hear within a second.
"""

from __future__ import annotations

from gantry import topics
from gantry.events import DeadLetter, encode
from gantry.observability import ERRORS, MESSAGES_IN, MESSAGES_OUT
from stream_jobs.intake import STAGE, admit
from stream_jobs.hotlist.rules import match


def register(jobs) -> None:
    hits = jobs.topic(topics.HOTLIST_HITS)
    dead_letters = jobs.topic(topics.DEAD_LETTERS)

    @jobs.app.agent(jobs.topic(topics.PLATE_READS), name="screen")
    async def screen(stream) -> None:
        async for event in stream.events():
            MESSAGES_IN.labels(STAGE, topics.PLATE_READS).inc()
            message = event.message
            read = admit(event.value, jobs.known_cameras, partition=message.partition, offset=message.offset)
            if isinstance(read, DeadLetter):
                ERRORS.labels(STAGE, "invalid_read").inc()
                await dead_letters.send(value=encode(read))
                continue
            for hit in match(read, jobs.hotlist):
                await hits.send(key=hit.plate.encode(), value=encode(hit))
                MESSAGES_OUT.labels(STAGE, topics.HOTLIST_HITS).inc()
            if jobs.forward_by_plate is not None:
                await jobs.forward_by_plate(read)
