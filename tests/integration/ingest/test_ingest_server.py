"""`gantry ingest serve` against the real broker: each dialect, each rejection, and fuzzing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gantry import topics
from gantry.events import PlateRead, decode
from ingest.examples import access_query, gantry_json, hikvision_multipart, hikvision_xml

pytestmark = pytest.mark.integration

TS = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=250000)  # within event_time.max_past_s
ONE = {"X-Gantry-Token": "token-one"}
JPEG_PLATE = b"\xff\xd8\xff\xe0plate"
JPEG_OVERVIEW = b"\xff\xd8\xff\xe0overview"


def reads(topic_records, broker, plate: str, expected: int, timeout_s: float = 20) -> list[PlateRead]:
    return [
        decode(PlateRead, r.value)
        for r in topic_records(broker.bootstrap_servers, topics.PLATE_READS, plate.encode(), expected, timeout_s)
    ]


def test_each_dialect_is_acknowledged_and_maps_to_the_same_read(server, broker, topic_records) -> None:
    plate = "SAME1"
    answers = [
        httpx.post(
            f"{server.url}/v1/reads",
            content=gantry_json(plate, TS, "evt-1", direction="in", region="GB"),
            headers=ONE | {"Content-Type": "application/json"},
        ),
        httpx.post(
            f"{server.url}/isapi/anpr",
            content=hikvision_xml(plate, TS, "evt-1"),
            headers=ONE | {"Content-Type": "application/xml"},
        ),
        httpx.get(
            f"{server.url}/v1/plate",
            params=access_query(plate, session="evt-1", time=TS.isoformat()),
            headers={"Authorization": "Bearer token-one"},
        ),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert {a.json()["status"] for a in answers} == {"acked"}
    got = reads(topic_records, broker, plate, expected=3)
    assert len(got) == 3
    assert {r.model_dump_json(exclude={"region"}) for r in got} == {
        got[0].model_dump_json(exclude={"region"})
    }
    assert got[0].read_id == answers[0].json()["read_id"] and got[0].camera_id == "cam-1"


def test_hikvision_multipart_pictures_are_stored_and_referenced(server, broker, topic_records) -> None:
    content_type, body = hikvision_multipart(hikvision_xml("PIX1", TS, "evt-pix"), JPEG_PLATE, JPEG_OVERVIEW)
    answer = httpx.post(
        f"{server.url}/isapi/anpr", content=body, headers=ONE | {"Content-Type": content_type}
    )
    assert answer.status_code == 200, answer.text
    (read,) = reads(topic_records, broker, "PIX1", expected=1)
    overview = Path(read.image_ref.removeprefix("file://"))
    assert overview.read_bytes() == JPEG_OVERVIEW
    assert overview.with_name(overview.name.replace("overview", "plate")).read_bytes() == JPEG_PLATE
    assert overview.parent.name == "cam-1" and overview.parent.parent.name == TS.date().isoformat()


def test_access_query_with_posted_snapshot(server, broker, topic_records) -> None:
    answer = httpx.post(
        f"{server.url}/v1/plate",
        params=access_query("GATE1", entry=False),
        content=JPEG_OVERVIEW,
        headers={"X-Gantry-Token": "token-two", "Content-Type": "image/jpeg"},
    )
    assert answer.status_code == 200, answer.text
    (read,) = reads(topic_records, broker, "GATE1", expected=1)
    assert (read.camera_id, read.direction) == ("cam-2", "out")
    assert Path(read.image_ref.removeprefix("file://")).read_bytes() == JPEG_OVERVIEW


@pytest.mark.parametrize(
    ("plate", "headers", "body", "status", "message"),
    [
        ("REJ401A", {}, None, 401, "token"),
        ("REJ401B", {"X-Gantry-Token": "guess"}, None, 401, "token"),
        ("REJ413", ONE, {"plate_image": b"\xff\xd8" + b"x" * 70_000}, 413, "larger than 65536"),
        ("REJ422", {"X-Gantry-Token": "token-ghost"}, None, 422, "unknown camera 'cam-ghost'"),
        ("REJ403", ONE, {"camera_id": "cam-2"}, 403, "camera_id"),
        ("REJ400A", ONE, {"confidence": 3}, 400, "confidence"),
        ("REJ400B", ONE, {"colour": "red"}, 400, "colour"),
        ("REJ415", ONE | {"Content-Type": "text/plain"}, None, 415, "Content-Type"),
    ],
)
def test_rejections_answer_the_right_status_and_produce_nothing(
    server, broker, topic_records, plate, headers, body, status, message
) -> None:
    answer = httpx.post(
        f"{server.url}/v1/reads",
        content=gantry_json(plate, TS, **(body or {})),
        headers={"Content-Type": "application/json"} | headers,
    )
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]
    assert ("WWW-Authenticate" in answer.headers) == (status == 401)
    assert reads(topic_records, broker, plate, expected=1, timeout_s=1) == []


def test_times_outside_the_window_are_400_in_every_dialect(server, broker, topic_records) -> None:
    far = datetime(2100, 1, 1, tzinfo=UTC)
    answers = [
        httpx.post(f"{server.url}/v1/reads", content=gantry_json("FAR1", datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
                   headers=ONE | {"Content-Type": "application/json"}),
        httpx.post(f"{server.url}/isapi/anpr", content=hikvision_xml("FAR1", far, "far-1"),
                   headers=ONE | {"Content-Type": "application/xml"}),
        httpx.get(f"{server.url}/v1/plate", params=access_query("FAR1", session="far-2", time=far.isoformat()),
                  headers={"Authorization": "Bearer token-one"}),
    ]
    assert [a.status_code for a in answers] == [400, 400, 400], [a.text for a in answers]
    assert all("event_time.max_future_s" in a.json()["error"] for a in answers)
    old = httpx.post(f"{server.url}/v1/reads", content=gantry_json("FAR1", datetime(1970, 1, 1, tzinfo=UTC)),
                     headers=ONE | {"Content-Type": "application/json"})
    assert old.status_code == 400 and "event_time.max_past_s" in old.json()["error"]
    assert reads(topic_records, broker, "FAR1", expected=1, timeout_s=1) == []


def test_an_overlong_hikvision_country_is_400_and_produces_nothing(server, broker, topic_records) -> None:
    xml = hikvision_xml("LONG1", TS, "long-1").replace(b"<country>GB</country>", b"<country>" + b"G" * 5000 + b"</country>")
    answer = httpx.post(f"{server.url}/isapi/anpr", content=xml, headers=ONE | {"Content-Type": "application/xml"})
    assert answer.status_code == 400 and "ANPR.country: at most 16 characters" in answer.json()["error"]
    assert reads(topic_records, broker, "LONG1", expected=1, timeout_s=1) == []


def test_oversized_multipart_without_length_is_413(server) -> None:
    content_type, body = hikvision_multipart(
        hikvision_xml("BIG1", TS), JPEG_PLATE, b"\xff\xd8" + b"x" * 70_000
    )

    def chunks():
        yield from (body[i : i + 4096] for i in range(0, len(body), 4096))

    answer = httpx.post(
        f"{server.url}/isapi/anpr", content=chunks(), headers=ONE | {"Content-Type": content_type}
    )
    assert answer.status_code == 413


def test_fuzzed_bodies_get_only_4xx_and_the_server_survives(server) -> None:
    rng = random.Random(5)
    xml = hikvision_xml("FUZZ1", TS, "f").rstrip()  # then every truncation cuts into the document
    json_body = gantry_json("FUZZ1", TS, "f")
    content_type, multipart_body = hikvision_multipart(xml, JPEG_PLATE, JPEG_OVERVIEW)
    multipart_body = multipart_body.rstrip()
    cases = []
    for _ in range(60):
        noise = rng.randbytes(rng.randint(0, 3000))
        cases += [
            ("/v1/reads", "application/json", noise),
            ("/v1/reads", "application/json", json_body[: rng.randint(0, len(json_body) - 1)]),
            ("/isapi/anpr", "application/xml", xml[: rng.randint(0, len(xml) - 1)]),
            ("/isapi/anpr", "application/xml", noise),
            ("/isapi/anpr", content_type, multipart_body[: rng.randint(0, len(multipart_body) - 1)]),
            ("/isapi/anpr", "multipart/form-data; boundary=zz", noise),
            ("/v1/plate", "image/jpeg", noise),
        ]
    with httpx.Client(base_url=server.url, headers=ONE, timeout=10) as client:
        statuses = [
            client.post(
                path, content=body, headers={"Content-Type": ctype}, params={"licensePlate": "FUZZ2"}
            ).status_code
            for path, ctype, body in cases
            if path != "/v1/plate" or not (body == b"" or body.startswith(b"\xff\xd8"))  # those are valid
        ]
        bad_params = client.get("/v1/plate", params={"licensePlate": "\x00" * 40, "ap": "\u2603"}).status_code
    assert set(statuses) | {bad_params} <= set(range(400, 500)), sorted(set(statuses))
    assert server.alive


def test_health_and_metrics_count_what_happened(server) -> None:
    httpx.post(f"{server.url}/v1/reads", content=b"{}", headers={"X-Gantry-Token": "nope"})
    assert httpx.get(f"{server.health_url}/healthz").status_code == 200
    metrics = httpx.get(f"{server.health_url}/metrics").text
    assert 'gantry_errors_total{reason="unauthorized",stage="ingest"}' in metrics
    assert 'gantry_messages_out_total{stage="ingest",topic="plate_reads"}' in metrics
