"""Plate and overview pictures, stored by reference next to the reads they belong to.

Pictures do not travel on Kafka: they are written once to a store (a local directory by default,
any S3-compatible bucket in production, both through ``pyarrow.fs``) and the read carries the
picture's URL in ``image_ref``, and so do the hits and charges the read caused. The layout
``<root>/<read day>/<camera>/<read_id>-<kind>.jpg`` lets retention (``gantry ingest
prune-snapshots``, on both kinds of store) keep a picture as long as the longest-lived row that
refers to it (:mod:`warehouse.evidence`): whole days while the reads are kept, then only the
evidence of hits and charges, then nothing. A bucket lifecycle rule cannot tell which pictures
rows refer to; one set to the longest retention is a backstop, no replacement.

S3 URLs follow pyarrow: ``s3://bucket/prefix?endpoint_override=minio:9000&scheme=http``; the
credentials come from the usual AWS environment variables, never from the configuration. An S3
``image_ref`` is the object's plain ``s3://bucket/key`` — no endpoint — so reads stay valid when the
deployment moves its bucket behind another endpoint; ``SnapshotStore.get`` reads one back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import get_args
from urllib.parse import unquote, urlsplit

from pyarrow import fs

from gantry.config import GantryConfig
from gantry.errors import ConfigError
from ingest.edge_formats import SnapshotKind


def store_url(config: GantryConfig) -> str:
    return config.ingest.snapshot_url or (config.data_dir / "snapshots").resolve().as_uri()


@dataclass(frozen=True)
class StoredRead:
    """The pictures of one read in the store, as :meth:`SnapshotStore.latest` finds them."""

    read_id: str
    stored_at: datetime  # when its newest picture was written
    image_ref: str  # the overview, else the plate picture (what the read carries)


@dataclass
class Pruned:
    """What :meth:`SnapshotStore.prune` did."""

    days_deleted: list[str] = field(default_factory=list)
    """Day folders deleted whole (no row refers to any of their pictures any more)."""
    pictures_deleted: int = 0
    """Pictures deleted from days that keep the evidence of hits or charges."""
    pictures_kept: int = 0
    """Pictures past the reads' retention, kept as the evidence of hits or charges."""


