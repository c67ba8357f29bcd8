"""The plate-read formats edge cameras speak, all mapped to one :class:`EdgeEvent`, then a PlateRead.

Three dialects reach ``gantry ingest serve``:

* Gantry's own JSON (``POST /v1/reads``), strict: unknown fields are errors;
* Hikvision-style ISAPI ``EventNotificationAlert`` XML with an ``ANPR`` block, alone or in a
  multipart body with the plate and overview pictures;
* the query-parameter form of access-control devices: ``licensePlate``, ``ap`` (0 entry, 1 exit),
  ``session`` and an optional JPEG body.

The parsers are pure functions: bytes in, an event or an :class:`EdgeFormatError` naming the field
out, so every dialect is tested without a server. Every free-text field is capped, in every
dialect alike (an id at 128 characters, the plate as sent at 32, the region at 16), so a device
cannot put a megabyte into a read. The same physical pass read by any dialect maps
to the same PlateRead: the read_id comes from the camera's own event id when it sends one, else
from camera, time and plate, so a device that retries does not create a second read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from pydantic import AwareDatetime, Base64Bytes, BaseModel, ConfigDict, Field, ValidationError

from gantry.events import PlateRead, normalise_plate
from gantry.ids import stable_id

Direction = Literal["in", "out"]
SnapshotKind = Literal["plate", "overview"]
MAX_ID = 128  # camera and event ids
MAX_PLATE_TEXT = 32  # a plate as sent, separators included
MAX_REGION = 16
MAX_WORD = 64  # other short fields: times, event types
_HIKVISION_DIRECTIONS: dict[str, Direction] = {"forward": "in", "reverse": "out"}
_ACCESS_DIRECTIONS: dict[str, Direction] = {"0": "in", "1": "out"}
MAX_CLASS = 32  # a reported vehicle type
_NO_VEHICLE_TYPE = frozenset({"", "vehicle", "unknown"})  # Hikvision's words for "not classified"


class EdgeFormatError(ValueError):
    """The request does not follow its format; the message names the field (answered with 400)."""


@dataclass(frozen=True)
class EdgeEvent:
    plate: str
    ts: datetime | None = None  # None: the device sent no time, the time of receipt is used
    camera_id: str | None = None  # only when the device names its camera
    event_id: str | None = None
    confidence: float = 1.0  # a device that reports no confidence vouches for its read
    region: str | None = None
    direction: Direction | None = None
    vehicle_class: str | None = None  # the vehicle type the device reported, lower-case
    snapshots: dict[SnapshotKind, bytes] = field(default_factory=dict)
    ignored: str | None = None  # a well-formed notification that is not a plate read (heartbeat...)


@dataclass(frozen=True)
class Part:
    """One part of a multipart body (or the whole body of a plain request)."""

    content_type: str
    data: bytes
    name: str = ""
    filename: str = ""


def _capped(text: str | None, field_name: str, limit: int) -> str | None:
    if text is not None and len(text) > limit:
        raise EdgeFormatError(f"{field_name}: at most {limit} characters, got {len(text)}")
    return text


def _plate(text: str | None, field_name: str) -> str:
    _capped(text, field_name, MAX_PLATE_TEXT)
    try:
        plate = normalise_plate(text or "")
    except ValueError as exc:
        raise EdgeFormatError(f"{field_name}: {exc}, in {text!r}") from None
    if not 1 <= len(plate) <= 12:
        raise EdgeFormatError(f"{field_name}: a plate has 1 to 12 letters or digits, got {text!r}")
    return plate


# --- Gantry JSON -------------------------------------------------------------------------------


class GantryEdgeRead(BaseModel):
    """Gantry's own edge-camera schema (JSON); pictures travel base64-encoded."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    camera_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID)
    event_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID)
    ts: AwareDatetime
    plate: str = Field(min_length=1, max_length=MAX_PLATE_TEXT)
    confidence: float = Field(default=1.0, ge=0, le=1)
    region: str | None = Field(default=None, max_length=MAX_REGION)
    direction: Direction | None = None
    vehicle_class: str | None = Field(default=None, max_length=MAX_CLASS)
    plate_image: Base64Bytes | None = None
    overview_image: Base64Bytes | None = None


