"""Data and helpers for the API tests: a small city relative to now, pictures, tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from gantry.events import HotlistHit, PlateRead
from gantry.ids import stable_id

REPO = Path(__file__).resolve().parents[3]
OPERATOR, ANALYST = "op-token-" + uuid.uuid4().hex, "an-token-" + uuid.uuid4().hex
PSEUDONYM_KEY = "test-pseudonym-key"
NOW = datetime.now(UTC).replace(microsecond=0)
CAMERAS = [
    {"id": "cam1", "name": "High Street North", "lat": 51.5074, "lon": -0.1278},
    {"id": "cam2", "name": "Bridge Road", "lat": 51.5010, "lon": -0.1180},
    {"id": "cam3", "name": "Ring Road East", "lat": 51.5120, "lon": -0.1040},
]


def plate_picture(plate: str, camera: str) -> bytes:
    """A small overview picture with the plate drawn on it, like a camera's evidence frame."""
    img = np.full((240, 400, 3), (60, 52, 44), np.uint8)
    cv2.rectangle(img, (0, 150), (400, 240), (40, 40, 40), -1)  # road
    cv2.rectangle(img, (110, 70), (290, 170), (120, 90, 200), -1)  # car
    cv2.rectangle(img, (135, 130), (265, 160), (10, 217, 245), -1)  # yellow plate
    cv2.putText(img, plate, (140, 154), cv2.FONT_HERSHEY_SIMPLEX, 0.75, (20, 20, 20), 2)
    cv2.putText(img, camera, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1)
    ok, jpeg = cv2.imencode(".jpg", img)
    assert ok
    return jpeg.tobytes()


def read(plate: str, camera: str, ago: timedelta, n: int = 0, image: str | None = None) -> PlateRead:
    return PlateRead(read_id=stable_id(plate, camera, n, ago.total_seconds()), camera_id=camera, ts=NOW - ago,
                     plate=plate, confidence=0.91, image_ref=image)  # fmt: skip


def hit_of(r: PlateRead, listed: str, list_: str, priority: int) -> HotlistHit:
    return HotlistHit(hit_id=stable_id(r.read_id, list_), read_id=r.read_id, camera_id=r.camera_id, ts=r.ts,
                      plate=r.plate, listed_plate=listed, list=list_, reason=f"{list_} vehicle", priority=priority,
                      match="exact" if listed == r.plate else "possible", confidence=r.confidence)  # fmt: skip


def insert(client, table: str, events: list) -> None:
    rows = [e.model_dump(mode="json") for e in events]
    for row in rows:
        row["v"] = 1
        if "bbox" in row:
            row["bbox"] = (0, 0, 0, 0)
    columns = list(rows[0])
    client.insert(table, [[row[c] if c not in ("ts",) else datetime.fromisoformat(row[c]) for c in columns]
                          for row in rows], column_names=columns)  # fmt: skip
