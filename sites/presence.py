"""Who is inside each car park, as the edge endpoint sees it: for fees at exit and capacity at entry.

Two sources keep it: the edge's own decisions (a car let in is inside at once, even while the
broker is down) and the ``parking_sessions`` topic, which the parking job writes for every gate
of every edge. Either may come first, so a message never undoes something newer: an open stay
older than the plate's last exit is stale, and a closed stay removes only a stay that began
before its exit. What each stay was paid comes from ``parking_payments``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gantry.site_events import ParkingPayment, ParkingSession


@dataclass(frozen=True)
class Stay:
    entry_ts: datetime
    entry_read_id: str | None
    free_list: str | None = None  # the free-parking list the plate entered on


class Presence:
    def __init__(self) -> None:
        self._inside: dict[str, dict[str, Stay]] = {}
        self._left: dict[tuple[str, str], datetime] = {}
        self._paid: dict[tuple[str, str], ParkingPayment] = {}  # the latest payment per car park and plate

    def stay(self, car_park: str, plate: str) -> Stay | None:
        return self._inside.get(car_park, {}).get(plate)

    def occupancy(self, car_park: str) -> int:
        return len(self._inside.get(car_park, {}))

    def enter(self, car_park: str, plate: str, ts: datetime, read_id: str | None, free_list: str | None = None) -> None:
        left = self._left.get((car_park, plate))
        current = self.stay(car_park, plate)
        # The latest entry after the last exit is the stay (an earlier one without exit left unseen).
        if (left is None or ts > left) and (current is None or ts >= current.entry_ts):
            self._inside.setdefault(car_park, {})[plate] = Stay(ts, read_id, free_list)

    def leave(self, car_park: str, plate: str, ts: datetime) -> None:
        key = (car_park, plate)
        if key not in self._left or ts > self._left[key]:
            self._left[key] = ts
        current = self.stay(car_park, plate)
        if current is not None and current.entry_ts <= ts:
            del self._inside[car_park][plate]

    def pay(self, payment: ParkingPayment) -> None:
        key = (payment.car_park_id, payment.plate)
        if key not in self._paid or payment.paid_at >= self._paid[key].paid_at:
            self._paid[key] = payment

    def latest_payment(self, car_park: str, plate: str) -> ParkingPayment | None:
        """The plate's latest payment, for whichever stay (:func:`sites.access.payment_of_stay` tells)."""
        return self._paid.get((car_park, plate))

    def forget(self, car_park: str, plate: str) -> None:
        """An erased plate: its stay, last exit and payment go (the erasure tombstones its keys)."""
        self._inside.get(car_park, {}).pop(plate, None)
        self._left.pop((car_park, plate), None)
        self._paid.pop((car_park, plate), None)

    def apply(self, session: ParkingSession) -> None:
        park, plate = session.car_park_id, session.plate
        if session.withdrawn:
            current = self.stay(park, plate)
            if current is not None and current.entry_read_id == session.entry_read_id:
                del self._inside[park][plate]
        elif session.status == "open" and session.entry_ts is not None:
            self.enter(park, plate, session.entry_ts, session.entry_read_id, session.list)
        elif session.exit_ts is not None:
            self.leave(park, plate, session.exit_ts)
        elif session.entry_ts is not None:  # exit_missed: it left unseen before entering again
            current = self.stay(park, plate)
            if current is not None and current.entry_ts <= session.entry_ts:
                del self._inside[park][plate]

    def to_json(self) -> dict:
        return {
            "inside": {park: {plate: [s.entry_ts.isoformat(), s.entry_read_id, s.free_list] for plate, s in plates.items()}
                       for park, plates in self._inside.items()},
            "left": [[park, plate, ts.isoformat()] for (park, plate), ts in self._left.items()],
            "paid": [p.model_dump(mode="json", exclude_none=True) for p in self._paid.values()],
        }

    @classmethod
    def from_json(cls, data: dict) -> Presence:
        presence = cls()
        for park, plates in data.get("inside", {}).items():
            presence._inside[park] = {p: Stay(datetime.fromisoformat(ts), rid, free) for p, (ts, rid, free) in plates.items()}
        presence._left = {(park, plate): datetime.fromisoformat(ts) for park, plate, ts in data.get("left", [])}
        for payment in data.get("paid", []):
            presence.pay(ParkingPayment.model_validate(payment))
        return presence
