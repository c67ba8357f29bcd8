"""The recognizer pool: Ray actors that turn ``frames`` into ``plate_reads``.

One driver consumes frames from Kafka and fans batches out to ``recognize.actors`` Ray actors,
each holding one loaded :class:`~recognize.recognizer.Recognizer`. Offsets are committed only
after every read of the batch has been acknowledged by the broker, so a crash anywhere replays
the batch (at-least-once); read ids are derived from the frame and the plate, so the replay
produces the same reads and downstream stages drop the repeats. Ray restarts a crashed actor;
the driver re-sends that actor's frames.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import numpy as np
import typer
from kafka import OffsetAndMetadata, TopicPartition
from kafka.producer.future import FutureRecordMetadata

from gantry import topics
from gantry.cli_support import config_of
from gantry.config import RecognizeConfig
from gantry.events import BoundingBox, Frame, InvalidEvent, PlateRead, dead_letter, decode, encode
from gantry.ids import stable_id
from gantry.kafka import consumer, delivered, producer, rewind, send_dead_letter
from gantry.observability import ERRORS, LATENCY, MESSAGES_IN, MESSAGES_OUT, record_lag, serve_health
from gantry.runtime import endpoints
from ingest.snapshots import SnapshotStore, store_url
from recognize.base import PlateResult
from recognize.tracking import Passage, Position, Sighting, StreamingVoter

log = logging.getLogger(__name__)
STAGE = "recognize"
GROUP_ID = "gantry-recognizer"
ACTOR_RETRIES = 3

pool_app = typer.Typer(help="The recognizer pool (Ray actors reading plates from frames).", no_args_is_help=True)


class FrameReader:
    """The body of one Ray actor: decodes JPEGs and runs the recognizer on a batch."""

    def __init__(self, settings: RecognizeConfig, threads: int,
                 camera_regions: dict[str, tuple[str, ...]] | None = None) -> None:
        from recognize.recognizer import Recognizer

        self.recognizer = Recognizer.configured(settings, threads=threads, camera_regions=camera_regions)

    def ping(self) -> bool:
        return True

    def read(self, jpegs: list[bytes], cameras: list[str]) -> list[list[PlateResult]]:
        import cv2

        images = [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR) for j in jpegs]
        decoded = [(im, cam) for im, cam in zip(images, cameras, strict=True) if im is not None]
        results = iter(self.recognizer.read_batch([im for im, _ in decoded], [cam for _, cam in decoded]))
        return [[] if im is None else next(results) for im in images]


class Evidence:
    """The pictures behind reads from video, as edge cameras send them: the frame that shows the
    passage best (the overview, which ``image_ref`` names) and its plate cut out, written to the
    snapshot store before the read is sent (:mod:`ingest.snapshots`: the store that ingest, the
    API, retention and erasure share).

    A passage is voted when its track closes, frames after the one that shows it best, so the
    JPEGs of frames that an open track holds are kept until then (the track's frames are not
    committed either: a crash replays them). Paths come from the read id, so a replay writes the
    same pictures again rather than new ones.
    """

    CROP_MARGIN = 0.25  # of the plate's size on each side: the plate's surround identifies a car too

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self._jpegs: dict[tuple[str, str], bytes] = {}

    def __len__(self) -> int:
        """How many frames' pictures are held."""
        return len(self._jpegs)

    def hold(self, frame: Frame) -> None:
        self._jpegs[(frame.camera_id, frame.frame_id)] = frame.jpeg

    def release(self, voter: StreamingVoter) -> None:
        """Let go of every frame no open track holds."""
        held = {(s.camera_id, s.frame_id) for tracks in voter.open.values() for o in tracks for s in o.sightings}
        self._jpegs = {k: v for k, v in self._jpegs.items() if k in held}

    def keep(self, read: PlateRead, passage: Passage) -> PlateRead:
        """Store the read's pictures; the read naming its overview. Raises OSError if the store fails."""
        jpeg = self._jpegs[(passage.best.camera_id, passage.best.frame_id)]
        ref = self.store.put(read.ts, read.camera_id, read.read_id, "overview", jpeg)
        crop = plate_crop(jpeg, read.bbox, self.CROP_MARGIN)
        if crop is not None:
            self.store.put(read.ts, read.camera_id, read.read_id, "plate", crop)
        return read.model_copy(update={"image_ref": ref})


def plate_crop(jpeg: bytes, box: BoundingBox | None, margin: float) -> bytes | None:
    """The plate cut out of its frame with a margin, as JPEG (None: no box, or nothing left of it)."""
    import cv2

    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None or box is None:
        return None
    dx, dy = int(box.w * margin), int(box.h * margin)
    height, width = image.shape[:2]
    x0, y0 = max(box.x - dx, 0), max(box.y - dy, 0)
    x1, y1 = min(box.x + box.w + dx, width), min(box.y + box.h + dy, height)
    if x1 <= x0 or y1 <= y0:
        return None
    ok, buffer = cv2.imencode(".jpg", image[y0:y1, x0:x1])
    return buffer.tobytes() if ok else None


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


