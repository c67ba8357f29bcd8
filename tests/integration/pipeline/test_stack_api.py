"""The search API as `gantry up` runs it: one more process of the stack, on its configured port,
on loopback, answering from the stack's own warehouse and broker."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

import httpx
import pytest
from conftest import API_OPERATOR_TOKEN

from gantry import stack, topics
from gantry.events import HotlistHit, encode
from gantry.ids import stable_id
from gantry.kafka import producer
from gantry.runtime import endpoints

pytestmark = pytest.mark.integration


def test_up_starts_the_api_on_loopback(stack_config):
    state = stack.status(stack_config)
    assert state.processes["api"]["healthy"] and state.processes["api"]["port"] == stack_config.api.port
    base = f"http://127.0.0.1:{stack_config.api.port}"
    assert httpx.get(f"{base}/v1/reads").status_code == 401
    assert httpx.get(f"{base}/openapi.json").status_code == 200
    outward = socket.gethostbyname(socket.gethostname())
    if not outward.startswith("127."):
        with pytest.raises(httpx.ConnectError):  # loopback only by default
            httpx.get(f"http://{outward}:{stack_config.api.port}/v1/reads", timeout=2)


def test_the_stack_api_searches_the_stack_warehouse_and_streams_its_hits(stack_config, warehouse):
    base = f"http://127.0.0.1:{stack_config.api.port}"
    operator = {"Authorization": f"Bearer {API_OPERATOR_TOKEN}"}
    read_id = stable_id("stack-api-test")
    warehouse.insert("plate_reads", [(1, read_id, "cam1", datetime.now(UTC), "ST4CK01", 0.9, (0, 0, 0, 0))],
                     column_names=["v", "read_id", "camera_id", "ts", "plate", "confidence", "bbox"])
    answer = httpx.get(f"{base}/v1/reads", headers=operator, params={"plate": "ST4CK01", "reason": "stack test"})
    assert answer.status_code == 200, answer.text
    assert [r["read_id"] for r in answer.json()["items"]] == [read_id]
    audited = warehouse.command("SELECT count() FROM audit_log WHERE actor = 'control-room' AND reason = 'stack test'")
    assert int(audited) == 1
    hit = HotlistHit(hit_id=stable_id(read_id, "stack"), read_id=read_id, camera_id="cam1", ts=datetime.now(UTC),
                     plate="ST4CK01", listed_plate="ST4CK01", list="stolen", priority=1, match="exact",
                     confidence=0.9)  # fmt: skip
    with httpx.stream("GET", f"{base}/v1/hits/stream", headers=operator, params={"reason": "stack test"},
                      timeout=httpx.Timeout(10, read=30)) as stream:  # fmt: skip
        lines = stream.iter_lines()
        assert next(lines) == "event: ready"
        send = producer(endpoints(stack_config).bootstrap_servers)
        send.send(topics.HOTLIST_HITS, value=encode(hit)).get(10)
        send.close()
        for line in lines:
            if line.startswith("data:") and hit.hit_id in line:
                assert json.loads(line[5:])["plate"] == "ST4CK01"
                break
