"""The zone operator's registers behind a charge: vehicle classes, exemptions and discounts.

Both are imported from CSV files (``gantry vehicles import``, ``gantry concessions import``) onto
compacted topics, and every worker keeps a whole copy (:class:`stream_jobs.runtime.compacted.RegisterFeed`),
like the hotlist: whichever worker holds a plate's partition prices its charges. A register entry
applies to the charges made after it reaches the workers (within a poll interval); a charge
already sent is priced again only when a later read of that day changes it, so a register is
imported before the days it is for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from gantry import topics
from gantry.events import ChargeConcession, RegisteredVehicle
from stream_jobs.registers import PlateIndex, Register

VEHICLES = Register(
    topics.VEHICLES, RegisteredVehicle, ("plate", "class", "valid_from", "valid_until"),
    required=("plate", "class"), fields={"class": "vehicle_class"},
)
CONCESSIONS = Register(
    topics.CHARGE_CONCESSIONS, ChargeConcession, ("zone", "plate", "kind", "percent_off", "valid_from", "valid_until"),
    required=("zone", "plate", "kind"), fields={"zone": "zone_id"},
)


@dataclass
class ChargeRegisters:
    """The current registers, as a worker holds them."""

    vehicles: PlateIndex[RegisteredVehicle] = field(default_factory=PlateIndex)
    concessions: PlateIndex[ChargeConcession] = field(default_factory=PlateIndex)

    def vehicle_class(self, plate: str, day: date) -> str | None:
        """The plate's registered class on a day: of the entries valid that day, the one that
        starts latest (a re-registration overrides an open-ended entry from before it)."""
        valid = [v for v in self.vehicles.on_plate(plate) if v.valid_on(day)]
        if not valid:
            return None
        return max(valid, key=lambda v: (v.valid_from or date.min, v.vehicle_class)).vehicle_class

    def concessions_on(self, zone_id: str, plate: str, day: date) -> list[ChargeConcession]:
        return [c for c in self.concessions.on_plate(plate) if c.zone_id == zone_id and c.valid_on(day)]
