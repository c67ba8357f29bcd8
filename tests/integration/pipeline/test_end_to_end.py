"""Frames with known plates go in at one end; reads and the hotlist hit come out in the warehouse."""

from __future__ import annotations

import subprocess
import time

import pytest
from typer.testing import CliRunner

from gantry import stack
from gantry.cli import app
from gantry.synthetic import write_frames

pytestmark = pytest.mark.integration


def gantry(config_file, *args: str) -> str:
    command = stack.gantry_command("--config", str(config_file), *args)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def wait_for(query, client, at_least: int, timeout_s: float = 90) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        value = int(client.query(query).result_rows[0][0])
        if value >= at_least or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_status_reports_every_process_healthy(stack_config, stack_config_file):
    state = stack.status(stack_config)
    assert {"broker", "warehouse", "jobs-0", "sink", "api", "recognizer"} <= set(state.processes)
    unhealthy = {n: p["log"] for n, p in state.processes.items() if not p["healthy"]}
    assert not unhealthy
    result = CliRunner().invoke(app, ["--config", str(stack_config_file), "status"])
    assert result.exit_code == 0 and "recognizer" in result.output


def test_frames_become_reads_and_a_hotlist_hit_in_the_warehouse(
    stack_config, stack_config_file, warehouse, city, tmp_path
):
    gantry(stack_config_file, "hotlist", "add", "--plate", city.hotlisted, "--list", "stolen", "--priority", "1")
    time.sleep(2)
    for camera_id, folder in write_frames(city, tmp_path, seed=3).items():
        gantry(stack_config_file, "ingest", "file", str(folder), "--camera", camera_id)

    truth = {(p.camera_id, p.plate) for p in city.passages}
    reads = wait_for("SELECT count(DISTINCT read_id) FROM plate_reads", warehouse, len(truth))
    assert reads >= len(truth)
    found = set(warehouse.query("SELECT DISTINCT camera_id, plate FROM plate_reads").result_rows)
    assert len(truth & found) >= len(truth) - 1, f"missed {truth - found}"

    hotlisted_passages = sum(p.plate == city.hotlisted for p in city.passages)
    hits = wait_for("SELECT count(DISTINCT hit_id) FROM hotlist_hits", warehouse, hotlisted_passages)
    assert hits >= 1
    rows = warehouse.query("SELECT DISTINCT plate, list, match FROM hotlist_hits").result_rows
    assert (city.hotlisted, "stolen", "exact") in rows

    at = {(p.plate, p.camera_id): p.ts for p in city.passages}
    travelled = {plate for plate, camera in at if camera == "cam1" and (plate, "cam2") in at}
    journeys = wait_for("SELECT count(DISTINCT journey_id) FROM journeys", warehouse, len(travelled))
    assert journeys == len(travelled)
    times = warehouse.query("SELECT travel_s FROM journeys FINAL ORDER BY travel_s").result_rows
    expected = sorted((at[(p, "cam2")] - at[(p, "cam1")]).total_seconds() for p in travelled)
    assert [round(t, 1) for (t,) in times] == [round(t, 1) for t in expected]

    charged = {plate for plate, camera in at if camera == "cam1"}
    charges = wait_for("SELECT count(DISTINCT charge_id) FROM zone_charges FINAL", warehouse, len(charged))
    assert charges == len(charged)


def test_a_malformed_frame_goes_to_the_dead_letter_topic(stack_config):
    from kafka import KafkaConsumer

    from gantry import topics
    from gantry.events import DeadLetter, decode
    from gantry.kafka import producer
    from gantry.runtime import endpoints

    servers = endpoints(stack_config).bootstrap_servers
    out = producer(servers)
    out.send(topics.FRAMES, key=b"cam1", value=b'{"v":1,"camera_id":"cam1"}')
    out.flush()
    letters = KafkaConsumer(topics.DEAD_LETTERS, bootstrap_servers=servers, auto_offset_reset="earliest",
                            consumer_timeout_ms=30_000)
    for message in letters:
        letter = decode(DeadLetter, message.value)
        if letter.stage == "recognize":
            assert letter.source_topic == topics.FRAMES
            assert letter.reason.startswith("invalid Frame: ")
            assert letter.payload == '{"v":1,"camera_id":"cam1"}'
            break
    else:
        pytest.fail("no dead letter from the recognizer within 30 s")
    letters.close()
