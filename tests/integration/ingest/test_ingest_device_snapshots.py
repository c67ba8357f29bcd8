"""2N's last 5 snapshots per device, on `gantry ingest serve` against the real broker: a camera's
token lists its own last five pictures, the latest first, and fetches each from the snapshot store,
also after the endpoint restarted; another camera's token, none, or a camera not configured is
refused."""

from __future__ import annotations

import httpx
import pytest

from ingest.examples import access_query

pytestmark = pytest.mark.integration
TWO = {"X-Gantry-Token": "token-two"}  # cam-2


def post_read(server, plate: str, jpeg: bytes | None) -> httpx.Response:
    query = access_query(plate, session=f"evt-{plate}")  # its read id: the same read sent again is one read
    if jpeg is None:
        return httpx.get(f"{server.url}/v1/plate", params=query, headers=TWO)
    return httpx.post(f"{server.url}/v1/plate", params=query, content=jpeg,
                      headers=TWO | {"Content-Type": "image/jpeg"})


def test_a_device_lists_and_fetches_its_last_five_snapshots(server) -> None:
    pictures = {f"SNAP{n}": b"\xff\xd8\xff\xe0snapshot-" + bytes([n]) for n in range(7)}
    sent = [post_read(server, plate, jpeg) for plate, jpeg in pictures.items()]
    sent.append(post_read(server, "SNAPNONE", None))  # no picture: nothing kept
    sent.append(post_read(server, "SNAP6", pictures["SNAP6"]))  # the same read again: kept once
    assert [a.status_code for a in sent] == [200] * 9, [a.text for a in sent]
    read_ids = [a.json()["read_id"] for a in sent[:7]]

    listed = httpx.get(f"{server.url}/v1/devices/cam-2/snapshots", headers=TWO)
    assert listed.status_code == 200, listed.text
    snapshots = listed.json()["snapshots"]
    assert [s["read_id"] for s in snapshots] == read_ids[:1:-1]  # the last five, the latest first
    assert all(s["image_ref"].startswith("file://") for s in snapshots)
    fetched = httpx.get(f"{server.url}/v1/devices/cam-2/snapshots/{read_ids[-1]}", headers=TWO)
    assert (fetched.status_code, fetched.headers["Content-Type"], fetched.content) == (
        200, "image/jpeg", pictures["SNAP6"])

    pushed_out = httpx.get(f"{server.url}/v1/devices/cam-2/snapshots/{read_ids[0]}", headers=TWO)
    assert pushed_out.status_code == 404

    server.stop()  # the list is the store's: a restarted endpoint shows the same five
    server.start()
    again = httpx.get(f"{server.url}/v1/devices/cam-2/snapshots", headers=TWO)
    assert again.status_code == 200 and again.json()["snapshots"] == snapshots
    assert httpx.get(f"{server.url}/v1/devices/cam-2/snapshots/{read_ids[-1]}", headers=TWO).content == pictures["SNAP6"]
    assert httpx.get(f"{server.url}/v1/devices/cam-2/snapshots").status_code == 401
    other = httpx.get(f"{server.url}/v1/devices/cam-2/snapshots", headers={"X-Gantry-Token": "token-one"})
    assert other.status_code == 403 and "cam-1" in other.json()["error"]
    ghost = httpx.get(f"{server.url}/v1/devices/cam-ghost/snapshots", headers={"X-Gantry-Token": "token-ghost"})
    assert ghost.status_code == 422
