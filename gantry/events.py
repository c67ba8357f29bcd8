"""The event schemas every stage shares, and their JSON wire format.

Stages never import each other; they agree on these models and on the topics in
:mod:`gantry.topics`. Every event carries a schema version ``v`` so a reader can tell an old
message from a malformed one. Timestamps are UTC with millisecond precision.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import warnings
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

from PIL import Image, UnidentifiedImageError
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import to_json

from gantry.errors import InvalidEvent

SCHEMA_VERSION = 1
_NOT_PLATE_CHARS = re.compile(r"[^A-Z0-9]")
# The Cyrillic and Greek letters that plates use are those drawn like Latin ones (Russian,
# Ukrainian and Bulgarian plates, Greek plates): a camera may report either script for one plate.
_LOOK_ALIKES = str.maketrans(
    "АВЕКМНОРСТУХавекмнорстух" "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧαβεζηικμνορτυχ",
    "ABEKMHOPCTYXABEKMHOPCTYX" "ABEZHIKMNOPTYXABEZHIKMNOPTYX",
)


def normalise_plate(text: str) -> str:
    """Capitals and digits only: 'ab-12 cd' and 'AB12CD' are the same plate, and so are Cyrillic
    'АВ123' and Latin 'AB123'. Any other letter or digit outside ASCII raises ValueError: dropping
    it would make another plate of it ('京A12345' is not 'A12345')."""
    if not text.isascii():
        text = text.translate(_LOOK_ALIKES)
        foreign = sorted({c for c in text if not c.isascii() and unicodedata.category(c)[0] in "LNM"})
        if foreign:
            raise ValueError(f"{', '.join(map(repr, foreign))}: not a plate letter or digit (Latin letters, "
                             "digits, and the Cyrillic and Greek letters drawn like Latin ones)")
    return _NOT_PLATE_CHARS.sub("", text.upper())


def _utc_ms(ts: datetime) -> datetime:
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)
    if ts.microsecond % 1000:
        ts = ts.replace(microsecond=ts.microsecond // 1000 * 1000)
    return ts


def _plate(text: str) -> str:
    plate = normalise_plate(text)
    if not 1 <= len(plate) <= 12:
        raise ValueError("a plate has 1 to 12 letters or digits after normalisation")
    return plate


UtcMs = Annotated[AwareDatetime, AfterValidator(_utc_ms)]
Plate = Annotated[str, AfterValidator(_plate)]
Id = Annotated[str, Field(min_length=1, max_length=128)]
ClassSource = Literal["register", "camera", "default"]


def now_utc() -> datetime:
    return _utc_ms(datetime.now(UTC))


class Event(BaseModel):
    """Base of every message: frozen, strict about unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    v: Literal[1] = SCHEMA_VERSION


