"""The embedded broker's object store, spoken to over HTTP as Tansu's S3 client speaks to it.

Tansu keeps its metadata consistent with conditional writes, so the preconditions are tested
both ways; everything the broker acknowledged lives in these files, so a write must be on disk,
fsynced, before it is answered, and still there after the server is killed and started again.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gantry.broker import BUCKET, free_port, wait_listening
from gantry.objectstore import ObjectStore

S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"
SERVE = "import sys; from pathlib import Path; from gantry.objectstore import serve; " \
        "serve(Path(sys.argv[1]), int(sys.argv[2]), buckets=(sys.argv[3],))"


class Server:
    """``gantry.objectstore.serve`` in a process of its own, as the stack runs it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/{BUCKET}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        self.process = subprocess.Popen([sys.executable, "-c", SERVE, str(self.root), str(self.port), BUCKET])
        wait_listening(self.port, self.process, "object store", timeout_s=30)
        return self

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def file(self, key: str) -> Path:
        return self.root / BUCKET / key


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("objects") / "store").start()
    yield running
    running.kill()


def put(server: Server, key: str, body: bytes, **headers: str) -> requests.Response:
    return requests.put(f"{server.url}/{key}", data=body, headers=headers, timeout=10)


def get(server: Server, key: str, **headers: str) -> requests.Response:
    return requests.get(f"{server.url}/{key}", headers=headers, timeout=10)


def test_if_none_match_creates_an_object_only_once(server):
    first = put(server, "create/once", b"first", **{"If-None-Match": "*"})
    assert first.status_code == 200 and first.headers["ETag"]
    second = put(server, "create/once", b"second", **{"If-None-Match": "*"})
    assert second.status_code == 412
    assert b"PreconditionFailed" in second.content
    assert get(server, "create/once").content == b"first"


def test_if_match_replaces_only_the_version_it_names(server):
    etag = put(server, "meta/watermark", b"v1").headers["ETag"]
    assert put(server, "meta/watermark", b"lost", **{"If-Match": '"not-the-etag"'}).status_code == 412
    assert get(server, "meta/watermark").content == b"v1"
    replaced = put(server, "meta/watermark", b"v2", **{"If-Match": etag})
    assert replaced.status_code == 200 and replaced.headers["ETag"] != etag
    assert put(server, "meta/watermark", b"stale", **{"If-Match": etag}).status_code == 412  # v1's etag is gone
    assert get(server, "meta/watermark").content == b"v2"
    assert put(server, "meta/never-written", b"x", **{"If-Match": etag}).status_code == 412


def test_get_serves_byte_ranges(server):
    put(server, "records/batch", b"0123456789")
    part = get(server, "records/batch", Range="bytes=2-5")
    assert part.status_code == 206
    assert part.content == b"2345"
    assert part.headers["Content-Range"] == "bytes 2-5/10"
    assert get(server, "records/batch", Range="bytes=7-").content == b"789"
    assert get(server, "records/batch").content == b"0123456789"


def test_head_gives_size_and_etag_without_the_body(server):
    etag = put(server, "head/me", b"twelve bytes").headers["ETag"]
    head = requests.head(f"{server.url}/head/me", timeout=10)
    assert head.status_code == 200
    assert (head.headers["Content-Length"], head.headers["ETag"]) == ("12", etag)
    assert head.content == b""
    assert requests.head(f"{server.url}/head/missing", timeout=10).status_code == 404


def test_delete_removes_the_object_and_its_file(server):
    put(server, "gone/soon", b"x")
    assert server.file("gone/soon").exists()
    assert requests.delete(f"{server.url}/gone/soon", timeout=10).status_code == 204
    assert not server.file("gone/soon").exists()
    assert get(server, "gone/soon").status_code == 404
    assert requests.delete(f"{server.url}/gone/soon", timeout=10).status_code == 204  # as S3: idempotent


def list_page(server: Server, **query: str) -> tuple[list[str], str | None]:
    answer = requests.get(server.url, params={"list-type": "2", **query}, timeout=10)
    assert answer.status_code == 200
    result = ET.fromstring(answer.content)
    keys = [c.findtext(f"{S3}Key") for c in result.iter(f"{S3}Contents")]
    truncated = result.findtext(f"{S3}IsTruncated") == "true"
    return keys, result.findtext(f"{S3}NextContinuationToken") if truncated else None