def parse_gantry_json(body: bytes) -> EdgeEvent:
    try:
        read = GantryEdgeRead.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        raise EdgeFormatError(f"{where}: {first['msg']}") from None
    snapshots = {k: v for k, v in (("plate", read.plate_image), ("overview", read.overview_image)) if v}
    return EdgeEvent(
        plate=_plate(read.plate, "plate"),
        ts=read.ts,
        camera_id=read.camera_id,
        event_id=read.event_id,
        confidence=read.confidence,
        region=read.region,
        direction=read.direction,
        vehicle_class=_vehicle_class(read.vehicle_class),
        snapshots=_checked_jpegs(snapshots),
    )


# --- Hikvision ISAPI ---------------------------------------------------------------------------


def parse_hikvision(parts: list[Part]) -> EdgeEvent:
    """An ``EventNotificationAlert`` XML part and any JPEG parts (plate and overview pictures)."""
    xml_parts = [p for p in parts if _is_xml(p)]
    if len(xml_parts) != 1:
        raise EdgeFormatError(f"EventNotificationAlert: expected one XML part, found {len(xml_parts)}")
    alert = _parse_xml(xml_parts[0].data)
    event_type = _capped(_text(alert, "eventType"), "EventNotificationAlert.eventType", MAX_WORD)
    if event_type is None:
        raise EdgeFormatError("EventNotificationAlert.eventType: missing")
    if event_type.upper() != "ANPR":
        return EdgeEvent(plate="", ignored=f"eventType {event_type}")
    anpr = _child(alert, "ANPR")
    if anpr is None:
        raise EdgeFormatError("EventNotificationAlert.ANPR: missing")
    return EdgeEvent(
        plate=_plate(_text(anpr, "licensePlate"), "ANPR.licensePlate"),
        ts=_hikvision_time(_capped(_text(alert, "dateTime"), "EventNotificationAlert.dateTime", MAX_WORD)),
        event_id=_capped(_text(alert, "UUID"), "EventNotificationAlert.UUID", MAX_ID)
        or _capped(_text(anpr, "UUID"), "ANPR.UUID", MAX_ID),
        confidence=_hikvision_confidence(_capped(_text(anpr, "confidenceLevel"), "ANPR.confidenceLevel", MAX_WORD)),
        region=_capped(_text(anpr, "country"), "ANPR.country", MAX_REGION)
        or _capped(_text(anpr, "region"), "ANPR.region", MAX_REGION),
        direction=_HIKVISION_DIRECTIONS.get((_text(anpr, "direction") or "").lower()),
        vehicle_class=_vehicle_class(_capped(_text(anpr, "vehicleType"), "ANPR.vehicleType", MAX_CLASS)),
        snapshots=_checked_jpegs(_hikvision_pictures(parts)),
    )


def _is_xml(part: Part) -> bool:
    named_xml = part.filename.lower().endswith(".xml") or part.name.lower().endswith(".xml")
    return "xml" in part.content_type.lower() or named_xml


def _parse_xml(data: bytes) -> Element:
    try:
        root = fromstring(data)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise EdgeFormatError(f"EventNotificationAlert: not well-formed XML ({exc})") from None
    except LookupError as exc:  # the XML declaration names an encoding Python does not know
        raise EdgeFormatError(f"EventNotificationAlert: {exc} in the XML declaration") from None
    if _local(root.tag) != "EventNotificationAlert":
        raise EdgeFormatError(f"EventNotificationAlert: the root element is {_local(root.tag)!r}")
    return root


def _local(tag: str) -> str:
    """The tag without its namespace: cameras disagree on the ISAPI namespace URI."""
    return tag.rsplit("}", 1)[-1]


