"""``gantry bench recognize``: frames per second through the Ray pool for each actor count."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from gantry.config import RecognizeConfig
from gantry.events import Frame
from recognize.pool import Pool


def run_bench(actor_counts: list[int], frames: int, recognize: RecognizeConfig, *, progress: bool = True) -> dict:
    """One synthetic city's frames through a pool of each size (models loaded, and a warm-up batch
    read, before the clock starts), with the recogniser ``recognize`` describes."""
    import cv2
    from rich.console import Console
    from rich.progress import track

    from gantry.synthetic import build_city, render_scene

    console = Console(stderr=True, quiet=not progress)
    city = build_city(cameras=4, vehicles=frames, seed=1, start=datetime.now(UTC))
    passages = city.passages[:frames]
    batch = [
        Frame(camera_id=p.camera_id, ts=p.ts, frame_id=f"bench-{i}", width=1280, height=720,
              jpeg=cv2.imencode(".jpg", render_scene(p, i))[1].tobytes())
        for i, p in enumerate(track(passages, description="rendering frames", console=console, disable=not progress))
    ]
    results: dict = {}
    for count in actor_counts:
        settings = recognize.model_copy(update={"actors": count})
        pool = Pool(settings, None)
        pool.read(batch[: count * 2])  # warm-up
        started = time.perf_counter()
        for i in range(0, len(batch), settings.batch_size * count):
            pool.read(batch[i : i + settings.batch_size * count])
        elapsed = time.perf_counter() - started
        results[f"actors_{count}_frames_per_s"] = round(len(batch) / elapsed, 2)
        console.print(f"{count} actor(s): {len(batch) / elapsed:.2f} frames/s")
        pool.close()
    results["preset"] = recognize.preset
    results["cores"] = os.cpu_count()
    return results
