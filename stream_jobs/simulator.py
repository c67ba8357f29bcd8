"""A synthetic city for tests and benchmarks, with the exact answers the jobs must give.

Cameras stand along one arterial road; vehicles drive stretches of it at their own speed, some
stopping on the way (outliers). A middle section is a congestion zone with London-style hours.
Some vehicles are hotlisted. From the ground truth - which vehicle passed which camera when -
the simulator writes the reads a camera network would produce (with duplicates, disorder and OCR
misreads on request) and, *independently of the jobs' rule code*, the hits, journeys and charges
that those reads must produce, so a test comparing the two can fail.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from gantry.config import MAX_PAST_LIMIT_S
from gantry.events import HotlistEntry, PlateRead

MONDAY_MORNING = datetime(2026, 11, 23, 6, 45, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")
ZONE_ID = "sim-zone"
DAILY_CHARGE = "15.00"
MAX_TRAVEL_S = 1800
TRIP_SPACING_S = 4 * 3600
SWAPS = {"O": "0", "0": "O", "I": "1", "1": "I", "B": "8", "8": "B", "S": "5", "5": "S", "Z": "2", "2": "Z"}


@dataclass(frozen=True)
class Noise:
    duplicates: float = 0.0  # share of reads delivered twice (same read_id)
    extra_reads: float = 0.0  # share of passages read again 1-3 s later (new read_id)
    early_second_looks: float = 0.0  # share of those delivered before the first look, at from- and to-cameras
    disorder_s: float = 0.0  # delivery order jitter, in event-time seconds
    misreads: float = 0.0  # share of reads with one OCR-confusable character swapped
    late: int = 0  # reads two days old, delivered at the end


@dataclass
class Expected:
    hits: set[tuple[str, str, str, str]] = field(default_factory=set)  # read_id, listed plate, list, match
    journeys: set[tuple[str, str, str, float]] = field(default_factory=set)  # segment, from/to read, travel_s
    charges: dict[tuple[str, str, str], tuple[str, int, str]] = field(default_factory=dict)
    late_reads: set[str] = field(default_factory=set)


@dataclass
class Simulation:
    city: dict
    hotlist: list[HotlistEntry]
    reads: list[PlateRead]
    expected: Expected


def city(cameras: int) -> dict:
    """Configuration of the synthetic city: cameras, consecutive segments, one zone in the middle.

    Its reads are timed on fixed days (so that the answers are exact) that recede into the past,
    so the city admits reads as old as any configuration may.
    """
    rng = random.Random(cameras)
    ids = [f"sim-cam-{i:02d}" for i in range(cameras)]
    hours = [{"start": "07:00", "end": "18:00"}]
    weekend = [{"start": "12:00", "end": "18:00"}]
    return {
        "cameras": [{"id": c, "lat": 51.5, "lon": -0.1 + i / 100} for i, c in enumerate(ids)],
        "segments": [
            {"id": f"{a}:{b}", "from_camera": a, "to_camera": b,
             "distance_m": rng.randrange(800, 3000, 100), "max_travel_s": MAX_TRAVEL_S}
            for a, b in pairwise(ids)
        ],
        "zones": [{
            "id": ZONE_ID,
            "cameras": ids[cameras // 3 : max(cameras // 3 + 1, 2 * cameras // 3)],
            "tariff": {"timezone": "Europe/London", "currency": "GBP",
                       "hours": {d: hours for d in ("mon", "tue", "wed", "thu", "fri")} | {"sat": weekend, "sun": weekend},
                       "daily_charge": {"car": DAILY_CHARGE}, "default_class": "car"},
        }],
        "event_time": {"max_past_s": MAX_PAST_LIMIT_S},
    }


def simulate(cameras: int, vehicles: int, hours: float, seed: int, noise: Noise = Noise(),
             start: datetime = MONDAY_MORNING, hotlisted_share: float = 0.02) -> Simulation:
    rng = random.Random(seed)
    layout = city(cameras)
    segments = layout["segments"]
    plates = _plates(rng, vehicles)
    listed = {p: "stolen" for p in rng.sample(plates, max(1, int(vehicles * hotlisted_share)))}
    hotlist = [HotlistEntry(plate=p, list=lst, reason="simulated", priority=1) for p, lst in listed.items()]
    expected = Expected()
    primaries: list[tuple[PlateRead, float]] = []  # each true passage's read, with its delivery time
    extras: list[tuple[PlateRead, float]] = []
    counter = iter(range(10**12))

    def read(plate: str, camera: str, ts: datetime) -> PlateRead:
        return PlateRead(read_id=f"sim{seed}-{next(counter)}", camera_id=camera, ts=ts, plate=plate, confidence=0.9)

    for plate in plates:
        for trip in range(max(1, int(hours * 3600 // TRIP_SPACING_S))):
            entry = rng.randrange(0, cameras - 1)
            leave = rng.randrange(entry + 1, cameras)
            ts = start + timedelta(seconds=trip * TRIP_SPACING_S + rng.uniform(0, 1800))
            speed_ms = rng.uniform(20, 60) / 3.6
            trip_reads = []
            for i in range(entry, leave + 1):
                if i > entry:
                    stop = rng.uniform(300, 900) if rng.random() < 0.03 else 0
                    ts += timedelta(seconds=round(segments[i - 1]["distance_m"] / speed_ms + stop, 3))
                seen_as = _misread(rng, plate) if rng.random() < noise.misreads else plate
                primary = read(seen_as, f"sim-cam-{i:02d}", ts)
                trip_reads.append(primary)
                primaries.append((primary, ts.timestamp() + rng.uniform(0, noise.disorder_s)))
                if rng.random() < noise.extra_reads:
                    extra = read(seen_as, primary.camera_id, ts + timedelta(seconds=rng.uniform(1, 3)))
                    extras.append((extra, 0.0))
                    _expect_hits(expected, extra, listed)
                _expect_hits(expected, primary, listed)
            _expect_journeys(expected, trip_reads, segments)
    _expect_charges(expected, [r for r, _ in primaries], layout["zones"][0]["cameras"])

    delivery = [r for r, _ in sorted(primaries, key=lambda pair: pair[1])]
    for extra, _ in extras:  # a camera's second look at a vehicle comes after its first, mostly
        position = next(i for i, r in enumerate(delivery) if r.camera_id == extra.camera_id and r.plate == extra.plate
                        and abs((r.ts - extra.ts).total_seconds()) < 4)
        if noise.early_second_looks and rng.random() < noise.early_second_looks:
            delivery.insert(position, extra)
        else:
            delivery.insert(position + 1 + rng.randrange(0, 20), extra)
    delivery += [r for r in delivery if rng.random() < noise.duplicates]
    for _ in range(noise.late):
        stale = read(_plates(rng, 1, prefix="LT")[0], layout["zones"][0]["cameras"][0], start - timedelta(days=2))
        delivery.append(stale)
        expected.late_reads.add(stale.read_id)
    return Simulation(layout, hotlist, delivery, expected)


def _plates(rng: random.Random, count: int, prefix: str = "") -> list[str]:
    """Distinct plates that share no OCR confusion, so only deliberate misreads look alike."""
    plates: set[str] = set()
    taken: set[str] = set()
    while len(plates) < count:
        plate = prefix + "".join(rng.choices(string.ascii_uppercase, k=2 - len(prefix) if len(prefix) < 2 else 0))
        plate += "".join(rng.choices(string.digits, k=2)) + "".join(rng.choices(string.ascii_uppercase, k=3))
        neighbours = {plate[:i] + SWAPS[c] + plate[i + 1 :] for i, c in enumerate(plate) if c in SWAPS}
        if plate in taken or neighbours & taken:
            continue
        plates.add(plate)
        taken |= {plate} | neighbours
    return sorted(plates)


def _misread(rng: random.Random, plate: str) -> str:
    spots = [i for i, c in enumerate(plate) if c in SWAPS]
    if not spots:
        return plate
    i = rng.choice(spots)
    return plate[:i] + SWAPS[plate[i]] + plate[i + 1 :]


def _expect_hits(expected: Expected, read: PlateRead, listed: dict[str, str]) -> None:
    """The listed plate the read shows, and those it shows with one confusable character swapped:
    looked up, not compared with every listed plate (a benchmark city lists a thousand)."""
    plate = read.plate
    if plate in listed:
        expected.hits.add((read.read_id, plate, listed[plate], "exact"))
    for i, c in enumerate(plate):
        if c in SWAPS and (swapped := plate[:i] + SWAPS[c] + plate[i + 1 :]) in listed:
            expected.hits.add((read.read_id, swapped, listed[swapped], "possible"))


def _expect_journeys(expected: Expected, trip: list[PlateRead], segments: list[dict]) -> None:
    by_ends = {(s["from_camera"], s["to_camera"]): s for s in segments}
    for a, b in pairwise(trip):
        travel_s = (b.ts - a.ts).total_seconds()
        if a.plate == b.plate and travel_s <= by_ends[(a.camera_id, b.camera_id)]["max_travel_s"]:
            expected.journeys.add((by_ends[(a.camera_id, b.camera_id)]["id"], a.read_id, b.read_id, travel_s))


def _expect_charges(expected: Expected, passages: list[PlateRead], zone_cameras: list[str]) -> None:
    days: dict[tuple[str, date], list[PlateRead]] = {}
    for r in passages:
        local = r.ts.astimezone(LONDON)
        opens = 7 if local.weekday() < 5 else 12
        if r.camera_id in zone_cameras and opens <= local.hour < 18:
            days.setdefault((r.plate, local.date()), []).append(r)
    for (plate, day), reads in days.items():
        first = min(reads, key=lambda r: (r.ts, r.read_id))
        expected.charges[(ZONE_ID, plate, day.isoformat())] = (first.read_id, len(reads), DAILY_CHARGE)
