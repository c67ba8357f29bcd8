"""Configuration of sites, their gates and car parks: part of the one :class:`gantry.config.GantryConfig`.

A *site* is a place with barriers: its gates are cameras (or access units) that face entry or
exit, its lists say which hotlist lists open the barrier and which refuse it, each allow list
with its own opening hours, and ``unknown_plates`` says what a plate on no list gets. A site may
hold *car parks*: a gate's car park is where its entries and exits are paired into parking
sessions, priced by the car park's tariff in its own time zone.

Everything is checked when the configuration loads (a gate on an unknown camera, a list both
allowing and denying, a band out of order), with the key to fix in the message.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
UnknownPolicy = Literal["deny", "allow", "flag"]
Money = Annotated[Decimal, Field(ge=0, decimal_places=2)]


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name like Europe/London)") from None
    return name


TimeZone = Annotated[str, AfterValidator(_time_zone)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpeningHours(_Section):
    """One stretch of a local day; ``end`` 00:00 means midnight at the end of the day."""

    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, local time")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, exclusive; 00:00 is midnight")

    @model_validator(mode="after")
    def _ordered(self) -> OpeningHours:
        if self.end != "00:00" and self.end <= self.start:
            raise ValueError(f"end {self.end} is not after start {self.start} (00:00 means midnight)")
        return self

    def covers(self, clock: str) -> bool:
        """Whether the local wall-clock time ``clock`` (HH:MM:SS or HH:MM) falls in these hours."""
        return self.start <= clock[:5] and (self.end == "00:00" or clock[:5] < self.end)


class SiteList(_Section):
    """A hotlist list with a meaning at this site: it opens the barrier or refuses it."""

    list: Name
    access: Literal["allow", "deny"]
    hours: dict[Weekday, list[OpeningHours]] | None = Field(
        default=None, description="local opening hours per weekday (a day left out is closed); empty: always"
    )
    free_parking: bool = Field(default=False, description="plates on this list park free (permits, staff)")

    @model_validator(mode="after")
    def _hours_on_allow_lists(self) -> SiteList:
        if self.hours is not None and self.access == "deny":
            raise ValueError(f"list {self.list}: hours only apply to allow lists (a deny list always refuses)")
        return self


class Gate(_Section):
    camera: Name = Field(description="the camera or access unit id that reads plates at this barrier")
    direction: Literal["entry", "exit"]
    car_park: Name | None = Field(default=None, description="the car park whose sessions this gate opens or closes")


class Band(_Section):
    up_to_minutes: int = Field(gt=0)
    price: Money


class ParkingTariff(_Section):
    """What a stay costs: free minutes, then per started hour or by bands, capped per local day.

    Prices are in ``currency``; a stay longer than the last band repeats the bands. The daily cap
    bounds the fee to ``daily_cap`` times the local calendar days the stay touches. A stay whose
    exit was never read (the plate entered again) costs ``missed_exit_fee``; an exit read with no
    entry before it costs ``missed_entry_fee``; both default to the daily cap.
    """

    currency: str = Field(default="GBP", pattern=r"^[A-Z]{3}$")
    free_minutes: int = Field(default=0, ge=0)
    per_hour: Money | None = None
    bands: list[Band] = Field(default_factory=list)
    daily_cap: Money | None = None
    missed_exit_fee: Money | None = None
    missed_entry_fee: Money | None = None
    exit_grace_minutes: int = Field(default=15, ge=0, description="time to reach the exit after paying")

    @model_validator(mode="after")
    def _one_price_rule(self) -> ParkingTariff:
        if (self.per_hour is None) == (not self.bands):
            raise ValueError("tariff: give either per_hour or bands (exactly one)")
        limits = [b.up_to_minutes for b in self.bands]
        if limits != sorted(set(limits)):
            raise ValueError(f"tariff.bands: up_to_minutes must increase, got {limits}")
        if self.daily_cap is None and (self.missed_exit_fee is None or self.missed_entry_fee is None):
            raise ValueError("tariff: without a daily_cap, set missed_exit_fee and missed_entry_fee")
        return self

    @property
    def lost_exit(self) -> Decimal:
        return self.missed_exit_fee if self.missed_exit_fee is not None else self.daily_cap  # type: ignore[return-value]

    @property
    def lost_entry(self) -> Decimal:
        return self.missed_entry_fee if self.missed_entry_fee is not None else self.daily_cap  # type: ignore[return-value]


class CarPark(_Section):
    id: Name
    name: str = ""
    capacity: int = Field(gt=0)
    timezone: TimeZone = "Europe/London"
    tariff: ParkingTariff
    max_stay_hours: float = Field(default=24, gt=0, description="an open session older than this is an overstay")


class Site(_Section):
    id: Name
    name: str = ""
    timezone: TimeZone = Field(default="Europe/London", description="the local time of the lists' hours")
    gates: list[Gate] = Field(min_length=1)
    lists: list[SiteList] = Field(default_factory=list)
    unknown_plates: UnknownPolicy = Field(
        default="deny", description="a plate on no list: deny, allow, or flag (allow and mark the decision)"
    )
    fuzzy_match: bool = Field(
        default=False, description="also match a list entry one OCR-confusable glyph away (O/0, I/1, B/8, S/5, Z/2)"
    )
    one_inside_per_holder: bool = Field(
        default=False, description="refuse a holder's second plate while another of theirs is inside"
    )
    car_parks: list[CarPark] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Site:
        names = [entry.list for entry in self.lists]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"site {self.id}: list {', '.join(dupes)} named twice")
        parks = {p.id for p in self.car_parks}
        for gate in self.gates:
            if gate.car_park is not None and gate.car_park not in parks:
                raise ValueError(f"site {self.id}: gate {gate.camera}: unknown car_park {gate.car_park!r}")
        cameras = [g.camera for g in self.gates]
        if dupes := sorted({c for c in cameras if cameras.count(c) > 1}):
            raise ValueError(f"site {self.id}: camera {', '.join(dupes)} is on two gates")
        for park in self.car_parks:
            directions = {g.direction for g in self.gates if g.car_park == park.id}
            if directions != {"entry", "exit"}:
                raise ValueError(f"site {self.id}: car park {park.id} needs an entry gate and an exit gate")
        return self

    def car_park(self, car_park_id: str | None) -> CarPark | None:
        return next((p for p in self.car_parks if p.id == car_park_id), None)

    def free_lists(self) -> frozenset[str]:
        return frozenset(entry.list for entry in self.lists if entry.free_parking)


def check_sites(sites: list[Site], cameras: set[str]) -> None:
    """Cross-checks against the rest of the configuration; raises ValueError naming what to fix."""
    ids = [s.id for s in sites]
    if dupes := sorted({i for i in ids if ids.count(i) > 1}):
        raise ValueError(f"sites: duplicate id {', '.join(dupes)}")
    parks = [p.id for s in sites for p in s.car_parks]
    if dupes := sorted({i for i in parks if parks.count(i) > 1}):
        raise ValueError(f"sites: car park {', '.join(dupes)} defined twice")
    gates = [g.camera for s in sites for g in s.gates]
    if dupes := sorted({c for c in gates if gates.count(c) > 1}):
        raise ValueError(f"sites: camera {', '.join(dupes)} is a gate of two sites")
    for site in sites:
        if missing := [g.camera for g in site.gates if cameras and g.camera not in cameras]:
            raise ValueError(f"site {site.id}: gate on unknown camera {', '.join(missing)} (add it to cameras)")


def gates_by_camera(sites: list[Site]) -> dict[str, tuple[Site, Gate]]:
    return {gate.camera: (site, gate) for site in sites for gate in site.gates}


def car_park_of(sites: list[Site], park_id: str) -> CarPark:
    """The configured car park of that id, or ValueError naming the ones there are."""
    parks = {park.id: park for site in sites for park in site.car_parks}
    if park_id not in parks:
        raise ValueError(f"no car park {park_id!r} in the configuration's sites ({', '.join(parks) or 'none configured'})")
    return parks[park_id]
