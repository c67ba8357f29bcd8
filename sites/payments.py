"""Recording a payment for a stay (``gantry parking pay``): the exit gate then opens for it.

The stay paid for is the plate's latest on ``parking_sessions`` when it is open (else the stay
whose entry was missed); the amount is what the tariff asks for it now, unless given. The
payment goes to the compacted ``parking_payments`` topic, which every edge endpoint follows.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from gantry import topics
from gantry.events import decode, encode
from gantry.ids import stable_id
from gantry.kafka import producer, replay
from gantry.site_events import ParkingPayment, ParkingSession
from gantry.sites import CarPark
from sites.access import fee_due
from sites.presence import Stay


def open_stay(bootstrap_servers: str, car_park: str, plate: str) -> ParkingSession | None:
    """The plate's open stay at the car park, as the parking job last sent it."""
    key = f"{car_park}:{plate}".encode()
    latest = None
    for record in replay(bootstrap_servers, topics.PARKING_SESSIONS):
        if record.key == key:
            latest = decode(ParkingSession, record.value) if record.value is not None else None
    return latest if latest is not None and latest.status == "open" and not latest.withdrawn else None


def record_payment(bootstrap_servers: str, park: CarPark, plate: str, now: datetime,
                   amount: Decimal | None = None) -> ParkingPayment:
    stay = open_stay(bootstrap_servers, park.id, plate)
    entry_ts = stay.entry_ts if stay is not None else None
    due = fee_due(park, Stay(entry_ts, stay.entry_read_id) if entry_ts is not None else None, None, now)
    payment = ParkingPayment(
        payment_id=stable_id("payment", park.id, plate, entry_ts, now.isoformat()), car_park_id=park.id, plate=plate,
        stay_entry_ts=entry_ts, paid_at=now, amount=due if amount is None else amount, currency=park.tariff.currency,
    )
    sender = producer(bootstrap_servers)
    try:
        sender.send(topics.PARKING_PAYMENTS, key=payment.key.encode(), value=encode(payment)).get(timeout=30)
    finally:
        sender.close()
    return payment
