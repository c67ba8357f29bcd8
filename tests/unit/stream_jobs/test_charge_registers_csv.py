from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from gantry.config import load_config
from gantry.errors import InvalidEvent
from gantry.events import ChargeConcession, RegisteredVehicle
from stream_jobs.charges.commands import known_zone, priced_class
from stream_jobs.charges.registers import CONCESSIONS, VEHICLES

EXAMPLE = Path(__file__).parents[3] / "examples" / "gantry.yaml"


def test_vehicle_register_round_trip_with_the_class_column(tmp_path: Path):
    entries = [RegisteredVehicle(plate="AB12CDE", vehicle_class="lorry", valid_from=date(2026, 1, 1)),
               RegisteredVehicle(plate="AB12CDE", vehicle_class="van", valid_from=date(2027, 1, 1)),
               RegisteredVehicle(plate="XY99ZZZ", vehicle_class="motorcycle")]
    VEHICLES.write_csv(tmp_path / "v.csv", entries)
    assert (tmp_path / "v.csv").read_text().splitlines()[0] == "plate,class,valid_from,valid_until"
    assert VEHICLES.read_csv(tmp_path / "v.csv") == entries


def test_every_bad_vehicle_row_is_named_by_file_line_and_column(tmp_path: Path):
    path = tmp_path / "fleet.csv"
    path.write_text(
        "plate,class,valid_from,valid_until\n"
        "AB12CDE,lorry,2026-01-01,\n"  # 2: good
        "CD34EFG,,,\n"  # 3: no class
        "EF56GHI,van,2026-13-01,\n"  # 4: no such month
        "GH78IJK,van,2026-06-01,2026-05-01\n"  # 5: ends before it starts
        "AB-12 cde,van,2026-01-01,\n"  # 6: the same plate and start as line 2
        "IJ90KLM,lorrry,,\n"  # 7: a class no zone prices
    )
    with pytest.raises(InvalidEvent) as err:
        VEHICLES.read_csv(path, priced_class(load_config(EXAMPLE)))
    lines = str(err.value).splitlines()
    assert lines[0] == "5 bad row(s), nothing imported:"
    assert lines[1].startswith(f"{path}:3: class: ")
    assert lines[2].startswith(f"{path}:4: valid_from: ")
    assert lines[3].startswith(f"{path}:5: valid_until: ") and "before valid_from 2026-06-01" in lines[3]
    assert lines[4] == f"{path}:6: same entry as line 2 (AB12CDE:2026-01-01)"
    assert lines[5].startswith(f"{path}:7: class: 'lorrry' is priced by no zone (priced: car, lorry, motorcycle, van)")


def test_register_files_with_a_missing_or_unknown_column_are_refused(tmp_path: Path):
    path = tmp_path / "v.csv"
    path.write_text("plate,valid_from\nAB12CDE,2026-01-01\n")
    with pytest.raises(InvalidEvent, match=r"v.csv:1: missing column\(s\) class"):
        VEHICLES.read_csv(path)
    path.write_text("plate,class,colour\nAB12CDE,van,red\n")
    with pytest.raises(InvalidEvent, match=r"v.csv:2: unknown column\(s\) colour"):
        VEHICLES.read_csv(path)


def test_concessions_are_read_per_zone_and_kind(tmp_path: Path):
    path = tmp_path / "c.csv"
    path.write_text(
        "zone,plate,kind,percent_off,valid_from,valid_until\n"
        "congestion,RS19DEF,discount,90,2026-01-01,2026-12-31\n"
        "congestion,LX21AMB,exemption,,,\n"
    )
    assert CONCESSIONS.read_csv(path, known_zone(load_config(EXAMPLE))) == [
        ChargeConcession(zone_id="congestion", plate="RS19DEF", kind="discount", percent_off=Decimal(90),
                         valid_from=date(2026, 1, 1), valid_until=date(2026, 12, 31)),
        ChargeConcession(zone_id="congestion", plate="LX21AMB", kind="exemption"),
    ]
    path.write_text("zone,plate,kind,percent_off\ncongestion,RS19DEF,refund,10\nnowhere,RS19DEF,discount,10\n"
                    "congestion,RS19DEF,discount,120\n")
    with pytest.raises(InvalidEvent) as err:
        CONCESSIONS.read_csv(path, known_zone(load_config(EXAMPLE)))
    message = str(err.value)
    assert f"{path}:2: kind: " in message
    assert f"{path}:3: zone: unknown zone 'nowhere' (zones: congestion, ulez)" in message
    assert f"{path}:4: percent_off: " in message