class Pool:
    """The driver: owns the Kafka consumer/producer and the actors."""

    def __init__(self, settings: RecognizeConfig, ray_address: str | None,
                 camera_regions: dict[str, tuple[str, ...]] | None = None) -> None:
        import ray

        from recognize.backends import num_gpus_for

        cores = os.cpu_count() or 1
        self.owns_ray = not ray.is_initialized()
        if self.owns_ray:
            local = {} if ray_address else {
                "num_cpus": max(cores, settings.actors),
                "object_store_memory": 200 * 1024 * 1024,
            }
            ray.init(address=ray_address, include_dashboard=False, log_to_driver=False, **local)
        self._ray = ray
        remote = ray.remote(FrameReader).options(
            num_cpus=1,
            num_gpus=num_gpus_for(settings.backend),
            max_restarts=-1,
            max_task_retries=ACTOR_RETRIES,
        )
        # Locally the actors share this machine's cores; on a cluster each has its own.
        threads = 0 if ray_address else max(1, cores // settings.actors)
        self.actors = [remote.remote(settings, threads, camera_regions) for _ in range(settings.actors)]
        ray.get([a.ping.remote() for a in self.actors])
        self.batch_size = settings.batch_size

    def close(self) -> None:
        """Stop the actors, and the local Ray instance if this pool started it."""
        for actor in self.actors:
            self._ray.kill(actor)
        if self.owns_ray:
            self._ray.shutdown()

    def read(self, frames: list[Frame]) -> list[list[PlateResult]]:
        """Split the frames into one chunk per actor and gather the results in order."""
        chunk = max(1, -(-len(frames) // len(self.actors)))
        chunks = [frames[i : i + chunk] for i in range(0, len(frames), chunk)]
        futures = [
            actor.read.remote([f.jpeg for f in part], [f.camera_id for f in part])
            for actor, part in zip(self.actors, chunks, strict=False)
        ]
        return [found for part in self._ray.get(futures) for found in part]


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
            frames: list[tuple[Frame, Sighting]] = []
            next_offsets: dict[Position, int] = {}
            sent: list[FutureRecordMetadata] = []
            for tp, messages in batch.items():
                for msg in messages:
                    MESSAGES_IN.labels(STAGE, tp.topic).inc()
                    next_offsets[(tp.topic, tp.partition)] = msg.offset + 1
                    try:
                        frame = decode(Frame, msg.value)
                    except InvalidEvent as exc:
                        ERRORS.labels(STAGE, "invalid_frame").inc()
                        sent.append(send_dead_letter(sink, dead_letter(
                            msg.value, str(exc), stage=STAGE, source_topic=tp.topic,
                            partition=tp.partition, offset=msg.offset,
                        )))
                        continue
                    frames.append((frame, Sighting(frame.camera_id, frame.frame_id, frame.ts,
                                                   (tp.topic, tp.partition), msg.offset)))
            passages = []
            if frames:
                found = pool.read([f for f, _ in frames])
                for (frame, sighting), results in zip(frames, found, strict=True):
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


@pool_app.command("pool")
def pool_command(
    ctx: typer.Context,
    health_port: int = typer.Option(0, envvar="GANTRY_HEALTH_PORT", help="/healthz and /metrics port"),
) -> None:
    """Consume frames, read plates on Ray actors, produce plate reads (runs until stopped)."""
    config = config_of(ctx)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    run(config, health_port, stop)
    log.info("recognizer pool stopped after %.0f s", time.monotonic() - started)


def bench_pool(
    actors: str = typer.Option("1,2", help="actor counts to compare, comma-separated"),
    frames: int = typer.Option(48, min=1, help="synthetic frames per run"),
    preset: str = typer.Option("accurate", help="recognizer preset"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object as the last line"),
) -> None:
    """Frames/s through the Ray pool for each actor count (models loaded before the clock starts)."""
    import json
    from datetime import UTC, datetime

    import cv2
    from rich.console import Console
    from rich.progress import track

    from gantry.config import RecognizeConfig
    from gantry.synthetic import build_city, render_scene

    city = build_city(cameras=4, vehicles=frames, seed=1, start=datetime.now(UTC))
    passages = city.passages[:frames]
    batch = [
        Frame(camera_id=p.camera_id, ts=p.ts, frame_id=f"bench-{i}", width=1280, height=720,
              jpeg=cv2.imencode(".jpg", render_scene(p, i))[1].tobytes())
        for i, p in enumerate(track(passages, description="rendering frames", console=Console(stderr=True)))
    ]
    results = {}
    for count in (int(a) for a in actors.split(",")):
        settings = RecognizeConfig(actors=count, preset=preset)
        pool = Pool(settings, None)
        pool.read(batch[: count * 2])  # warm-up
        started = time.perf_counter()
        for i in range(0, len(batch), settings.batch_size * count):
            pool.read(batch[i : i + settings.batch_size * count])
        elapsed = time.perf_counter() - started
        results[f"actors_{count}_frames_per_s"] = round(len(batch) / elapsed, 2)
        Console(stderr=True).print(f"{count} actor(s): {len(batch) / elapsed:.2f} frames/s")
        pool.close()
    results["cores"] = os.cpu_count()
    if as_json:
        print(json.dumps(results))
