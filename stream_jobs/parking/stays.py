"""One plate's stays at one car park, as the parking job keeps them between batches.

The state is the plate's recent passages (the pairing is redone from them, see
:mod:`sites.pairing`) and the last session sent for each stay, so that only a changed stay is
sent again, with the next version, and a stay that a late passage paired otherwise is withdrawn
under its old id. Stays that ended before the job's horizon (the watermark less the allowed
lateness) are forgotten, except the open one: no passage that could change them is admitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gantry.site_events import ParkingSession
from gantry.sites import CarPark
from sites.pairing import Passage, Stay, pair


@dataclass
class PlateStays:
    passages: list[Passage] = field(default_factory=list)
    sent: dict[str, ParkingSession] = field(default_factory=dict)  # by session id, the last one sent

    def to_json(self) -> dict:
        return {"passages": [[p.ts.isoformat(), p.read_id, p.direction, p.list, p.paid_at and p.paid_at.isoformat()]
                             for p in self.passages],
                "sent": [s.model_dump(mode="json", exclude_none=True) for s in self.sent.values()]}

    @classmethod
    def from_json(cls, data: dict) -> PlateStays:
        # A passage saved before exits kept their payment has four fields.
        passages = [Passage(datetime.fromisoformat(ts), rid, d, lst, _time(paid[0]) if paid else None)
                    for ts, rid, d, lst, *paid in data["passages"]]
        sent = [ParkingSession.model_validate(s) for s in data["sent"]]
        return cls(passages, {s.session_id: s for s in sent})

    def open_since(self) -> datetime | None:
        """When the plate's open stay began, if it has one."""
        entries = [p for p in self.passages if p.direction == "entry"]
        exits = [p for p in self.passages if p.direction == "exit"]
        if entries and (not exits or max(exits).ts < max(entries).ts):
            return max(entries).ts
        return None


def session_of(stay: Stay, plate: str, park: CarPark, version: int) -> ParkingSession:
    anchor = stay.entry or stay.exit
    assert anchor is not None
    return ParkingSession(
        session_id=stay.session_id, car_park_id=park.id, plate=plate, status=stay.status, first_ts=anchor.ts,
        entry_ts=stay.entry.ts if stay.entry else None, exit_ts=stay.exit.ts if stay.exit else None,
        entry_read_id=stay.entry.read_id if stay.entry else None, exit_read_id=stay.exit.read_id if stay.exit else None,
        duration_s=stay.duration_s, fee=stay.fee, currency=park.tariff.currency, list=stay.free_list,
        overstay=stay.overstay, version=version,
    )


def update(state: PlateStays, plate: str, park: CarPark, free_lists: frozenset[str], *, now: datetime,
           dedup_s: float, horizon: datetime) -> list[ParkingSession]:
    """Pair again and return the sessions to send: withdrawals, then changed or new stays, and
    the plate's latest stay last (the compacted topic keeps a plate's last message)."""
    stays = pair(plate, park, state.passages, free_lists, now=now, dedup_s=dedup_s)
    current = {stay.session_id for stay in stays}
    out: list[ParkingSession] = []
    for sid, last in sorted(state.sent.items()):
        if sid not in current and not last.withdrawn:
            out.append(last.model_copy(update={"withdrawn": True, "version": last.version + 1}))
    for stay in stays:
        last = state.sent.get(stay.session_id)
        fresh = session_of(stay, plate, park, last.version + 1 if last else 1)
        if last is None or last.model_copy(update={"version": fresh.version}) != fresh:
            out.append(fresh)
    for session in out:
        state.sent[session.session_id] = session
    if out and stays and out[-1].session_id != stays[-1].session_id:
        out.append(state.sent[stays[-1].session_id])
    _forget_before(state, stays, horizon, dedup_s)
    return out


def _forget_before(state: PlateStays, stays: list[Stay], horizon: datetime, dedup_s: float) -> None:
    kept = [s for s in stays if s.ends >= horizon or (s is stays[-1] and s.status == "open")]
    if not kept:
        state.passages, state.sent = [], {}
        return
    first = min((s.entry or s.exit).ts for s in kept)  # type: ignore[union-attr]
    cutoff = first - timedelta(seconds=dedup_s)
    state.passages = [p for p in state.passages if p.ts >= cutoff]
    state.sent = {sid: s for sid, s in state.sent.items() if s.first_ts >= cutoff}


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
