"""One configuration object: ``gantry.yaml`` plus ``GANTRY_*`` environment overrides.

The file is found by ``--config``, else ``$GANTRY_CONFIG``, else ``./gantry.yaml`` if present,
else the built-in defaults, which describe the embedded stack on this machine. An environment
variable overrides any key, with ``__`` between levels: ``GANTRY_BROKER__BOOTSTRAP_SERVERS``,
``GANTRY_WAREHOUSE__DSN``, ``GANTRY_RAY__ADDRESS``. Everything is validated at start-up and an
error names the file, the line and the key to fix.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gantry.errors import ConfigError
from gantry.events import Plate
from gantry.files import NotUtf8, utf8_text
from gantry.sites import Site, check_sites

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
MAX_PAST_LIMIT_S = 10 * 366 * 86_400  # the widest event_time.max_past_s: ten years


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BrokerConfig(Section):
    bootstrap_servers: str | None = Field(
        default=None, description="host:port[,host:port]; empty means the embedded broker from `gantry up`"
    )
    storage: str = Field(
        default="disk",
        pattern=r"^(disk|memory|s3://.+)$",
        description="the embedded broker's storage: disk (<data_dir>/broker, survives restarts and crashes), "
        "memory (lost on every stop: tests and benchmarks only) or s3://bucket/ (credentials from AWS_* env)",
    )
    replication_factor: int = Field(
        default=1, ge=1, description="copies of each topic; 1 on one broker, 3 on a production Kafka cluster"
    )
    partitions: int = Field(default=4, ge=1, description="partitions per topic; reads are keyed by plate")
    topic_partitions: dict[str, int] = Field(default_factory=dict, description="per-topic overrides")

    def partitions_for(self, topic: str) -> int:
        return self.topic_partitions.get(topic, self.partitions)


class RayConfig(Section):
    address: str | None = Field(default=None, description="a Ray cluster address; empty starts Ray locally")


class RetentionConfig(Section):
    """Days each warehouse table keeps its rows (ClickHouse TTL)."""

    plate_reads: int = Field(default=90, ge=1)
    hotlist_hits: int = Field(default=730, ge=1)
    journeys: int = Field(default=365, ge=1)
    segment_stats: int = Field(default=1825, ge=1)
    zone_charges: int = Field(default=2555, ge=1)
    zone_days: int = Field(default=2555, ge=1)
    camera_counts_1m: int = Field(default=730, ge=1)
    audit_log: int = Field(default=3650, ge=1)
    webhook_failures: int = Field(default=730, ge=1)
    gate_decisions: int = Field(default=90, ge=1)
    parking_sessions: int = Field(default=2555, ge=1)
    parking_payments: int = Field(default=2555, ge=1)


class WarehouseConfig(Section):
    dsn: str | None = Field(
        default=None,
        description="chdb:///dir (in-process) or http(s)://user:pass@host:port/db; empty means the "
        "embedded warehouse that `gantry up` serves over the ClickHouse HTTP interface",
    )
    database: str = "gantry"
    batch_rows: int = Field(default=25_000, ge=1)
    batch_seconds: float = Field(default=1.0, gt=0)
    retention_days: RetentionConfig = RetentionConfig()


_PLATE_FORMAT = re.compile(r"([LNA](\{\d+(,\d+)?\})?)+")


def _plate_format(text: str) -> str:
    if not _PLATE_FORMAT.fullmatch(text):
        raise ValueError(f"{text!r} is not a plate format: use L (letter), N (digit) and A (either), "
                         "each optionally repeated {m} or {m,n}, e.g. LLN{1,4}")
    return text


PlateFormat = Annotated[str, AfterValidator(_plate_format)]


class RecognizeConfig(Section):
    actors: int = Field(default=1, ge=1, description="Ray actors in the recognizer pool")
    backend: Literal["onnx-cpu", "onnx-cuda", "tensorrt"] = "onnx-cpu"
    preset: Literal["fast", "accurate"] = Field(
        default="fast",
        description="fast: detection at 640 px, 960 px where nothing was read; "
        "accurate: 960 px and a grey crop of every line too (docs/recognize.md)",
    )
    regions: tuple[str, ...] = Field(
        default=("eu", "uk", "us", "br", "any"),
        description="plate formats tried, in preference order for ties; "
        "any: 4-7 letters or digits (one a digit), the fallback",
    )
    formats: dict[str, list[PlateFormat]] = Field(
        default_factory=dict, description="extra regions, or replacements of built-in ones: region -> formats"
    )
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    batch_size: int = Field(default=8, ge=1)
    max_frame_pixels: int = Field(
        default=7680 * 4320, ge=16 * 16,
        description="larger frames go to dead_letters undecoded: 8K by default, above any ANPR camera, "
        "and 100 MB decoded",
    )
    track_gap_s: float = Field(default=1.5, gt=0, description="event-time gap that ends a vehicle's track")
    track_idle_s: float = Field(default=2.0, gt=0, description="wall time after which a quiet camera's tracks close")


class Camera(Section):
    id: Name
    name: str = ""
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    direction: Literal["in", "out"] | None = None
    regions: tuple[str, ...] | None = Field(
        default=None, description="plate regions this camera sees (e.g. [us, any]); default: recognize.regions"
    )


class Segment(Section):
    """An ordered camera pair: a journey runs from ``from_camera`` to ``to_camera``."""

    id: Name
    from_camera: Name
    to_camera: Name
    distance_m: float = Field(gt=0)
    max_travel_s: float = Field(default=3600, gt=0)


class DateRange(Section):
    start: date
    end: date = Field(description="inclusive")

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError("end is before start")
        return self


class ChargingHours(Section):
    start: time
    end: time = Field(description="exclusive; 00:00 means midnight at the end of the day")


class PlateException(Section):
    """A plate exempt from, or discounted on, a zone's charge, for a period."""

    plate: Plate = Field(description="normalised at load, as every event's plate")
    valid_from: date | None = None
    valid_until: date | None = None
    percent_off: Decimal = Field(default=Decimal(100), gt=0, le=100)