class SnapshotStore:
    def __init__(self, url: str) -> None:
        shown = url.split("?", 1)[0]  # the query may name hosts; enough to find the setting
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise ConfigError(
                f"ingest.snapshot_url ({parts.scheme}://…@{parts.hostname}): credentials do not belong in "
                "the configuration; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
            )
        if parts.scheme == "file":
            Path(unquote(parts.path)).mkdir(parents=True, exist_ok=True)
        try:
            self._fs, root = fs.FileSystem.from_uri(url)
        except (OSError, ValueError) as exc:  # a malformed URL, or S3 unreachable when asked for the region
            raise ConfigError(f"ingest.snapshot_url {shown}: {exc}") from None
        self._root = root.rstrip("/")  # pyarrow keeps the slash of s3://bucket/prefix/
        self._s3 = isinstance(self._fs, fs.S3FileSystem)

    def put(self, ts: datetime, camera_id: str, read_id: str, kind: str, jpeg: bytes) -> str:
        """Write one picture; returns the URL that the read carries as ``image_ref``."""
        folder = f"{self._root}/{ts.date().isoformat()}/{camera_id}"
        if not self._s3:  # S3 has no folders: creating them would cost four requests per picture
            self._fs.create_dir(folder, recursive=True)
        path = f"{folder}/{read_id}-{kind}.jpg"
        with self._fs.open_output_stream(path) as out:
            out.write(jpeg)
        return self._ref_of(path)

    def latest(self, camera_id: str, reads: int) -> list[StoredRead]:
        """The camera's last ``reads`` reads with pictures, the latest stored first.

        Day folders are read newest first until they hold ``reads`` reads, and one more: a read
        that arrives late is stored in the folder of its own, earlier day.
        """
        days = sorted((i.path for i in self._fs.get_file_info(fs.FileSelector(self._root, allow_not_found=True))
                       if _day_of(i) is not None), reverse=True)
        found: dict[tuple[str, str], list[fs.FileInfo]] = {}  # pictures by (day folder, read id)
        enough_at: int | None = None
        for n, day in enumerate(days):
            if enough_at is not None and n > enough_at + 1:
                break
            for picture in self._fs.get_file_info(fs.FileSelector(f"{day}/{camera_id}", allow_not_found=True)):
                read_id, _, kind = picture.base_name.removesuffix(".jpg").rpartition("-")
                if picture.type == fs.FileType.File and kind in get_args(SnapshotKind):
                    found.setdefault((day, read_id), []).append(picture)
            if enough_at is None and len(found) >= reads:
                enough_at = n
        stored = [StoredRead(read_id, max(p.mtime for p in pictures), self._ref_of(_shown(pictures).path))
                  for (_, read_id), pictures in found.items()]
        return sorted(stored, key=lambda r: r.stored_at, reverse=True)[:reads]

    def get(self, image_ref: str) -> bytes:
        """The picture behind a read's ``image_ref`` (the evidence for a charge or a hotlist hit)."""
        with self._fs.open_input_stream(self._path_of(image_ref)) as stream:
            return stream.read()

    def erase(self, image_ref: str) -> int:
        """Delete every picture of the read behind ``image_ref`` (it names one: the overview, else
        the plate picture; the others lie next to it as ``<read_id>-<kind>.jpg``); how many were
        there. A reference that is not the store's is refused, as by :meth:`get`."""
        folder, name = self._path_of(image_ref).rsplit("/", 1)
        read_id = name.rsplit("-", 1)[0]
        pictures = [f"{folder}/{read_id}-{kind}.jpg" for kind in get_args(SnapshotKind)]
        found = [i.path for i in self._fs.get_file_info(pictures) if i.type == fs.FileType.File]
        for path in found:
            self._fs.delete_file(path)
        return len(found)

    def prune(self, today: date, reads_days: int, longest_days: int,
              evidence: Callable[[date], Collection[str]]) -> Pruned:
        """Delete what no row refers to any more (the rule is :mod:`warehouse.evidence`'s): days
        within ``reads_days`` are kept whole, days past ``longest_days`` deleted whole, and of
        the days in between only the pictures of reads whose ``image_ref`` is in
        ``evidence(day)`` stay (every kind of such a read, as :meth:`erase` takes them)."""
        pruned = Pruned()
        for info in self._fs.get_file_info(fs.FileSelector(self._root, allow_not_found=True)):
            day = _day_of(info)  # None: not a day folder, not ours to delete
            if day is None or day >= today - timedelta(days=reads_days):
                continue
            if day >= today - timedelta(days=longest_days):
                stayed, deleted = self._keep_only(info.path, {self._read_of(ref) for ref in evidence(day)})
                if stayed:
                    pruned.pictures_kept += stayed
                    pruned.pictures_deleted += deleted
                    continue
            self._fs.delete_dir(info.path)
            pruned.days_deleted.append(info.base_name)
        pruned.days_deleted.sort()
        return pruned

    def _keep_only(self, day_path: str, kept_reads: Collection[str | None]) -> tuple[int, int]:
        """Delete the day's pictures of every read not in ``kept_reads``; how many stayed, how many went."""
        stayed = deleted = 0
        for picture in self._fs.get_file_info(fs.FileSelector(day_path, recursive=True)):
            if picture.type != fs.FileType.File:
                continue
            if picture.path.rsplit("-", 1)[0] in kept_reads:
                stayed += 1
            else:
                self._fs.delete_file(picture.path)
                deleted += 1
        return stayed, deleted

    def _read_of(self, image_ref: str) -> str | None:
        """The store's ``<folder>/<read_id>`` of a reference (None: not a picture of this store)."""
        try:
            return self._path_of(image_ref).rsplit("-", 1)[0]
        except ValueError:
            return None

    def _ref_of(self, path: str) -> str:
        """The URL of a picture at the store's ``path``: what reads carry as ``image_ref``."""
        return f"s3://{path}" if self._s3 else Path(path).as_uri()

    def _path_of(self, image_ref: str) -> str:
        """The store's path of a URL that ``put`` returned; refuses any other (it is not ours to read)."""
        parts = urlsplit(image_ref)
        path = f"{parts.netloc}{parts.path}" if self._s3 else unquote(parts.path)
        if parts.scheme != ("s3" if self._s3 else "file") or not path.startswith(f"{self._root}/"):
            raise ValueError(f"{image_ref} is not a picture of the snapshot store at {self._root}")
        return path


def _day_of(info: fs.FileInfo) -> date | None:
    """The day of a day folder (``<root>/<YYYY-MM-DD>``); None for anything else in the root."""
    if info.type != fs.FileType.Directory:
        return None
    try:
        return date.fromisoformat(info.base_name)
    except ValueError:
        return None


def _shown(pictures: list[fs.FileInfo]) -> fs.FileInfo:
    """The picture a read refers to: its overview, else its plate picture."""
    return next((p for p in pictures if p.base_name.endswith("-overview.jpg")), pictures[0])
