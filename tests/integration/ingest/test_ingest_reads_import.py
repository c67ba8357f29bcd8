"""`gantry ingest reads FILE.jsonl`: valid lines become reads, bad lines are named and dead-lettered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gantry import topics
from gantry.events import DeadLetter, PlateRead, decode
from ingest.cli import app
from ingest.examples import gantry_json

pytestmark = pytest.mark.integration
TS = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)  # within event_time.max_past_s


def setup(tmp_path: Path, bootstrap: str) -> tuple[Path, Path]:
    config = tmp_path / "gantry.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path),
                "broker": {"bootstrap_servers": bootstrap},
                "warehouse": {"dsn": f"chdb://{tmp_path}/unused"},
                "cameras": [{"id": "imp-1", "lat": 51.5, "lon": -0.1}],
            }
        )
    )
    lines = [
        gantry_json("IMPA", TS, "e1").decode(),
        gantry_json("IMPB", TS, "e2", camera_id="imp-1").decode(),
        '{"plate": "IMPC", "ts": "not a time"}',
        "",
        gantry_json("IMPD", TS, "e4", camera_id="elsewhere").decode(),
        json.dumps({"plate": "IMPE", "ts": TS.isoformat(), "overview_image": "/9j/AAAA"}),
        gantry_json("IMPF", datetime(9999, 12, 31, 23, 59, tzinfo=UTC), "e6").decode(),
    ]
    reads = tmp_path / "reads.jsonl"
    reads.write_text("\n".join(lines) + "\n")
    return config, reads


def invoke(config: Path, *args: str):
    return CliRunner().invoke(app, list(args), env={"GANTRY_CONFIG": str(config)})


def test_bad_lines_are_reported_by_number_and_the_rest_imported(broker, topic_records, tmp_path) -> None:
    config, reads = setup(tmp_path, broker.bootstrap_servers)
    result = invoke(config, "reads", str(reads), "--camera", "imp-1")
    assert result.exit_code == 1, result.output
    assert "imported 3 reads" in result.stdout and "3 bad lines" in result.stdout
    assert f"{reads}:3: ts:" in result.output and f"{reads}:5: unknown camera 'elsewhere'" in result.output
    assert f"{reads}:7: ts: 9999-12-31T23:59:00+00:00 is" in result.output and "event_time.max_future_s" in result.output
    for plate in ("IMPA", "IMPB", "IMPE"):
        (record,) = topic_records(broker.bootstrap_servers, topics.PLATE_READS, plate.encode(), 1)
        assert decode(PlateRead, record.value).camera_id == "imp-1"
    with_picture = decode(PlateRead, topic_records(broker.bootstrap_servers, topics.PLATE_READS, b"IMPE", 1)[0].value)
    assert Path(with_picture.image_ref.removeprefix("file://")).read_bytes().startswith(b"\xff\xd8")
    letters = [
        decode(DeadLetter, r.value) for r in topic_records(broker.bootstrap_servers, topics.DEAD_LETTERS, None, 20, 3)
    ]
    mine = sorted(letter.offset for letter in letters if letter.source_topic == f"file:{reads}")
    assert mine == [3, 5, 7]


def test_strict_sends_nothing_when_a_line_is_bad(broker, topic_records, tmp_path) -> None:
    config, reads = setup(tmp_path, broker.bootstrap_servers)
    reads.write_text(reads.read_text().replace("IMPA", "STRICTA"))
    result = invoke(config, "reads", str(reads), "--camera", "imp-1", "--strict")
    assert result.exit_code == 1 and "nothing was sent" in result.output
    assert topic_records(broker.bootstrap_servers, topics.PLATE_READS, b"STRICTA", 1, timeout_s=2) == []
