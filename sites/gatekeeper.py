"""The edge endpoint's barrier logic: which cameras are gates, and their decisions as they are made.

It holds the local copy of the lists and of who is inside (filled by :mod:`sites.feed`) and
updates the latter with each decision at once: a car let in at 10:00:00 is inside for the exit
at 10:00:05, before the parking job has seen either, and while the broker is down.
"""

from __future__ import annotations

from gantry.events import PlateRead
from gantry.site_events import GateDecision
from gantry.sites import Site, gates_by_camera
from sites.access import decide
from sites.lists import ListBook
from sites.presence import Presence


class Gatekeeper:
    def __init__(self, sites: list[Site]) -> None:
        self.gates = gates_by_camera(sites)
        self.book = ListBook()
        self.presence = Presence()
        self.decided = 0  # decisions so far: the feed saves presence when it moves

    def __bool__(self) -> bool:
        return bool(self.gates)

    def decide(self, read: PlateRead) -> GateDecision | None:
        """The decision for a read of a gate camera (None for any other camera), noted in presence."""
        found = self.gates.get(read.camera_id)
        if found is None:
            return None
        site, gate = found
        decision = decide(read, site, gate, self.book, self.presence)
        self.decided += 1
        if gate.car_park is not None:
            if gate.direction == "entry" and decision.decision == "allow":
                free = decision.list if decision.list in site.free_lists() else None
                self.presence.enter(gate.car_park, read.plate, read.ts, read.read_id, free)
            elif gate.direction == "exit" and decision.decision == "allow":
                self.presence.leave(gate.car_park, read.plate, read.ts)
        return decision
