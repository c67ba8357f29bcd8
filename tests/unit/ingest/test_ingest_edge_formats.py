"""Each edge-camera dialect parsed to the same PlateRead; every malformed field named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ingest.edge_formats import (
    EdgeFormatError,
    Part,
    parse_access_query,
    parse_gantry_json,
    parse_hikvision,
    to_plate_read,
)
from ingest.examples import access_query, gantry_json, hikvision_multipart, hikvision_xml

TS = datetime(2026, 11, 21, 8, 30, 15, 250000, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
JPEG_A = b"\xff\xd8plate-picture"
JPEG_B = b"\xff\xd8overview-picture"


def read_of(event):
    return to_plate_read(event, "cam-1", RECEIVED, None)


def multipart_parts(xml: bytes) -> list[Part]:
    return [
        Part("application/xml", xml, "anpr.xml", "anpr.xml"),
        Part("image/jpeg", JPEG_A, "licensePlatePicture.jpg", "licensePlatePicture.jpg"),
        Part("image/jpeg", JPEG_B, "detectionPicture.jpg", "detectionPicture.jpg"),
    ]


def test_the_three_dialects_give_the_same_read() -> None:
    from_json = read_of(parse_gantry_json(gantry_json("ab12 cde", TS, "evt-7", direction="in")))
    from_xml = read_of(parse_hikvision([Part("application/xml", hikvision_xml("AB12CDE", TS, "evt-7"))]))
    from_query = read_of(
        parse_access_query(access_query("AB-12-CDE", session="evt-7", time=TS.isoformat()), None)
    )
    assert from_json.model_dump(exclude={"region"}) == from_xml.model_dump(exclude={"region"})
    assert from_json.model_dump(exclude={"region"}) == from_query.model_dump(exclude={"region"})
    assert (from_json.plate, from_json.direction, from_json.ts) == ("AB12CDE", "in", TS)


def test_read_id_without_event_id_is_stable_per_camera_time_and_plate() -> None:
    first = read_of(parse_gantry_json(gantry_json("AB12CDE", TS)))
    again = read_of(parse_gantry_json(gantry_json("ab12cde", TS)))
    later = read_of(parse_gantry_json(gantry_json("AB12CDE", TS + timedelta(seconds=1))))
    assert first.read_id == again.read_id != later.read_id
    assert (
        to_plate_read(parse_gantry_json(gantry_json("AB12CDE", TS)), "cam-2", RECEIVED, None).read_id
        != first.read_id
    )


def test_hikvision_fields_and_pictures() -> None:
    local = TS.astimezone(timezone(timedelta(hours=8)))
    event = parse_hikvision(
        multipart_parts(hikvision_xml("XY99ZZZ", local, confidence=87, direction="reverse"))
    )
    read = read_of(event)
    assert (read.plate, read.ts, read.confidence, read.direction, read.region) == (
        "XY99ZZZ",
        TS,
        0.87,
        "out",
        "GB",
    )
    assert event.snapshots == {"plate": JPEG_A, "overview": JPEG_B}


def test_hikvision_vehicle_type_is_the_reads_class_unless_it_is_the_generic_vehicle() -> None:
    def reported(vehicle_type: str) -> str | None:
        xml = hikvision_xml("AB12CDE", TS, vehicle_type=vehicle_type)
        return read_of(parse_hikvision([Part("application/xml", xml)])).vehicle_class

    assert reported("truck") == "truck" and reported(" Bus ") == "bus"
    assert reported("vehicle") is None and reported("unknown") is None  # Hikvision's "not classified"
    assert read_of(parse_gantry_json(gantry_json("AB12CDE", TS, vehicle_class="Van"))).vehicle_class == "van"
    with pytest.raises(EdgeFormatError, match="ANPR.vehicleType: at most 32 characters"):
        parse_hikvision([Part("application/xml", hikvision_xml("AB12CDE", TS, vehicle_type="t" * 33))])


def test_hikvision_heartbeat_is_ignored_not_rejected() -> None:
    event = parse_hikvision([Part("text/xml", hikvision_xml("AB12CDE", TS, event_type="videoloss"))])
    assert event.ignored == "eventType videoloss"


def test_access_query_without_time_uses_receipt_and_maps_exit() -> None:
    read = read_of(parse_access_query(access_query("AB12CDE", entry=False, gate="3"), JPEG_B))
    assert (read.ts, read.direction, read.confidence) == (RECEIVED, "out", 1.0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "(body)"),
        (b'{"plate": "AB12CDE"}', "ts"),
        (b'{"plate": "AB12CDE", "ts": "2026-11-21T08:00:00"}', "ts"),
        (b'{"plate": "AB12CDE", "ts": "2026-11-21T08:00:00Z", "confidence": 7}', "confidence"),
        (b'{"plate": "AB12CDE", "ts": "2026-11-21T08:00:00Z", "speed": 7}', "speed"),
        (b'{"plate": "--", "ts": "2026-11-21T08:00:00Z"}', "plate"),
        (b'{"plate": "AB1", "ts": "2026-11-21T08:00:00Z", "direction": "up"}', "direction"),
        (b'{"plate": "AB1", "ts": "2026-11-21T08:00:00Z", "plate_image": "bm90IGpwZWc="}', "plate picture"),
    ],
)
def test_gantry_json_errors_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(EdgeFormatError) as err:
        parse_gantry_json(body)
    assert str(err.value).startswith(field)


@pytest.mark.parametrize(
    ("xml", "field"),
    [
        (b"<EventNotificationAlert><eventType>ANPR", "EventNotificationAlert: not well-formed"),
        (b"<Other/>", "EventNotificationAlert: the root element"),
        (
            hikvision_xml("AB12CDE", TS).replace(b'encoding="UTF-8"', b'encoding="UTF-88"'),
            "EventNotificationAlert: unknown encoding",
        ),
        (
            b"<EventNotificationAlert><dateTime>2026-11-21T08:00:00Z</dateTime></EventNotificationAlert>",
            "EventNotificationAlert.eventType",
        ),
        (
            b"<EventNotificationAlert><eventType>ANPR</eventType></EventNotificationAlert>",
            "EventNotificationAlert.ANPR",
        ),
        (hikvision_xml("", TS), "ANPR.licensePlate"),
        (hikvision_xml("AB12CDE", TS, confidence=300), "ANPR.confidenceLevel"),
        (
            hikvision_xml("AB12CDE", TS).replace(TS.isoformat().encode(), b"yesterday"),
            "EventNotificationAlert.dateTime",
        ),
        (
            b'<!DOCTYPE x [<!ENTITY a "aaaa">]><EventNotificationAlert>&a;</EventNotificationAlert>',
            "EventNotificationAlert: not well-formed",
        ),
    ],
)
def test_hikvision_errors_name_the_field(xml: bytes, field: str) -> None:
    with pytest.raises(EdgeFormatError) as err:
        parse_hikvision([Part("application/xml", xml)])
    assert str(err.value).startswith(field)


def test_hikvision_multipart_without_xml_is_rejected() -> None:
    with pytest.raises(EdgeFormatError, match="expected one XML part, found 0"):
        parse_hikvision([Part("image/jpeg", JPEG_A)])


def test_hikvision_example_multipart_builds() -> None:
    content_type, body = hikvision_multipart(hikvision_xml("AB12CDE", TS), JPEG_A, JPEG_B)
    assert (
        content_type.startswith("multipart/form-data; boundary=") and body.count(b"Content-Disposition") == 3
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"ap": "0"}, "licensePlate"),
        ({"licensePlate": "AB1", "ap": "2"}, "ap"),
        ({"licensePlate": "AB1", "time": "soon"}, "time"),
    ],
)
def test_access_query_errors_name_the_field(query: dict[str, str], field: str) -> None:
    with pytest.raises(EdgeFormatError) as err:
        parse_access_query(query, None)
    assert str(err.value).startswith(field)


def test_hikvision_xml_part_found_by_its_name_when_untyped() -> None:
    parts = [
        Part("application/octet-stream", hikvision_xml("NAMED1", TS), "anpr.xml"),
        Part("image/jpeg", JPEG_A),
    ]
    assert parse_hikvision(parts).plate == "NAMED1"


def test_cyrillic_plates_are_read_as_their_latin_look_alikes_and_others_rejected() -> None:
    xml = hikvision_xml("АВ123", TS, "evt-cyr")
    assert read_of(parse_hikvision([Part("application/xml", xml)])).plate == "AB123"
    with pytest.raises(EdgeFormatError, match="ANPR.licensePlate: .*not a plate letter"):
        parse_hikvision([Part("application/xml", hikvision_xml("京A12345", TS, "evt-cn"))])
    with pytest.raises(EdgeFormatError, match="licensePlate: .*not a plate letter"):
        parse_access_query({"licensePlate": "ÄB123"}, None)
    with pytest.raises(EdgeFormatError, match="plate: .*not a plate letter"):
        parse_gantry_json(gantry_json("ФЯ123", TS))


def _xml_with(xml: bytes, element: str, text: str) -> bytes:
    start = xml.index(f"<{element}>".encode()) + len(element) + 2
    end = xml.index(f"</{element}>".encode(), start)
    return xml[:start] + text.encode() + xml[end:]


@pytest.mark.parametrize(("element", "limit", "named"), [
    ("country", 16, "ANPR.country"),
    ("licensePlate", 32, "ANPR.licensePlate"),
    ("UUID", 128, "EventNotificationAlert.UUID"),
    ("eventType", 64, "EventNotificationAlert.eventType"),
])
def test_hikvision_free_text_fields_are_capped_like_the_json_dialect(element, limit, named) -> None:
    xml = hikvision_xml("AB12CDE", TS, "evt-1")
    longest = "AB-12-CDE".ljust(limit, "-")  # a plate once its separators are gone, and text for the rest
    assert parse_hikvision([Part("application/xml", _xml_with(xml, element, longest))]) is not None
    with pytest.raises(EdgeFormatError, match=f"{named}: at most {limit} characters, got {limit + 1}"):
        parse_hikvision([Part("application/xml", _xml_with(xml, element, longest + "-"))])


def test_hikvision_region_is_capped_when_it_stands_for_the_country() -> None:
    xml = hikvision_xml("AB12CDE", TS, "evt-1").replace(b"<country>GB</country>", b"<region>" + b"R" * 17 + b"</region>")
    with pytest.raises(EdgeFormatError, match="ANPR.region: at most 16 characters"):
        parse_hikvision([Part("application/xml", xml)])


@pytest.mark.parametrize(("name", "limit"), [("licensePlate", 32), ("session", 128), ("time", 64), ("ap", 64)])
def test_access_query_free_text_fields_are_capped(name, limit) -> None:
    query = {"licensePlate": "AB12CDE", "ap": "0"} | {name: "1" * (limit + 1)}
    with pytest.raises(EdgeFormatError, match=f"{name}: at most {limit} characters"):
        parse_access_query(query, None)
