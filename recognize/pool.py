"""The recognizer pool: Ray actors, each holding one loaded :class:`~recognize.recognizer.Recognizer`.

:class:`Pool` starts the actors (on a local Ray it starts, or on a cluster) and fans a batch of
frames out to them, one chunk per actor, gathering the results in order. Ray restarts a crashed
actor and retries its call (``ACTOR_RETRIES``), so a batch survives an actor's crash. The Kafka
side, frames in and reads out, is :mod:`recognize.driver`.
"""

from __future__ import annotations

import os

import numpy as np

from gantry.config import RecognizeConfig
from gantry.events import Frame
from recognize.base import PlateResult

ACTOR_RETRIES = 3


class FrameReader:
    """The body of one Ray actor: decodes JPEGs and runs the recognizer on a batch."""

    def __init__(self, settings: RecognizeConfig, threads: int,
                 camera_regions: dict[str, tuple[str, ...]] | None = None) -> None:
        from recognize.recognizer import Recognizer

        self.recognizer = Recognizer.configured(settings, threads=threads, camera_regions=camera_regions)

    def ping(self) -> bool:
        return True

    def read(self, jpegs: list[bytes], cameras: list[str]) -> list[list[PlateResult] | None]:
        """The plates of each frame; None for a JPEG that does not decode."""
        images = [_decoded(j) for j in jpegs]
        decoded = [(im, cam) for im, cam in zip(images, cameras, strict=True) if im is not None]
        results = iter(self.recognizer.read_batch([im for im, _ in decoded], [cam for _, cam in decoded]))
        return [None if im is None else next(results) for im in images]


def _decoded(jpeg: bytes) -> np.ndarray | None:
    """The image, or None: OpenCV answers some broken JPEGs with None and others with an error."""
    import cv2

    try:
        return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        return None


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

    def read(self, frames: list[Frame]) -> list[list[PlateResult] | None]:
        """Split the frames into one chunk per actor and gather the results in order (None: the
        frame's JPEG does not decode)."""
        chunk = max(1, -(-len(frames) // len(self.actors)))
        chunks = [frames[i : i + chunk] for i in range(0, len(frames), chunk)]
        futures = [
            actor.read.remote([f.jpeg for f in part], [f.camera_id for f in part])
            for actor, part in zip(self.actors, chunks, strict=False)
        ]
        return [found for part in self._ray.get(futures) for found in part]
