"""The shared pseudonymisation (used by the journeys job and by erasure): keyed and stable."""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

from gantry.privacy import pseudonymise

PLATES = ["AB12CDE", "KE3PME", "W053011", "BN00042X", "1"]


def test_a_keyed_hmac_sha256_in_hex():
    expected = hmac.new(b"k3y", b"AB12CDE", hashlib.sha256).hexdigest()[:32]
    assert pseudonymise("AB12CDE", "k3y") == pseudonymise("AB12CDE", SecretStr("k3y")) == expected


def test_stable_per_key_and_distinct_across_plates_and_keys():
    ours = [pseudonymise(p, "key-a") for p in PLATES]
    assert ours == [pseudonymise(p, "key-a") for p in PLATES]
    assert len(set(ours)) == len(PLATES)
    assert not set(ours) & {pseudonymise(p, "key-b") for p in PLATES}