def _child(parent: Element, name: str) -> Element | None:
    return next((c for c in parent if _local(c.tag) == name), None)


def _text(parent: Element, name: str) -> str | None:
    child = _child(parent, name)
    text = (child.text or "").strip() if child is not None else ""
    return text or None


def _hikvision_time(text: str | None) -> datetime:
    if text is None:
        raise EdgeFormatError("EventNotificationAlert.dateTime: missing")
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise EdgeFormatError(f"EventNotificationAlert.dateTime: not an ISO 8601 time: {text!r}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _hikvision_confidence(text: str | None) -> float:
    if text is None:
        return 1.0
    try:
        level = float(text)
    except ValueError:
        raise EdgeFormatError(f"ANPR.confidenceLevel: not a number: {text!r}") from None
    if not 0 <= level <= 100:
        raise EdgeFormatError(f"ANPR.confidenceLevel: must be 0 to 100, got {text}")
    return level / 100


def _hikvision_pictures(parts: list[Part]) -> dict[SnapshotKind, bytes]:
    pictures: dict[SnapshotKind, bytes] = {}
    for part in parts:
        if not part.content_type.lower().startswith("image/"):
            continue
        label = f"{part.name} {part.filename}".lower()
        kind: SnapshotKind = "plate" if "plate" in label else "overview"
        pictures.setdefault(kind, part.data)
    return pictures


# --- Access-control query parameters -----------------------------------------------------------


def parse_access_query(query: Mapping[str, str], snapshot: bytes | None) -> EdgeEvent:
    """``?licensePlate=AB12CDE&ap=0&session=...``; other parameters are the device's own business."""
    ap = _capped(query.get("ap"), "ap", MAX_WORD)
    if ap is not None and ap not in _ACCESS_DIRECTIONS:
        raise EdgeFormatError(f"ap: must be 0 (entry) or 1 (exit), got {ap!r}")
    ts = None
    if time_text := _capped(query.get("time"), "time", MAX_WORD):
        try:
            ts = datetime.fromisoformat(time_text)
        except ValueError:
            raise EdgeFormatError(f"time: not an ISO 8601 time: {time_text!r}") from None
        ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return EdgeEvent(
        plate=_plate(query.get("licensePlate"), "licensePlate"),
        ts=ts,
        event_id=_capped(query.get("session"), "session", MAX_ID) or None,
        direction=_ACCESS_DIRECTIONS.get(ap) if ap is not None else None,
        snapshots=_checked_jpegs({"overview": snapshot} if snapshot else {}),
    )


# --- Common ------------------------------------------------------------------------------------


def _vehicle_class(reported: str | None) -> str | None:
    """The reported vehicle type, lower-case, or None where the device did not classify the
    vehicle (Hikvision sends ``vehicle`` for that)."""
    cls = (reported or "").strip().lower()
    return None if cls in _NO_VEHICLE_TYPE else cls


def _checked_jpegs(snapshots: dict[SnapshotKind, bytes]) -> dict[SnapshotKind, bytes]:
    for kind, data in snapshots.items():
        if not data.startswith(b"\xff\xd8"):
            raise EdgeFormatError(f"{kind} picture: not a JPEG image")
    return snapshots


def read_id_of(event: EdgeEvent, camera_id: str, ts: datetime) -> str:
    if event.event_id:
        return stable_id("edge", camera_id, event.event_id)
    return stable_id("edge", camera_id, ts.astimezone(UTC).isoformat(timespec="milliseconds"), event.plate)


def to_plate_read(
    event: EdgeEvent, camera_id: str, received_at: datetime, image_ref: str | None
) -> PlateRead:
    ts = event.ts or received_at
    return PlateRead(
        read_id=read_id_of(event, camera_id, ts),
        camera_id=camera_id,
        ts=ts,
        plate=event.plate,
        confidence=event.confidence,
        region=event.region,
        direction=event.direction,
        image_ref=image_ref,
        vehicle_class=event.vehicle_class,
    )
