"""A site with a car park, and list entries, for the rules' tests."""

from __future__ import annotations

from datetime import UTC, datetime

from gantry.events import HotlistEntry, PlateRead
from gantry.sites import Site
from sites.lists import ListBook

# Monday 2026-11-23, London = UTC in winter.
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)


def site(**changes) -> Site:
    base = {
        "id": "hq",
        "timezone": "Europe/London",
        "gates": [{"camera": "gate-in", "direction": "entry", "car_park": "p1"},
                  {"camera": "gate-out", "direction": "exit", "car_park": "p1"},
                  {"camera": "yard", "direction": "exit"}],
        "lists": [
            {"list": "staff", "access": "allow",
             "hours": {d: [{"start": "07:00", "end": "19:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}},
            {"list": "permit", "access": "allow", "free_parking": True},
            {"list": "visitors", "access": "allow"},
            {"list": "banned", "access": "deny"},
        ],
        "car_parks": [{"id": "p1", "capacity": 2, "timezone": "Europe/London",
                       "tariff": {"free_minutes": 20, "per_hour": "2.00", "daily_cap": "12.00"}}],
    }
    return Site.model_validate(base | changes)


def entry(plate: str, list_: str, **more) -> HotlistEntry:
    return HotlistEntry(plate=plate, list=list_, **more)


def book(*entries: HotlistEntry) -> ListBook:
    found = ListBook()
    for item in entries:
        found.put(item)
    return found


def read(plate: str, camera: str, ts: datetime, read_id: str | None = None) -> PlateRead:
    return PlateRead(read_id=read_id or f"{camera}-{plate}-{ts.isoformat()}", camera_id=camera, ts=ts, plate=plate,
                     confidence=0.9)
