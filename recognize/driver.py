"""The recognizer's driver: ``frames`` from Kafka through the actor pool to ``plate_reads``.

One driver consumes frames and hands batches to the :class:`~recognize.pool.Pool`; the frames of
one camera are voted into one read per passing vehicle (:mod:`recognize.tracking`), whose
pictures are stored first (:mod:`recognize.evidence`). Offsets are committed only after every
read of the batch has been acknowledged by the broker, and never past a frame an open track
still needs, so a crash anywhere replays the batch (at-least-once); read ids are derived from the
frame and the plate, so the replay produces the same reads and downstream stages drop the
repeats.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.producer.future import FutureRecordMetadata

from gantry import topics
from gantry.events import BoundingBox, Frame, InvalidEvent, PlateRead, dead_letter, decode, encode
from gantry.ids import stable_id
from gantry.kafka import consumer, delivered, producer, rewind, send_dead_letter
from gantry.observability import ERRORS, LATENCY, MESSAGES_IN, MESSAGES_OUT, record_lag, serve_health
from gantry.runtime import endpoints
from ingest.snapshots import SnapshotStore, store_url
from recognize.evidence import Evidence
from recognize.pool import Pool
from recognize.tracking import Passage, Position, Sighting, StreamingVoter

log = logging.getLogger(__name__)
STAGE = "recognize"
GROUP_ID = "gantry-recognizer"


def plate_read(passage: Passage) -> PlateRead:
    """The read of one passage; its id comes from the first frame, so a replay yields the same id."""
    r, best = passage.result, passage.best
    return PlateRead(
        read_id=stable_id("passage", passage.first.camera_id, passage.first.frame_id, r.plate),
        camera_id=best.camera_id,
        ts=best.ts,
        plate=r.plate,
        confidence=round(r.confidence, 4),
        region=r.region,
        bbox=BoundingBox(x=max(r.bbox.x, 0), y=max(r.bbox.y, 0), w=max(r.bbox.w, 1), h=max(r.bbox.h, 1)),
        frame_id=best.frame_id,
    )


def run(config, health_port: int, stop: threading.Event) -> None:
    ends = endpoints(config)
    settings = config.recognize
    pool = Pool(settings, ends.ray_address, config.camera_regions())
    serve_health(health_port, ready=lambda: not stop.is_set())
    source = consumer(
        ends.bootstrap_servers, GROUP_ID, [topics.FRAMES], max_poll_records=settings.batch_size * settings.actors
    )
    sink = producer(ends.bootstrap_servers)
    voter = StreamingVoter(max_gap_s=settings.track_gap_s, idle_s=settings.track_idle_s)
    evidence = Evidence(SnapshotStore(store_url(config)))
    log.info("recognizer pool ready: %d actor(s), backend %s", len(pool.actors), settings.backend)
    try:
        while not stop.is_set():
            batch = source.poll(timeout_ms=250)
            polled = time.monotonic()
            frames: list[tuple[Frame, Sighting, ConsumerRecord]] = []
            next_offsets: dict[Position, int] = {}
            sent: list[FutureRecordMetadata] = []
            for tp, messages in batch.items():
                for msg in messages:
                    MESSAGES_IN.labels(STAGE, tp.topic).inc()
                    next_offsets[(tp.topic, tp.partition)] = msg.offset + 1
                    try:
                        frame = decode(Frame, msg.value)
                    except InvalidEvent as exc:
                        sent.append(refuse(sink, msg, str(exc), "invalid_frame"))
                        continue
                    if frame.pixels > settings.max_frame_pixels:
                        sent.append(refuse(sink, msg, f"the frame is {frame.width}x{frame.height} pixels, more than "
                                           f"recognize.max_frame_pixels ({settings.max_frame_pixels:,})",
                                           "frame_too_large"))
                        continue
                    frames.append((frame, Sighting(frame.camera_id, frame.frame_id, frame.ts,
                                                   (tp.topic, tp.partition), msg.offset), msg))
            passages = []
            if frames:
                found = pool.read([f for f, _, _ in frames])
                for (frame, sighting, msg), results in zip(frames, found, strict=True):
                    if results is None:
                        sent.append(refuse(sink, msg, "the frame's JPEG does not decode (damaged or cut short)",
                                           "undecodable_frame"))
                        continue
                    if results:
                        evidence.hold(frame)
                    passages += voter.add(sighting, results, time.monotonic())
            passages += voter.flush_idle(time.monotonic())
            try:
                reads = [evidence.keep(plate_read(passage), passage) for passage in passages]
            except OSError as exc:
                # No read leaves without its pictures: the frames since the last commit come again.
                log.error("snapshot store failed, reading the batch again: %s", exc)
                ERRORS.labels(STAGE, "snapshot_store").inc()
                rewind(source)
                voter = StreamingVoter(max_gap_s=settings.track_gap_s, idle_s=settings.track_idle_s)
                evidence.release(voter)
                stop.wait(1.0)
                continue
            evidence.release(voter)
            for read in reads:
                sent.append(sink.send(topics.PLATE_READS, key=read.plate.encode(), value=encode(read)))
                MESSAGES_OUT.labels(STAGE, topics.PLATE_READS).inc()
            if next_offsets or passages:
                if not settle(source, sink, sent, next_offsets, voter.held_back()):
                    # The frames since the last commit come again: their tracks start over.
                    voter = StreamingVoter(max_gap_s=settings.track_gap_s, idle_s=settings.track_idle_s)
                LATENCY.labels(STAGE).observe(time.monotonic() - polled)
                record_lag(STAGE, source)
    finally:
        source.close()
        sink.close()
        pool.close()


def refuse(sink, msg: ConsumerRecord, reason: str, error: str) -> FutureRecordMetadata:
    """Send a frame that cannot be read to the dead letters, with the reason (counted as ``error``)."""
    ERRORS.labels(STAGE, error).inc()
    return send_dead_letter(sink, dead_letter(msg.value, reason, stage=STAGE, source_topic=msg.topic,
                                              partition=msg.partition, offset=msg.offset))


def settle(source, sink, sent: list[FutureRecordMetadata], processed: dict[Position, int],
           held_back: dict[Position, int]) -> bool:
    """Commit the batch once the broker acknowledged every read and dead letter it sent; else
    commit nothing and rewind ``source``, so that the batch is read again (False)."""
    if not delivered(sink, sent):
        ERRORS.labels(STAGE, "not_acked").inc()
        rewind(source)
        return False
    _commit(source, processed, held_back)
    return True


def _commit(source, processed: dict[Position, int], held_back: dict[Position, int]) -> None:
    """Commit what is safe: past every processed frame, but not past an open track's first frame."""
    safe = {pos: min(offset, held_back.get(pos, offset)) for pos, offset in processed.items()}
    for pos, offset in held_back.items():
        safe.setdefault(pos, offset)
    if safe:
        source.commit({TopicPartition(*pos): OffsetAndMetadata(offset, "", -1) for pos, offset in safe.items()})
