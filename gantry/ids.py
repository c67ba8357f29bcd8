"""Stable identifiers: the same inputs always give the same id.

Every output of the pipeline carries an id derived from what produced it, so a replay after a
crash produces the same ids and the warehouse can drop the repeats (at-least-once delivery with
idempotent outputs).
"""

from __future__ import annotations

import hashlib


def stable_id(*parts: object) -> str:
    """A 32-hex-character id from the parts, order-sensitive and collision-resistant."""
    joined = "\x1f".join(["" if p is None else str(p) for p in parts])
    return hashlib.blake2b(joined.encode(), digest_size=16).hexdigest()