class Tariff(Section):
    timezone: str = "Europe/London"
    currency: str = Field(default="GBP", pattern=r"^[A-Z]{3}$")
    hours: dict[Weekday, list[ChargingHours]] = Field(
        default_factory=lambda: {d: [ChargingHours(start=time(0), end=time(0))] for d in WEEKDAYS}
    )
    holidays: list[date] = Field(default_factory=list, description="days charged on `holiday_hours`")
    holiday_hours: list[ChargingHours] = Field(default_factory=list)
    no_charge: list[DateRange] = Field(default_factory=list)
    daily_charge: dict[str, Decimal] = Field(default_factory=lambda: {"car": Decimal(15)})
    default_class: str = "car"
    camera_classes: dict[str, str] = Field(
        default_factory=dict,
        description="a camera's vehicle type (lower case, e.g. truck) -> the class it is charged as; "
        "a type not named here is taken as a class of its own",
    )
    exemptions: list[PlateException] = Field(default_factory=list)
    discounts: list[PlateException] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (use an IANA name like Europe/London)") from None
        return name

    @model_validator(mode="after")
    def _default_class_priced(self) -> Tariff:
        if self.default_class not in self.daily_charge:
            raise ValueError(f"default_class {self.default_class!r} has no daily_charge")
        if unpriced := sorted(f"{t}: {c}" for t, c in self.camera_classes.items() if c not in self.daily_charge):
            raise ValueError(f"camera_classes name classes with no daily_charge ({', '.join(unpriced)})")
        return self


class Zone(Section):
    id: Name
    name: str = ""
    cameras: list[Name] = Field(min_length=1)
    tariff: Tariff = Tariff()


