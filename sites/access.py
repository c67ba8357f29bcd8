"""The barrier's answer to one read: allow, deny, or (at a car park's exit) pay.

In order, the first rule that applies decides:

1. a valid entry on one of the site's deny lists refuses, at entry and exit alike (the screener
   raises its hit as for any read);
2. at an exit: nothing to pay for a gate of no car park, a free-parking list (at entry or now),
   a stay within its free minutes or one paid for (leaving within the grace minutes of paying);
   else ``pay`` with what is due (the stay's fee, or the missed-entry fee when no entry was seen,
   less any payment): a car is never kept inside for being unknown;
3. at an entry: an entry of an allow list, valid now and inside the list's opening hours,
   allows (unless ``one_inside_per_holder`` and another plate of its holder is inside); an
   allow-list entry that is outside its hours or validity refuses, saying which;
4. a plate on no list: refused when the car park is full, else the site's ``unknown_plates``
   policy (deny, allow, or flag: allow and mark the decision).

Matching is exact, and one OCR-confusable glyph away only where the site sets ``fuzzy_match``
(then an exact entry always wins over a possible one).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from gantry.config import WEEKDAYS
from gantry.events import HotlistEntry, PlateRead
from gantry.ids import stable_id
from gantry.site_events import Decision, GateDecision, ParkingPayment, Reason
from gantry.sites import CarPark, Gate, Site, SiteList
from sites.lists import ListBook, Match
from sites.presence import Presence, Stay
from sites.tariff import ZERO, charged_until, missed_entry_fee, payment_of_stay, stay_fee
from stream_jobs.hotlist.rules import confusable_variants

UNKNOWN: dict[str, tuple[Decision, Reason, bool]] = {
    "deny": ("deny", "unknown_denied", False),
    "allow": ("allow", "unknown_allowed", False),
    "flag": ("allow", "unknown_flagged", True),
}


def decision_id(read_id: str) -> str:
    """One decision per read: a camera that sends its read again gets (and records) the same one."""
    return stable_id("gate", read_id)


def open_at(rule: SiteList, ts: datetime, timezone: str) -> bool:
    if rule.hours is None:
        return True
    local = ts.astimezone(ZoneInfo(timezone))
    return any(h.covers(local.strftime("%H:%M")) for h in rule.hours.get(WEEKDAYS[local.weekday()], []))


def decide(read: PlateRead, site: Site, gate: Gate, book: ListBook, presence: Presence) -> GateDecision:
    rules = {rule.list: rule for rule in site.lists}
    deny = frozenset(n for n, r in rules.items() if r.access == "deny")
    park = site.car_park(gate.car_park)

    def answer(decision: Decision, reason: Reason, entry: HotlistEntry | None = None, match: Match | None = None,
               *, list_name: str | None = None, **extra) -> GateDecision:
        return GateDecision(
            decision_id=decision_id(read.read_id), read_id=read.read_id, site_id=site.id, camera_id=read.camera_id,
            direction=gate.direction, car_park_id=gate.car_park, ts=read.ts, plate=read.plate, decision=decision,
            reason=reason, list=entry.list if entry else list_name, holder=entry.holder if entry else None,
            listed_plate=entry.plate if entry else None, match=match, **extra,
        )

    for entry, match in book.candidates(read.plate, deny, fuzzy=site.fuzzy_match):
        if entry.valid_at(read.ts):
            return answer("deny", "deny_list", entry, match)

    if gate.direction == "exit":
        if park is None:
            return answer("allow", "exit")
        plate, stay = _stay(presence, park, read.plate, fuzzy=site.fuzzy_match)
        free = _valid_entry(book, site.free_lists(), read, site.fuzzy_match)
        if stay is not None and stay.free_list is not None:
            return answer("allow", "paid", amount=ZERO, currency=park.tariff.currency, entry_ts=stay.entry_ts,
                          list_name=stay.free_list)
        if free is not None:
            return answer("allow", "paid", *free, amount=ZERO, currency=park.tariff.currency,
                          entry_ts=stay.entry_ts if stay else None)
        payment = payment_of_stay(presence.latest_payment(park.id, plate), stay.entry_ts if stay else None, read.ts,
                                  park.tariff.exit_grace_minutes)
        fee = fee_due(park, stay, payment, read.ts)
        decision: Decision = "allow" if fee == ZERO else "pay"
        return answer(decision, "paid" if fee == ZERO else "fee_due", amount=fee, currency=park.tariff.currency,
                      entry_ts=stay.entry_ts if stay else None, paid_at=payment.paid_at if payment else None)

    allow = frozenset(n for n, r in rules.items() if r.access == "allow")
    found = list(book.candidates(read.plate, allow, fuzzy=site.fuzzy_match))
    usable = [(e, m) for e, m in found if e.valid_at(read.ts) and open_at(rules[e.list], read.ts, site.timezone)]
    if usable:
        entry, match = usable[0]
        if site.one_inside_per_holder and park is not None and entry.holder is not None:
            if any(presence.stay(park.id, p) for p in book.plates_of(entry.holder) - {entry.plate}):
                return answer("deny", "holder_inside", entry, match)
        return answer("allow", "listed", entry, match)
    if found:
        entry, match = found[0]
        return answer("deny", "outside_hours" if entry.valid_at(read.ts) else "not_valid", entry, match)
    if park is not None and presence.occupancy(park.id) >= park.capacity and presence.stay(park.id, read.plate) is None:
        return answer("deny", "full")
    decision, reason, flagged = UNKNOWN[site.unknown_plates]
    return answer(decision, reason, flagged=flagged)


def fee_due(park: CarPark, stay: Stay | None, payment: ParkingPayment | None, exit_ts: datetime) -> Decimal:
    """What is left to pay at the exit: the stay's fee until :func:`~sites.tariff.charged_until`
    (the payment, when the car leaves within the grace minutes after it; else now) less all paid
    for the stay; the lost-entry fee, less what was paid for it, without a stay."""
    if stay is None:
        owed = missed_entry_fee(park)
    else:
        until = charged_until(exit_ts, payment.paid_at if payment else None, park.tariff.exit_grace_minutes)
        owed = stay_fee(stay.entry_ts, until, park)
    return max(owed - (payment.paid_total if payment is not None else ZERO), ZERO)


def _stay(presence: Presence, park: CarPark, plate: str, *, fuzzy: bool) -> tuple[str, Stay | None]:
    """The plate's stay, or (where the site allows) a look-alike's, with the plate it is under."""
    for candidate in (plate, *(confusable_variants(plate) if fuzzy else ())):
        stay = presence.stay(park.id, candidate)
        if stay is not None:
            return candidate, stay
    return plate, None


def _valid_entry(book: ListBook, lists: frozenset[str], read: PlateRead,
                 fuzzy: bool) -> tuple[HotlistEntry, Match] | None:
    return next(((e, m) for e, m in book.candidates(read.plate, lists, fuzzy=fuzzy) if e.valid_at(read.ts)), None)

