"""The shared pseudonymisation: keyed, stable, and identical to what the stream jobs write."""

from __future__ import annotations

import hashlib
import hmac

import pytest
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


def test_same_output_as_the_journeys_job_for_the_same_plates():
    """While stream_jobs still has its own copy, the two must agree byte for byte."""
    rules = pytest.importorskip("stream_jobs.journeys.rules")
    if not hasattr(rules, "pseudonym"):
        pytest.skip("stream_jobs uses gantry.privacy.pseudonymise itself now")
    for plate in PLATES:
        for key in ("k", "a longer pseudonymisation key", "ключ"):
            assert pseudonymise(plate, SecretStr(key)) == rules.pseudonym(plate, key)
