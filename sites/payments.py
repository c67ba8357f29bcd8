"""Recording a payment for a stay (``gantry parking pay``): the exit gate then opens for it.

The stay paid for is the plate's latest on ``parking_sessions`` when it is open (else the stay
whose entry was missed); the amount is what the tariff asks for it now, unless given: a car that
stayed past the grace minutes of an earlier payment pays only for the extra time (what is due
less what it paid). The payment goes to the compacted ``parking_payments`` topic, which every
edge endpoint follows; it carries all paid for the stay so far, since the topic keeps only a
plate's latest payment.
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
from sites.tariff import ZERO, payment_of_stay


def open_stay(bootstrap_servers: str, car_park: str, plate: str) -> ParkingSession | None:
    """The plate's open stay at the car park, as the parking job last sent it."""
    key = f"{car_park}:{plate}".encode()
    latest = None
    for record in replay(bootstrap_servers, topics.PARKING_SESSIONS):
        if record.key == key:
            latest = decode(ParkingSession, record.value) if record.value is not None else None
    return latest if latest is not None and latest.status == "open" and not latest.withdrawn else None


def latest_payment(bootstrap_servers: str, car_park: str, plate: str) -> ParkingPayment | None:
    """The plate's latest payment at the car park, for whichever stay it was."""
    key = f"{car_park}:{plate}".encode()
    latest = None
    for record in replay(bootstrap_servers, topics.PARKING_PAYMENTS):
        if record.key == key and record.value is not None:
            latest = decode(ParkingPayment, record.value)
    return latest


def next_payment(park: CarPark, plate: str, entry_ts: datetime | None, entry_read_id: str | None,
                 previous: ParkingPayment | None, now: datetime, amount: Decimal | None = None) -> ParkingPayment:
    """A payment for the stay that began at ``entry_ts`` (None: its entry was missed), by default
    of what is due now; ``previous`` (the plate's latest payment) counts when it was for this stay."""
    before = payment_of_stay(previous, entry_ts, now, park.tariff.exit_grace_minutes)
    due = fee_due(park, Stay(entry_ts, entry_read_id) if entry_ts is not None else None, before, now)
    paid = due if amount is None else amount
    return ParkingPayment(
        payment_id=stable_id("payment", park.id, plate, entry_ts, now.isoformat()), car_park_id=park.id, plate=plate,
        stay_entry_ts=entry_ts, paid_at=now, amount=paid, currency=park.tariff.currency,
        stay_paid=paid + (before.paid_total if before is not None else ZERO),
    )


def record_payment(bootstrap_servers: str, park: CarPark, plate: str, now: datetime,
                   amount: Decimal | None = None) -> ParkingPayment:
    stay = open_stay(bootstrap_servers, park.id, plate)
    payment = next_payment(park, plate, stay.entry_ts if stay else None, stay.entry_read_id if stay else None,
                           latest_payment(bootstrap_servers, park.id, plate), now, amount)
    sender = producer(bootstrap_servers)
    try:
        sender.send(topics.PARKING_PAYMENTS, key=payment.key.encode(), value=encode(payment)).get(timeout=30)
    finally:
        sender.close()
    return payment