class BoundingBox(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    w: int = Field(gt=0)
    h: int = Field(gt=0)


class Frame(Event):
    """One camera image on topic ``frames``; the JPEG travels base64-encoded in the JSON.

    ``width`` and ``height`` are the JPEG's own, as its header says: a reader can judge a frame's
    size (:attr:`pixels`) before decoding it, which is what stops a frame of a few hundred bytes
    that declares 32,000 × 32,000 pixels from making its decoder allocate gigabytes.
    """

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")
    camera_id: Id
    ts: UtcMs
    frame_id: Id
    jpeg: bytes
    width: int = Field(gt=0)
    height: int = Field(gt=0)

    @field_validator("jpeg")
    @classmethod
    def _is_jpeg(cls, data: bytes) -> bytes:
        if not data.startswith(b"\xff\xd8"):
            raise ValueError("not a JPEG image (missing SOI marker)")
        return data

    @model_validator(mode="after")
    def _size_is_the_jpegs(self) -> Frame:
        width, height = jpeg_size(self.jpeg)
        if (width, height) != (self.width, self.height):
            raise ValueError(f"the JPEG is {width}x{height} pixels, the frame says {self.width}x{self.height}")
        return self

    @property
    def pixels(self) -> int:
        return self.width * self.height


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from a JPEG's header, without decoding its pixels; ValueError if the header
    cannot be read. Pillow's own limit on pixels is not applied here: the size is what is asked."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
                return image.size
        except Image.DecompressionBombError:
            raise ValueError(f"the JPEG declares more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels") from None
        except (UnidentifiedImageError, OSError, SyntaxError):
            raise ValueError("not a JPEG image (its header cannot be read)") from None


class PlateRead(Event):
    """One plate read by a camera, on topic ``plate_reads``.

    ``read_id`` is the idempotency key everywhere downstream: a read delivered twice is one read.
    """

    read_id: Id
    camera_id: Id
    ts: UtcMs
    plate: Plate
    confidence: float = Field(ge=0.0, le=1.0)
    region: str | None = None
    direction: Literal["in", "out"] | None = None
    bbox: BoundingBox | None = None
    frame_id: str | None = None
    """The frame the recogniser read the plate on; None for a read a camera sent (the edge
    endpoint, an import). The video-gates job decides only reads with one: the endpoint decided
    the others in their request (docs/sites.md)."""
    image_ref: str | None = None
    vehicle_class: str | None = Field(default=None, min_length=1, max_length=32)
    """The vehicle type the camera reported (Hikvision ``vehicleType``), lower-case; None when it
    reported none. Charges trust a zone operator's vehicle register before it (docs/stream_jobs.md)."""


class HotlistEntry(Event):
    """A wanted plate, on the compacted topic ``hotlist`` keyed by plate and list."""

    plate: Plate
    list: Id
    reason: str = ""
    priority: int = Field(default=3, ge=1, le=5, description="1 is the most urgent")
    valid_from: UtcMs | None = None
    valid_until: UtcMs | None = None
    holder: Id | None = Field(default=None, description="who the plate belongs to (2N's user uuid): one holder, several plates")

    @property
    def key(self) -> str:
        return f"{self.list}:{self.plate}"

    def valid_at(self, ts: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= ts) and (
            self.valid_until is None or ts < self.valid_until
        )


class HotlistHit(Event):
    """A read of a listed plate, on topic ``hotlist_hits``; ``hit_id`` is stable per read and entry."""

    hit_id: Id
    read_id: Id
    camera_id: Id
    ts: UtcMs
    plate: Plate
    listed_plate: Plate
    list: Id
    reason: str = ""
    priority: int = Field(ge=1, le=5)
    match: Literal["exact", "possible"]
    confidence: float = Field(ge=0.0, le=1.0)
    image_ref: str | None = None
    """The read's picture (its ``image_ref``): the evidence an officer looks at before acting."""


class Journey(Event):
    """A plate seen at a segment's from-camera and then its to-camera, on topic ``journeys``.

    The plate is pseudonymised (keyed hash) before the event leaves the job.
    """

    journey_id: Id
    segment_id: Id
    plate_pseudonym: Id
    start_ts: UtcMs
    end_ts: UtcMs
    travel_s: float = Field(ge=0)
    speed_kmh: float = Field(ge=0)
    from_read_id: Id
    to_read_id: Id
    outlier: bool = False
    # A read that arrived out of order showed the journey's passage began earlier: the journey is
    # replaced by one with another id (and travel time) and must no longer count.
    withdrawn: bool = False


class SegmentStats(Event):
    """Travel-time statistics of one segment over one event-time interval, on ``segment_stats``."""

    stats_id: Id
    segment_id: Id
    interval_start: UtcMs
    interval_end: UtcMs
    count: int = Field(ge=0, description="journeys used for the statistics (outliers excluded)")
    outliers: int = Field(ge=0)
    median_travel_s: float | None = None
    p85_travel_s: float | None = None
    mean_speed_kmh: float | None = None


class ZoneCharge(Event):
    """The one charge of a plate in a zone on a charging day, on ``zone_charges``.

    It is re-emitted with a higher ``version`` when later reads change it (read_count, an earlier
    first read); the warehouse keeps the highest version per ``charge_id``.
    """

    charge_id: Id
    zone_id: Id
    plate: Plate
    charge_date: date
    vehicle_class: str
    status: Literal["charged", "discounted", "exempt"]
    amount: Decimal = Field(ge=0, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    first_read_ts: UtcMs
    first_camera_id: Id
    first_read_id: Id
    read_count: int = Field(ge=1)
    version: int = Field(ge=1)
    vehicle_class_source: ClassSource = "default"
    """Where ``vehicle_class`` came from: the zone operator's vehicle register, the class a camera
    reported, or the tariff's ``default_class`` (neither knew a class the tariff prices)."""
    image_ref: str | None = None
    """The first read's picture: the charge's evidence in a dispute, kept as long as the charge."""


class ValidDays(Event):
    """An entry valid on the local charging days from ``valid_from`` to ``valid_until``, both
    included (open where not given), like a tariff's exemptions."""

    valid_from: date | None = None
    valid_until: date | None = None

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )

    @field_validator("valid_until")
    @classmethod
    def _not_before_start(cls, valid_until: date | None, info: ValidationInfo) -> date | None:
        valid_from = info.data.get("valid_from")
        if valid_from is not None and valid_until is not None and valid_until < valid_from:
            raise ValueError(f"{valid_until} is before valid_from {valid_from}")
        return valid_until


class RegisteredVehicle(ValidDays):
    """A plate's class in the zone operator's vehicle register (``gantry vehicles import``), on the
    compacted topic ``vehicles`` keyed ``plate:valid_from``: a plate can hold successive classes."""

    plate: Plate
    vehicle_class: Id

    @property
    def key(self) -> str:
        return f"{self.plate}:{self.valid_from.isoformat() if self.valid_from else ''}"


class ChargeConcession(ValidDays):
    """An exemption from, or a discount on, a zone's daily charge (``gantry concessions import``),
    on the compacted topic ``charge_concessions`` keyed ``zone:kind:plate:valid_from``: the
    importable form of a tariff's ``exemptions`` and ``discounts``, applied with them.
    ``percent_off`` is a discount's (an exemption is the whole charge)."""

    zone_id: Id
    plate: Plate
    kind: Literal["exemption", "discount"]
    percent_off: Decimal = Field(default=Decimal(100), gt=0, le=100)

    @property
    def key(self) -> str:
        return f"{self.zone_id}:{self.kind}:{self.plate}:{self.valid_from.isoformat() if self.valid_from else ''}"


class ZoneDay(Event):
    """A closed charging day of a zone, on ``zone_days``: the billing export waits for it."""

    zone_id: Id
    charge_date: date
    charges: int = Field(ge=0)
    total_amount: Decimal = Field(ge=0, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    closed_at: UtcMs


class ZoneDayPart(Event):
    """One ``plate_reads`` partition's share of a zone's charging day (internal to the stream jobs).

    Sent once that partition's reads are past the day's end plus ``allowed_lateness_s``: from
    then on its charges for the day cannot change, so the day closes when every partition's
    part has come, however unevenly the partitions progress.
    """

    zone_id: Id
    charge_date: date
    partition: int = Field(ge=0)
    charges: int = Field(ge=0)
    total_amount: Decimal = Field(ge=0, decimal_places=2)


class DeadLetter(Event):
    """A message a reader could not use, with the reason, on topic ``dead_letters``."""

    source_topic: str
    partition: int | None = None
    offset: int | None = None
    stage: str
    reason: str
    payload: str
    ts: UtcMs = Field(default_factory=now_utc)


E = TypeVar("E", bound=Event)


def encode(event: Event) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()


def decode(model: type[E], raw: bytes | str | None) -> E:
    """Parse and validate one message; :class:`InvalidEvent` says why it was rejected."""
    if raw is None:
        raise InvalidEvent(f"empty message where a {model.__name__} was expected")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(message)"
        raise InvalidEvent(f"invalid {model.__name__}: {field}: {first['msg']}") from None


DEAD_LETTER_MAX_BYTES = 1_000_000
"""The most a dead letter's JSON may take: the smallest message limit on its way, aiokafka's default
``max_request_size`` of 1,048,576 (the stream jobs send their dead letters through aiokafka
producers; Kafka's own default ``message.max.bytes`` is 1,048,588), less room for the record's framing."""
_FRAMING_BYTES = 1024
_REASON_CHARS = 8192


def dead_letter(
    raw: bytes | str | None,
    reason: str,
    *,
    stage: str,
    source_topic: str,
    partition: int | None = None,
    offset: int | None = None,
) -> DeadLetter:
    """Wrap a rejected message so nothing is lost: the payload travels with the reason.

    A letter must itself fit in a message: one the broker refuses is not acknowledged, and a
    stage that commits only after its dead letters are acknowledged reads the message it rejects
    again and again. The payload is copied with escaping (undecodable bytes as ``\\xff``, then
    JSON's), so a message near the limit makes a letter several times over it. Such a payload is
    cut to fit (:data:`DEAD_LETTER_MAX_BYTES`) and ends with the original's length in bytes and
    its SHA-256, to recognise it by while it is still at its offset in ``source_topic``; the
    reason is kept whole up to ``_REASON_CHARS`` characters.
    """
    if isinstance(raw, bytes):
        payload = raw.decode("utf-8", errors="backslashreplace")
    else:
        payload = raw or ""
    if len(reason) > _REASON_CHARS:
        reason = reason[:_REASON_CHARS] + "..."
    letter = DeadLetter(
        source_topic=source_topic,
        partition=partition,
        offset=offset,
        stage=stage,
        reason=reason,
        payload=payload,
    )
    budget = DEAD_LETTER_MAX_BYTES - _FRAMING_BYTES
    if len(encode(letter)) <= budget:
        return letter
    original = raw if isinstance(raw, bytes) else payload.encode("utf-8", errors="surrogatepass")
    digest = hashlib.sha256(original).hexdigest()
    marker = f"...[truncated: the original payload is {len(original)} bytes, sha256 {digest}]"
    room = budget - len(encode(letter.model_copy(update={"payload": marker})))
    return letter.model_copy(update={"payload": _json_prefix(payload, room) + marker})


def _json_prefix(text: str, room: int) -> str:
    """The longest start of ``text`` whose JSON escaping takes at most ``room`` bytes (a few tries:
    each cut scales by how far the last one overshot)."""
    cut = min(len(text), max(room, 0))
    while cut > 0:
        size = len(to_json(text[:cut])) - 2  # without the quotes
        if size <= room:
            return text[:cut]
        cut = min(cut - 1, cut * room // size)
    return ""