class Subscriber(Section):
    """A webhook that hears about hotlist hits; the signing secret comes from env or a file."""

    id: Name
    url: str = Field(pattern=r"^https?://")
    secret_env: str | None = None
    secret_file: Path | None = None
    lists: list[str] = Field(default_factory=list, description="empty means every list")
    max_priority: int = Field(default=5, ge=1, le=5, description="hits with priority <= this")

    def secret(self) -> SecretStr:
        if self.secret_env and self.secret_env in os.environ:
            return SecretStr(os.environ[self.secret_env])
        if self.secret_file and self.secret_file.exists():
            return SecretStr(self.secret_file.read_text().strip())
        raise ConfigError(f"subscriber {self.id}: no secret in ${self.secret_env} or {self.secret_file}")


class EventTimeConfig(Section):
    """How far a read's own time may lie from its receipt, at ingest and again in the stream jobs.

    A read outside the window is refused with the reason (400 at the endpoint, a dead letter from
    an import or in the jobs): one read timed in 2100 would otherwise move a partition's watermark,
    make every later read late and close every charging day until then. The upper limits keep any
    admitted time far from the ends of the calendar.
    """

    max_future_s: float = Field(
        default=300, ge=0, le=86_400, description="seconds a read may be timed after its receipt (camera clock drift)"
    )
    max_past_s: float = Field(
        default=3 * 86_400, ge=0, le=MAX_PAST_LIMIT_S,
        description="seconds a read may be timed before its receipt (a camera's backlog after an outage)",
    )

    def refusal(self, ts: datetime, received_at: datetime, *, past: bool = True, name: str = "ts") -> str | None:
        """Why a read timed ``ts`` and received at ``received_at`` is refused; None when it is not.

        ``past=False`` checks the future bound alone, for times taken from reads admitted earlier
        (a journey's end), which may be handled any time later; ``name`` is the field the reason names.
        """
        ahead_s = (ts - received_at).total_seconds()
        if ahead_s > self.max_future_s:
            return (f"{name}: {ts.isoformat()} is {ahead_s:.0f} s after its receipt at {received_at.isoformat()} "
                    f"(event_time.max_future_s: {self.max_future_s:g})")
        if past and -ahead_s > self.max_past_s:
            return (f"{name}: {ts.isoformat()} is {-ahead_s:.0f} s before its receipt at {received_at.isoformat()} "
                    f"(event_time.max_past_s: {self.max_past_s:g})")
        return None


class StreamJobsConfig(Section):
    workers: int = Field(default=1, ge=1, description="stream-jobs worker processes")
    dedup_window_s: float = Field(default=10, ge=0)
    allowed_lateness_s: float = Field(default=300, ge=0)
    stats_interval_s: int = Field(default=300, gt=0)
    outlier_mad_k: float = Field(default=5.0, gt=0)


class HotlistConfig(Section):
    subscribers: list[Subscriber] = Field(default_factory=list)
    webhook_retries: int = Field(default=5, ge=0)
    webhook_backoff_s: float = Field(default=0.5, gt=0)


class PrivacyConfig(Section):
    pseudonym_key_env: str = "GANTRY_PSEUDONYM_KEY"
    pseudonym_key_file: Path | None = None

    def pseudonym_key(self) -> SecretStr:
        if self.pseudonym_key_env in os.environ:
            return SecretStr(os.environ[self.pseudonym_key_env])
        if self.pseudonym_key_file and self.pseudonym_key_file.exists():
            return SecretStr(self.pseudonym_key_file.read_text().strip())
        raise ConfigError(
            f"no pseudonymisation key: set ${self.pseudonym_key_env} or privacy.pseudonym_key_file"
        )


class MotionConfig(Section):
    """Frame differencing on a small grey copy of each sampled frame: no frames while nothing moves."""

    enabled: bool = True
    pixel_delta: int = Field(default=25, ge=1, le=255, description="grey-level change that marks a pixel changed")
    min_changed: float = Field(default=0.002, gt=0, le=1, description="fraction of changed pixels that is motion")
    hold_s: float = Field(default=1.0, ge=0, description="keep sending this long after motion stops")


