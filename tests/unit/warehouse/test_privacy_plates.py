"""Erasure names the plate it erases: never a shortened one (refused before the broker, the
warehouse or the pictures are touched)."""

import pytest
from pydantic import SecretStr

from gantry.errors import GantryError
from warehouse.privacy import erase_plate


def test_a_plate_with_letters_no_plate_has_is_refused_before_the_warehouse_is_touched():
    with pytest.raises(GantryError, match="not a plate letter"):
        erase_plate(None, "ÄB123", "request REF-2", "dpo@example", SecretStr("k"), None)  # type: ignore[arg-type]
