"""What the API answers, as pydantic models: the OpenAPI document at ``/docs`` is generated from them.

A plate appears in clear (``plate``, ``listed_plate``) only for operators; analysts get the keyed
pseudonyms instead (``plate_pseudonym``, ``listed_plate_pseudonym``) and never an ``image_url``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from api.auth import Principal
from gantry.config import GantryConfig
from gantry.privacy import pseudonymise


class CameraOut(BaseModel):
    id: str
    name: str = ""
    lat: float | None = None
    lon: float | None = None


class ReadOut(BaseModel):
    read_id: str
    ts: datetime
    camera: CameraOut
    plate: str | None = Field(default=None, description="operators only")
    plate_pseudonym: str | None = Field(default=None, description="analysts only")
    match: str | None = Field(default=None, description="exact or possible (one OCR-confusable glyph away)")
    confidence: float
    region: str | None = None
    direction: str | None = None
    image_url: str | None = Field(default=None, description="operators only; absent where no picture was kept")


class ReadPage(BaseModel):
    items: list[ReadOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class HitOut(BaseModel):
    hit_id: str
    read_id: str
    ts: datetime
    camera: CameraOut
    list: str
    reason: str
    priority: int
    match: str
    confidence: float
    plate: str | None = None
    listed_plate: str | None = None
    plate_pseudonym: str | None = None
    listed_plate_pseudonym: str | None = None
    image_url: str | None = None


class HitPage(BaseModel):
    items: list[HitOut]
    next_cursor: str | None


class CameraVisit(BaseModel):
    camera: CameraOut
    first_seen: datetime
    last_seen: datetime
    reads: int


class Timeline(BaseModel):
    plate: str
    match: str
    sightings: list[ReadOut] = Field(description="oldest first")
    cameras: list[CameraVisit] = Field(description="per camera, in the order first seen")
    next_cursor: str | None


class Presenter:
    """Turns warehouse rows into answers for one principal: plates or pseudonyms, pictures or not."""

    def __init__(self, config: GantryConfig, pseudonym_key: str) -> None:
        self._cameras = {c.id: CameraOut(id=c.id, name=c.name or c.id, lat=c.lat, lon=c.lon) for c in config.cameras}
        self._key = pseudonym_key

    def camera(self, camera_id: str) -> CameraOut:
        return self._cameras.get(camera_id) or CameraOut(id=camera_id, name=camera_id)

    def cameras(self) -> list[CameraOut]:
        return list(self._cameras.values())

    def pseudonym(self, plate: str) -> str:
        return pseudonymise(plate, self._key)

    def read(self, row: dict, who: Principal, searched: str | None = None) -> ReadOut:
        out = ReadOut(
            read_id=row["read_id"], ts=_time(row["ts_ms"]), camera=self.camera(row["camera_id"]),
            confidence=round(float(row["confidence"]), 4), region=row["region"], direction=row["direction"],
            match=None if searched is None else ("exact" if row["plate"] == searched else "possible"),
        )  # fmt: skip
        if who.sees_plates:
            out.plate = row["plate"]
            out.image_url = f"/v1/reads/{row['read_id']}/image" if row["image_ref"] else None
        else:
            out.plate_pseudonym = self.pseudonym(row["plate"])
        return out

    def hit(self, row: dict, who: Principal) -> HitOut:
        out = HitOut(
            hit_id=row["hit_id"], read_id=row["read_id"], ts=_time(row["ts_ms"]), camera=self.camera(row["camera_id"]),
            list=row["list"], reason=row["reason"], priority=int(row["priority"]), match=row["match"],
            confidence=round(float(row["confidence"]), 4),
        )  # fmt: skip
        if who.sees_plates:
            out.plate, out.listed_plate = row["plate"], row["listed_plate"]
            out.image_url = f"/v1/reads/{row['read_id']}/image"
        else:
            out.plate_pseudonym = self.pseudonym(row["plate"])
            out.listed_plate_pseudonym = self.pseudonym(row["listed_plate"])
        return out


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