class StreamSource(Section):
    """Where Gantry reads a camera's video itself: rtsp://, http(s):// (MJPEG) or a video file."""

    url: str = Field(min_length=1)
    fps: float | None = Field(default=None, gt=0, description="sampling rate; empty means ingest.fps")


class IngestConfig(Section):
    streams: dict[Name, StreamSource] = Field(default_factory=dict, description="camera id -> video source")
    fps: float = Field(default=2.0, gt=0, description="frames per second sampled from video")
    jpeg_quality: int = Field(default=85, ge=1, le=100)
    max_width: int = Field(default=1920, ge=16)
    max_height: int = Field(default=1080, ge=16)
    motion: MotionConfig = MotionConfig()
    reconnect_backoff_s: float = Field(default=1.0, gt=0)
    reconnect_backoff_max_s: float = Field(default=30.0, gt=0)
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8480, ge=0, le=65535)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    ack_timeout_s: float = Field(default=5.0, gt=0, description="broker ack wait before an event is spooled")
    producers: int = Field(
        default=4, ge=1, le=64,
        description="producer connections to the broker, each carrying a share of the partitions "
        "(one request in flight per connection; see ingest/lanes.py)",
    )
    tokens_file: Path | None = Field(default=None, description="YAML mapping camera id -> token")
    tokens_env: str = Field(default="GANTRY_INGEST_TOKENS", description="env var: camera=token,camera=token")
    spool_dir: Path | None = Field(default=None, description="empty means <data_dir>/ingest-spool")
    spool_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    spool_max_events: int = Field(default=100_000, ge=1)
    snapshot_url: str | None = Field(
        default=None, description="file:///dir or s3://bucket/prefix; empty means <data_dir>/snapshots"
    )
    tls_cert_file: Path | None = Field(default=None, description="PEM certificate (chain): serve HTTPS, not HTTP")
    tls_key_file: Path | None = Field(default=None, description="PEM private key of tls_cert_file")

    @model_validator(mode="after")
    def _tls_pair(self) -> IngestConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("ingest: tls_cert_file and tls_key_file go together (set both, or neither for plain HTTP)")
        return self


ApiRole = Literal["operator", "analyst"]


class ApiRoleLimits(Section):
    """How far back one role may search (and fetch pictures), in days before now."""

    max_lookback_days: int = Field(default=90, ge=1, le=3660)


class ApiRoles(Section):
    operator: ApiRoleLimits = ApiRoleLimits()
    analyst: ApiRoleLimits = ApiRoleLimits()


class ApiConfig(Section):
    """The search and live-alert API (``gantry api serve``); tokens come from env or a file, never here.

    A token names its holder and role: ``$GANTRY_API_TOKENS`` holds ``name:role=token`` pairs
    separated by commas, ``tokens_file`` a YAML mapping ``name: {role: operator, token: ...}``.
    """

    enabled: bool = Field(default=True, description="whether `gantry up` starts the API")
    host: str = Field(default="127.0.0.1", description="loopback by default: put a TLS proxy in front to expose it")
    port: int = Field(default=8490, ge=0, le=65535)
    tokens_file: Path | None = Field(default=None, description="YAML mapping name -> {role, token}")
    tokens_env: str = Field(default="GANTRY_API_TOKENS", description="env var: name:role=token,name:role=token")
    roles: ApiRoles = ApiRoles()
    max_page_size: int = Field(default=1000, ge=1, le=100_000)
    default_page_size: int = Field(default=100, ge=1, le=100_000)

    @model_validator(mode="after")
    def _page_sizes(self) -> ApiConfig:
        if self.default_page_size > self.max_page_size:
            raise ValueError("api: default_page_size is larger than max_page_size")
        return self


