"""Synthetic camera footage: a still street, then a car with a rendered plate driving across.

The tests and ``gantry bench ingest`` need video with known motion and known plates, and the
repository carries no binary media, so it is drawn here with OpenCV (MJPG in AVI plays everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Footage:
    seconds: float = 6.0
    fps: float = 25.0
    width: int = 640
    height: int = 360
    car_from_s: float = 2.0  # the car enters the picture ...
    car_to_s: float = 4.0  # ... and has left it; before and after, nothing moves
    plate: str = "AB12CDE"

    @property
    def frame_count(self) -> int:
        return round(self.seconds * self.fps)


def street(footage: Footage) -> np.ndarray:
    image = np.full((footage.height, footage.width, 3), (90, 90, 90), np.uint8)
    cv2.rectangle(image, (0, footage.height * 2 // 3), (footage.width, footage.height), (60, 60, 60), -1)
    return image


def draw_car(image: np.ndarray, x: int, plate: str) -> None:
    height = image.shape[0]
    top = height // 3
    cv2.rectangle(image, (x, top), (x + 260, top + 130), (30, 30, 160), -1)
    cv2.rectangle(image, (x + 60, top + 80), (x + 200, top + 115), (255, 255, 255), -1)
    cv2.putText(image, plate, (x + 66, top + 108), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2, cv2.LINE_AA)


def frame_at(footage: Footage, index: int, background: np.ndarray) -> np.ndarray:
    image = background.copy()
    t = index / footage.fps
    if footage.car_from_s <= t < footage.car_to_s:
        progress = (t - footage.car_from_s) / (footage.car_to_s - footage.car_from_s)
        draw_car(image, int(-260 + progress * (footage.width + 260)), footage.plate)
    return image


def write_video(path: Path, footage: Footage = Footage()) -> Path:
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"MJPG"), footage.fps, (footage.width, footage.height)
    )
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write MJPG video here")
    background = street(footage)
    try:
        for index in range(footage.frame_count):
            writer.write(frame_at(footage, index, background))
    finally:
        writer.release()
    return path


def write_images(folder: Path, count: int, footage: Footage = Footage()) -> list[Path]:
    """``count`` numbered JPEG snapshots with the car at different places."""
    folder.mkdir(parents=True, exist_ok=True)
    background = street(footage)
    paths = []
    for n in range(count):
        image = background.copy()
        draw_car(image, 40 + n * 20 % max(1, footage.width - 300), footage.plate)
        path = folder / f"snap-{n:05d}.jpg"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths
