"""`gantry ingest file` against the real broker: frames arrive, keyed by camera, all acknowledged."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gantry import topics
from gantry.events import Frame, decode
from ingest.cli import app
from ingest.synthetic import Footage, write_images, write_video

pytestmark = pytest.mark.integration


def write_config(tmp_path: Path, bootstrap: str, cameras: list[str]) -> Path:
    path = tmp_path / "gantry.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path),
                "broker": {"bootstrap_servers": bootstrap},
                "warehouse": {"dsn": f"chdb://{tmp_path}/unused"},
                "cameras": [{"id": c, "lat": 51.5, "lon": -0.1} for c in cameras],
            }
        )
    )
    return path


def run(config: Path, *args: str):
    return CliRunner().invoke(app, list(args), env={"GANTRY_CONFIG": str(config)})


def test_video_file_frames_reach_the_topic(broker, topic_records, tmp_path: Path) -> None:
    video = write_video(tmp_path / "street.avi", Footage(seconds=3, fps=25))
    config = write_config(tmp_path, broker.bootstrap_servers, ["file-video"])
    result = run(
        config, "file", str(video), "--camera", "file-video", "--fps", "2", "--start", "2026-11-21T08:00:00Z"
    )
    assert result.exit_code == 0, result.output
    assert "sent 6 frames" in result.stdout
    records = topic_records(broker.bootstrap_servers, topics.FRAMES, b"file-video", expected=6)
    frames = [decode(Frame, r.value) for r in records]
    assert len(frames) == 6 and {f.camera_id for f in frames} == {"file-video"}
    assert frames[0].ts.isoformat() == "2026-11-21T08:00:00+00:00"


def test_image_folder_reaches_the_topic(broker, topic_records, tmp_path: Path) -> None:
    write_images(tmp_path / "snaps", 4)
    config = write_config(tmp_path, broker.bootstrap_servers, ["file-images"])
    result = run(config, "file", str(tmp_path / "snaps"), "--camera", "file-images")
    assert result.exit_code == 0, result.output
    assert "sent 4 frames" in result.stdout
    assert len(topic_records(broker.bootstrap_servers, topics.FRAMES, b"file-images", expected=4)) == 4


def test_unknown_camera_is_refused_and_nothing_sent(broker, topic_records, tmp_path: Path) -> None:
    write_images(tmp_path / "snaps", 1)
    config = write_config(tmp_path, broker.bootstrap_servers, ["c1"])
    result = run(config, "file", str(tmp_path / "snaps"), "--camera", "nowhere")
    assert result.exit_code == 2
    assert "unknown camera 'nowhere'" in result.output
    assert topic_records(broker.bootstrap_servers, topics.FRAMES, b"nowhere", expected=1, timeout_s=2) == []


def test_unreachable_broker_is_a_clean_error(tmp_path: Path) -> None:
    write_images(tmp_path / "snaps", 1)
    config = write_config(tmp_path, "127.0.0.1:9", [])
    result = run(config, "file", str(tmp_path / "snaps"), "--camera", "any")
    assert result.exit_code == 2
    assert "cannot reach the broker" in result.output


def test_run_reads_the_configured_streams_until_a_file_ends(broker, topic_records, tmp_path: Path) -> None:
    video = write_video(tmp_path / "street.avi", Footage(seconds=6, fps=25, car_from_s=2, car_to_s=4))
    config = write_config(tmp_path, broker.bootstrap_servers, ["run-cam"])
    settings = yaml.safe_load(config.read_text())
    settings["ingest"] = {"streams": {"run-cam": {"url": str(video), "fps": 5}}, "motion": {"hold_s": 0}}
    config.write_text(yaml.safe_dump(settings))
    result = run(config, "run", "--health-port", "0")
    assert result.exit_code == 0, result.output
    frames = topic_records(broker.bootstrap_servers, topics.FRAMES, b"run-cam", expected=8)
    assert 8 <= len(frames) <= 11  # gated: only the two seconds with the car


def test_run_refuses_a_stream_of_an_unknown_camera(tmp_path: Path) -> None:
    config = write_config(tmp_path, "127.0.0.1:9", ["c1"])
    settings = yaml.safe_load(config.read_text())
    settings["ingest"] = {"streams": {"c9": {"url": "rtsp://10.0.0.9/1"}}}
    config.write_text(yaml.safe_dump(settings))
    result = run(config, "run")
    assert result.exit_code == 2 and "unknown camera 'c9'" in result.output
