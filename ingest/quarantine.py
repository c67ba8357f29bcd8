"""Where the spool puts what it can never deliver, with the reason, for an operator to look at.

Two things would otherwise stop the spool for good. An event the broker refuses whatever its
state (larger than its message limit, an invalid topic) would be sent again after every pause,
and every event behind it would wait. A file in the spool folder that is not a whole spool event
(truncated by a failing disk, copied in by hand, not ours at all) stopped start-up or the replay.
Both are moved here, never deleted: the camera was told "accepted", so the event is the
operator's to fix and put back. Beside each lies ``<name>.reason``, one line saying why; each is
counted in ``gantry_ingest_quarantined{cause}`` and ``gantry status`` says how many there are.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from prometheus_client import Counter

log = logging.getLogger(__name__)
Cause = Literal["refused", "unreadable"]  # by the broker; by the spool itself
QUARANTINED = Counter("gantry_ingest_quarantined", "Spooled events and files set aside in the quarantine", ["cause"])
_REASON = ".reason"


class Quarantine:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def hold(self, path: Path, cause: Cause, reason: str) -> Path:
        """Move ``path`` here, next to a file saying why; returns where it is now.

        The name gets the time as a prefix: sequence numbers start again at 1 once the spool is
        empty, so the same file name can be set aside twice.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        held = self.directory / f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{path.name}"
        path.rename(held)
        held.with_name(held.name + _REASON).write_text(reason + "\n")
        QUARANTINED.labels(cause).inc()
        log.error("set %s aside in %s: %s", path.name, self.directory, reason)
        return held

    def held(self) -> list[Path]:
        """What is in the quarantine, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if not p.name.endswith(_REASON))

    @staticmethod
    def reason(held: Path) -> str:
        return held.with_name(held.name + _REASON).read_text().strip()
