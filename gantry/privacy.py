"""Pseudonymisation of plates: one keyed hash for every stage.

Analytical data (journeys, their exports) must let analysts follow and count a vehicle without
learning its plate, and an erasure request must still reach those rows. A keyed hash does both:
the same plate and key always give the same pseudonym, so journeys join and count, and the
warehouse can find a plate's rows by recomputing it; without the key the pseudonym cannot be
reversed or recomputed from a guessed plate, as a plain hash of a short plate could be by
enumerating every plate. Every stage must use this one function, or the pseudonyms written by
the stream jobs and those the warehouse looks for at erasure would drift apart.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

PSEUDONYM_HEX_CHARS = 32
"""128 bits of the HMAC: no collisions among any realistic number of plates, and shorter keys."""


def pseudonymise(plate: str, key: SecretStr | str) -> str:
    """HMAC-SHA256 of the plate with the pseudonymisation key, as hex (first 128 bits).

    Pass the plate normalised (as every event carries it): 'AB12CDE', not 'ab-12 cde'.
    """
    secret = key.get_secret_value() if isinstance(key, SecretStr) else key
    return hmac.new(secret.encode(), plate.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX_CHARS]