class GantryConfig(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", env_prefix="GANTRY_", env_nested_delimiter="__"
    )

    data_dir: Path = Field(default=Path(".gantry"), description="logs, state and the embedded warehouse")
    broker: BrokerConfig = BrokerConfig()
    ray: RayConfig = RayConfig()
    warehouse: WarehouseConfig = WarehouseConfig()
    recognize: RecognizeConfig = RecognizeConfig()
    event_time: EventTimeConfig = EventTimeConfig()
    stream_jobs: StreamJobsConfig = StreamJobsConfig()
    hotlist: HotlistConfig = HotlistConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    ingest: IngestConfig = IngestConfig()
    api: ApiConfig = ApiConfig()
    cameras: list[Camera] = Field(default_factory=list)
    segments: list[Segment] = Field(default_factory=list)
    zones: list[Zone] = Field(default_factory=list)
    sites: list[Site] = Field(default_factory=list, description="places with barriers: gates, lists, car parks (docs/sites.md)")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the YAML file, which arrives as init arguments.
        return env_settings, init_settings

    @model_validator(mode="after")
    def _references_resolve(self) -> GantryConfig:
        camera_ids = [c.id for c in self.cameras]
        for kind, items in (("cameras", self.cameras), ("segments", self.segments), ("zones", self.zones),
                            ("hotlist.subscribers", self.hotlist.subscribers)):  # a subscriber's id names its consumer group
            ids = [i.id for i in items]
            if dupes := sorted({i for i in ids if ids.count(i) > 1}):
                raise ValueError(f"{kind}: duplicate id {', '.join(dupes)}")
        known = set(camera_ids)
        for seg in self.segments:
            for end in (seg.from_camera, seg.to_camera):
                if end not in known:
                    raise ValueError(f"segment {seg.id}: unknown camera {end!r}")
            if seg.from_camera == seg.to_camera:
                raise ValueError(f"segment {seg.id}: from_camera and to_camera are the same")
        for zone in self.zones:
            if missing := [c for c in zone.cameras if c not in known]:
                raise ValueError(f"zone {zone.id}: unknown camera {', '.join(missing)}")
        check_sites(self.sites, known)
        return self

    def camera(self, camera_id: str) -> Camera | None:
        return next((c for c in self.cameras if c.id == camera_id), None)

    def camera_regions(self) -> dict[str, tuple[str, ...]]:
        """Cameras whose plate regions differ from the global ``recognize.regions``."""
        return {c.id: c.regions for c in self.cameras if c.regions is not None}


def config_path(explicit: str | Path | None = None) -> Path | None:
    """Where the configuration comes from: --config, then $GANTRY_CONFIG, then ./gantry.yaml."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get("GANTRY_CONFIG"):
        return Path(env)
    local = Path("gantry.yaml")
    return local if local.exists() else None


def load_config(path: str | Path | None = None, **overrides: Any) -> GantryConfig:
    """Load, merge and validate; raise :class:`ConfigError` naming file, line and key."""
    source = config_path(path)
    data: dict[str, Any] = {}
    node = None
    if source is not None:
        try:
            text = utf8_text(source.read_bytes())
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read configuration: {exc.strerror}") from None
        except NotUtf8 as exc:
            raise ConfigError(f"{source}:{exc}") from None
        try:
            node = yaml.compose(text)
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the top level must be a mapping of keys")
    data.update(overrides)
    try:
        config = GantryConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, source, node)) from None
    if source is not None and not config.data_dir.is_absolute():
        config = config.model_copy(update={"data_dir": (source.parent / config.data_dir).resolve()})
    return config


def _explain(exc: ValidationError, source: Path | None, node: yaml.Node | None) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) or "(top level)"
        line = _line_of(node, err["loc"])
        where = f"{source}:{line}" if source and line else str(source or "configuration")
        lines.append(f"{where}: {key}: {err['msg']}")
    return "\n".join(lines)


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line in the YAML file of the deepest key of ``loc`` that exists there."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
