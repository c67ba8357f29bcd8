"""The events of sites and car parks: barrier decisions and parking sessions.

``gate_decisions`` records who was let in or out where, when and why (the answer the barrier got
while the car waited); ``parking_sessions`` pairs a plate's entry and exit at a car park into a
stay with its fee. Both carry stable ids, so a replay is one row in the warehouse.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from gantry.events import Event, Id, Plate, UtcMs

Decision = Literal["allow", "deny", "pay"]
Reason = Literal[
    "listed",  # on an allow list, inside its hours and validity
    "deny_list",  # on a deny list
    "outside_hours",  # on an allow list, outside its opening hours
    "not_valid",  # on an allow list, outside the entry's validity
    "holder_inside",  # another plate of the same holder is inside
    "full",  # the car park is at capacity
    "unknown_denied",
    "unknown_allowed",
    "unknown_flagged",
    "fee_due",  # exit: the stay is not paid
    "paid",  # exit: paid, or nothing to pay
    "exit",  # exit gate of no car park
]
SessionStatus = Literal["open", "closed", "exit_missed", "entry_missed"]


class GateDecision(Event):
    """The answer a barrier got for one read, on topic ``gate_decisions`` keyed by plate."""

    decision_id: Id
    read_id: Id
    site_id: Id
    camera_id: Id
    direction: Literal["entry", "exit"]
    car_park_id: Id | None = None
    ts: UtcMs
    plate: Plate
    decision: Decision
    reason: Reason
    list: Id | None = None
    holder: Id | None = None
    listed_plate: Plate | None = None
    match: Literal["exact", "possible"] | None = None
    flagged: bool = False
    amount: Decimal | None = Field(default=None, ge=0, decimal_places=2)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    entry_ts: UtcMs | None = None
    paid_at: UtcMs | None = Field(default=None, description="exit: when the payment the answer counted was made")

    @property
    def opens(self) -> bool:
        return self.decision == "allow"


class ParkingSession(Event):
    """A plate's stay at a car park, on the compacted topic ``parking_sessions`` keyed
    ``car_park:plate``: the latest message of a key is the plate's latest stay, open or not.

    Re-sent with a higher ``version`` when it changes (the exit came, a late read moved it);
    ``withdrawn`` when a read that came out of order showed the stay was paired wrongly.
    """

    session_id: Id
    car_park_id: Id
    plate: Plate
    status: SessionStatus
    first_ts: UtcMs = Field(description="the stay's first passage seen: its entry, or its exit when the entry was missed")
    entry_ts: UtcMs | None = None
    exit_ts: UtcMs | None = None
    entry_read_id: Id | None = None
    exit_read_id: Id | None = None
    duration_s: float | None = Field(default=None, ge=0)
    fee: Decimal = Field(ge=0, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    list: Id | None = Field(default=None, description="the free-parking list that made the stay free")
    overstay: bool = False
    withdrawn: bool = False
    version: int = Field(ge=1)

    @property
    def key(self) -> str:
        return f"{self.car_park_id}:{self.plate}"


class ParkingPayment(Event):
    """What a plate paid for its stay (at a pay station or to a cashier), on the compacted topic
    ``parking_payments`` keyed ``car_park:plate``: the exit gate opens for a paid stay."""

    payment_id: Id
    car_park_id: Id
    plate: Plate
    stay_entry_ts: UtcMs | None = Field(default=None, description="the entry of the stay paid for; empty: no entry was seen")
    paid_at: UtcMs
    amount: Decimal = Field(ge=0, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    stay_paid: Decimal | None = Field(default=None, ge=0, decimal_places=2,
                                      description="all paid for the stay so far, this payment included; "
                                                  "empty: this payment alone (the topic keeps only the latest)")

    @property
    def key(self) -> str:
        return f"{self.car_park_id}:{self.plate}"

    @property
    def paid_total(self) -> Decimal:
        return self.amount if self.stay_paid is None else self.stay_paid
