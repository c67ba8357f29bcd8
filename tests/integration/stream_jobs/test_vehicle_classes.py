"""Vehicle classes end to end: the registers imported through `gantry vehicles|concessions import`,
read by a worker from their compacted topics, and the class each charge is priced at."""

from decimal import Decimal

import pytest
from jobs_helpers import Worker, read_topic, run_gantry, write_config

from gantry import topics
from gantry.events import PlateRead, ZoneCharge, decode, encode, now_utc
from gantry.kafka import producer

pytestmark = pytest.mark.integration
PLATES = {"VC01LRY": "registered", "VC02TRK": "reported", "VC03CAR": "unknown", "VC04EXM": "exempt"}


def test_a_registered_lorry_pays_the_lorry_price(broker, tmp_path, workers):
    config = write_config(tmp_path / "gantry.yaml", broker, {
        "cameras": [{"id": "cam-vc", "lat": 51.5, "lon": 0}],
        "zones": [{"id": "zone-vc", "cameras": ["cam-vc"], "tariff": {
            "daily_charge": {"car": "10.00", "lorry": "30.00"}, "camera_classes": {"truck": "lorry"}}}],
    })
    bad = tmp_path / "fleet-bad.csv"
    bad.write_text("plate,class,valid_from\nVC01LRY,lorry,2026-01-01\nVC09BAD,lorry,2026-02-30\n")
    refused = run_gantry(config, "vehicles", "import", str(bad))
    assert refused.returncode != 0 and f"{bad}:3: valid_from" in refused.stderr
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("plate,class,valid_from,valid_until\nVC01LRY,lorry,2026-01-01,\n")
    assert run_gantry(config, "vehicles", "import", str(fleet)).returncode == 0
    concessions = tmp_path / "concessions.csv"
    concessions.write_text("zone,plate,kind\nzone-vc,VC04EXM,exemption\n")
    assert run_gantry(config, "concessions", "import", str(concessions)).returncode == 0

    workers.append(worker := Worker(config, 0, tmp_path))
    worker.wait_ready()
    send = producer(broker)
    for n, plate in enumerate(PLATES):
        read = PlateRead(read_id=f"vc-r{n}", camera_id="cam-vc", ts=now_utc(), plate=plate, confidence=0.9,
                         vehicle_class="truck" if plate == "VC02TRK" else None)
        send.send(topics.PLATE_READS, key=read.plate.encode(), value=encode(read))
    send.flush()

    def ours(messages: list[bytes]) -> dict[str, ZoneCharge]:
        charges = (decode(ZoneCharge, m) for m in messages)
        return {c.plate: c for c in charges if c.plate in PLATES}

    charges = ours(read_topic(broker, topics.ZONE_CHARGES, until=lambda m: len(ours(m)) == len(PLATES), timeout_s=60))
    assert {p: (c.vehicle_class, c.vehicle_class_source, c.status, c.amount) for p, c in charges.items()} == {
        "VC01LRY": ("lorry", "register", "charged", Decimal("30.00")),
        "VC02TRK": ("lorry", "camera", "charged", Decimal("30.00")),
        "VC03CAR": ("car", "default", "charged", Decimal("10.00")),
        "VC04EXM": ("car", "default", "exempt", Decimal("0.00")),
    }
