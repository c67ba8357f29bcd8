"""Example requests in each edge-camera dialect, as real devices send them.

``gantry bench ingest`` posts them, the tests feed them to the parsers and to the server, and
docs/ingest.md shows them; keeping them in one place keeps the three in step.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime

HIKVISION_NS = "http://www.hikvision.com/ver20/XMLSchema"


def gantry_json(plate: str, ts: datetime, event_id: str | None = None, **fields: object) -> bytes:
    body: dict[str, object] = {"ts": ts.isoformat(), "plate": plate, **fields}
    if event_id:
        body["event_id"] = event_id
    for picture in ("plate_image", "overview_image"):
        if isinstance(body.get(picture), bytes):
            body[picture] = base64.b64encode(body[picture]).decode()  # type: ignore[arg-type]
    return json.dumps(body).encode()


def hikvision_xml(
    plate: str,
    ts: datetime,
    uuid_: str | None = None,
    *,
    confidence: int = 100,
    direction: str = "forward",
    event_type: str = "ANPR",
    vehicle_type: str = "vehicle",
) -> bytes:
    uuid_element = f"<UUID>{uuid_}</UUID>" if uuid_ else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="{HIKVISION_NS}">
<ipAddress>10.0.0.64</ipAddress>
<portNo>80</portNo>
<protocol>HTTP</protocol>
<macAddress>44:19:b6:00:00:01</macAddress>
<channelID>1</channelID>
<dateTime>{ts.isoformat()}</dateTime>
<activePostCount>1</activePostCount>
<eventType>{event_type}</eventType>
<eventState>active</eventState>
<eventDescription>ANPR</eventDescription>
<ANPR>
<country>GB</country>
<licensePlate>{plate}</licensePlate>
<line>1</line>
<direction>{direction}</direction>
<confidenceLevel>{confidence}</confidenceLevel>
<plateType>unknown</plateType>
<plateColor>yellow</plateColor>
<vehicleType>{vehicle_type}</vehicleType>
<pictureInfoList>
<pictureInfo><fileName>licensePlatePicture.jpg</fileName><type>licensePlatePicture</type></pictureInfo>
<pictureInfo><fileName>detectionPicture.jpg</fileName><type>detectionPicture</type></pictureInfo>
</pictureInfoList>
</ANPR>
{uuid_element}
</EventNotificationAlert>
""".encode()


def multipart(parts: list[tuple[str, str, str, bytes]]) -> tuple[str, bytes]:
    """(content type, body) of a multipart/form-data request from (name, filename, type, data)."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += (
            (
                f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return f"multipart/form-data; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


def hikvision_multipart(xml: bytes, plate_jpeg: bytes, overview_jpeg: bytes) -> tuple[str, bytes]:
    return multipart(
        [
            ("anpr.xml", "anpr.xml", "application/xml", xml),
            ("licensePlatePicture.jpg", "licensePlatePicture.jpg", "image/jpeg", plate_jpeg),
            ("detectionPicture.jpg", "detectionPicture.jpg", "image/jpeg", overview_jpeg),
        ]
    )


def access_query(plate: str, entry: bool = True, session: str | None = None, **extra: str) -> dict[str, str]:
    query = {"licensePlate": plate, "ap": "0" if entry else "1", **extra}
    if session:
        query["session"] = session
    return query
