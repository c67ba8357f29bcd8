"""A small synthetic city with known ground truth: cameras, vehicles, and rendered frames.

The demo and the end-to-end tests need frames whose plates are known exactly. Plates are drawn
in a bold sans font on a plate-coloured panel mounted on a simple car in a road scene, with
noise and blur, so the real recognizer has real work to do.
"""

from __future__ import annotations

import os
import random
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Formats as (pattern, plate colour): L a letter, N a digit, space kept for rendering only.
PLATE_STYLES = (
    ("LLNN LLL", (255, 255, 255)),  # UK front
    ("LLNN LLL", (40, 200, 250)),  # UK rear (yellow, BGR)
    ("LLL NLNN", (255, 255, 255)),  # Brazil Mercosur
    ("NLLL NNN", (255, 255, 255)),  # US-style
    ("LL NNN LL", (255, 255, 255)),  # France-style
)
LETTERS = "".join(c for c in string.ascii_uppercase if c not in "IOQ")  # as most registries do
FRAME_SIZE = (1280, 720)


@dataclass(frozen=True)
class Camera:
    id: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Passage:
    """A vehicle passing a camera: one frame with one plate."""

    camera_id: str
    plate: str  # normalised
    shown: str  # as printed on the plate
    ts: datetime
    style: int


@dataclass(frozen=True)
class City:
    cameras: tuple[Camera, ...]
    passages: tuple[Passage, ...]
    hotlisted: str


def random_plate(rng: random.Random, pattern: str) -> str:
    return "".join(
        rng.choice(LETTERS) if c == "L" else rng.choice(string.digits) if c == "N" else c for c in pattern
    )


def build_city(*, cameras: int, vehicles: int, seed: int, start: datetime) -> City:
    """Vehicles drive past a random run of consecutive cameras, a minute or two apart."""
    rng = random.Random(seed)
    cams = tuple(
        Camera(f"cam{i + 1}", f"Camera {i + 1}", 51.50 + 0.01 * i, -0.12 + 0.015 * i) for i in range(cameras)
    )
    passages = []
    plates: set[str] = set()
    for v in range(vehicles):
        style = v % len(PLATE_STYLES)
        shown = random_plate(rng, PLATE_STYLES[style][0])
        while shown.replace(" ", "") in plates:
            shown = random_plate(rng, PLATE_STYLES[style][0])
        plates.add(shown.replace(" ", ""))
        first = rng.randrange(cameras)
        ts = start + timedelta(seconds=rng.uniform(0, 120) + 20 * v)
        for cam in cams[first : first + rng.randint(1, cameras)]:
            passages.append(Passage(cam.id, shown.replace(" ", ""), shown, ts, style))
            ts += timedelta(seconds=rng.uniform(60, 180))
    passages.sort(key=lambda p: (p.camera_id, p.ts))
    return City(cams, tuple(passages), hotlisted=rng.choice(sorted(plates)))


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
    return ImageFont.truetype(str(path), size)


def render_plate(shown: str, colour: tuple[int, int, int], height: int = 56) -> np.ndarray:
    """A plate panel with a dark border and the text centred, as a BGR image."""
    font = _font(int(height * 0.72))
    left, top, right, bottom = font.getbbox(shown)
    width = int((right - left) + height * 0.8)
    panel = Image.new("RGB", (width, height), colour[::-1])
    draw = ImageDraw.Draw(panel)
    draw.rectangle([1, 1, width - 2, height - 2], outline=(20, 20, 20), width=3)
    draw.text(((width - (right - left)) / 2 - left, (height - (bottom - top)) / 2 - top), shown, font=font, fill=(15, 15, 15))
    return cv2.cvtColor(np.asarray(panel), cv2.COLOR_RGB2BGR)


def render_scene(passage: Passage, seed: int, centre: tuple[int, int] | None = None) -> np.ndarray:
    """A road, a car body (at ``centre``, else somewhere random), and its plate; noise and a
    little blur like a real camera."""
    rng = np.random.default_rng(seed)
    w, h = FRAME_SIZE
    scene = np.full((h, w, 3), 90, np.uint8)
    scene[: h // 3] = (160, 140, 120)
    cx, cy = centre or (int(rng.integers(w // 3, 2 * w // 3)), int(rng.integers(h // 2, 2 * h // 3)))
    body = tuple(int(c) for c in rng.integers(30, 220, 3))
    cv2.rectangle(scene, (cx - 260, cy - 200), (cx + 260, cy + 120), body, -1)
    cv2.rectangle(scene, (cx - 200, cy - 180), (cx + 200, cy - 70), (60, 60, 70), -1)
    plate = render_plate(passage.shown, PLATE_STYLES[passage.style][1])
    ph, pw = plate.shape[:2]
    y0, x0 = cy + 10, cx - pw // 2
    scene[y0 : y0 + ph, x0 : x0 + pw] = plate
    noise = rng.normal(0, 6, scene.shape)
    scene = np.clip(scene.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(scene, (3, 3), 0)


def write_frames(city: City, out_dir: Path, seed: int) -> dict[str, Path]:
    """One folder of JPEGs per camera, named in time order, each file's modification time the
    moment of its passage (what an image-folder source takes as the frame time); returns camera
    id → folder."""
    folders = {}
    for index, passage in enumerate(city.passages):
        folder = out_dir / passage.camera_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{passage.ts:%Y%m%dT%H%M%S%f}.jpg"
        cv2.imwrite(str(path), render_scene(passage, seed + index), [cv2.IMWRITE_JPEG_QUALITY, 90])
        os.utime(path, (passage.ts.timestamp(), passage.ts.timestamp()))
        folders[passage.camera_id] = folder
    return folders