def test_list_objects_v2_by_prefix_in_pages(server):
    wanted = [f"topics/t1/{n:02d}.batch" for n in range(5)]
    for key in [*reversed(wanted), "topics/t10/00.batch", "topicsx/other"]:
        put(server, key, b"x")
    assert list_page(server, prefix="topics/t1/")[0] == wanted
    assert list_page(server, prefix="topics/t1")[0] == [*wanted, "topics/t10/00.batch"]
    keys, token = list_page(server, prefix="topics/t1/", **{"max-keys": "2"})
    pages = [keys]
    while token:
        keys, token = list_page(server, prefix="topics/t1/", **{"max-keys": "2", "continuation-token": token})
        pages.append(keys)
    assert pages == [wanted[0:2], wanted[2:4], wanted[4:]]


def test_a_partitions_listing_follows_every_write_and_a_sweep(server):
    """Listings are kept between LISTs (Tansu lists a partition's batches on every fetch): they
    must still show a batch written, deleted or rewritten here, a start-after in the middle, and a
    batch removed behind the store's back (the retention sweep, a person) must not be listed."""
    prefix = "topics/p/partitions/0/records/"
    batches = [f"{prefix}{n:020d}.batch" for n in range(0, 50, 10)]
    for key in batches[:3]:
        put(server, key, b"x")
    assert list_page(server, prefix=prefix)[0] == batches[:3]
    for key in batches[3:]:
        put(server, key, b"x")
    assert list_page(server, prefix=prefix)[0] == batches
    assert list_page(server, prefix=prefix, **{"start-after": batches[1]})[0] == batches[2:]
    assert list_page(server, prefix=f"{prefix}0000000000000000003")[0] == [batches[3]]
    requests.delete(f"{server.url}/{batches[0]}", timeout=10)
    assert list_page(server, prefix=prefix)[0] == batches[1:]
    server.file(batches[1]).unlink()
    assert list_page(server, prefix=prefix)[0] == batches[2:]
    put(server, batches[2], b"longer")
    answer = requests.get(server.url, params={"list-type": "2", "prefix": batches[2]}, timeout=10)
    assert ET.fromstring(answer.content).findtext(f"{S3}Contents/{S3}Size") == "6"


@pytest.mark.parametrize("path", ["/tansu/../x", "/tansu/%2E%2E/x", "/tansu/a/..%2F..%2Fx", "/..%2Fx/y"])
def test_a_key_reaching_outside_the_bucket_is_refused(server, path):
    """Sent as raw request lines: an HTTP library would resolve the dots before sending."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("PUT", path, body=b"escaped")
        assert connection.getresponse().status == 400
    finally:
        connection.close()
    assert not any(f.read_bytes() == b"escaped" for f in server.root.parent.rglob("*") if f.is_file())


def test_an_acknowledged_write_survives_kill_9_and_a_restart(tmp_path):
    server = Server(tmp_path / "store").start()
    etag = put(server, "offsets/group", b"committed", **{"If-None-Match": "*"}).headers["ETag"]
    server.kill()
    assert server.file("offsets/group").read_bytes() == b"committed"
    assert not list((tmp_path / "store" / ".tmp").iterdir())  # nothing half-written beside it
    server.start()
    try:
        again = get(server, "offsets/group")
        assert (again.content, again.headers["ETag"]) == (b"committed", etag)
        assert put(server, "offsets/group", b"twice", **{"If-None-Match": "*"}).status_code == 412
        assert put(server, "offsets/group", b"next", **{"If-Match": etag}).status_code == 200
    finally:
        server.kill()


def test_a_write_is_answered_only_once_its_file_and_every_new_folder_are_fsynced(tmp_path, monkeypatch):
    """A power cut keeps only what was fsynced: the file, the folder naming it, and each folder
    made for it, which is an entry in its own parent."""
    synced: list[Path] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))

    store = ObjectStore(tmp_path / "store", buckets=(BUCKET,))
    monkeypatch.setattr(os, "fsync", fsync)
    asyncio.run(store.put(BUCKET, "topics/t/0/00.batch", b"records", if_match=None, if_none_match="*"))
    bucket = (tmp_path / "store" / BUCKET).resolve()  # as /proc names the files synced
    written = bucket / "topics/t/0/00.batch"
    assert written.read_bytes() == b"records"
    data = next(i for i, path in enumerate(synced) if path.name.startswith(".00.batch."))  # written aside
    assert synced.index(written.parent) > data  # the data before the entry that names it
    assert {bucket / "topics/t/0", bucket / "topics/t", bucket / "topics", bucket} <= set(synced)
