"""Plate and overview pictures, stored by reference next to the reads they belong to.

Pictures do not travel on Kafka: they are written once to a store (a local directory by default,
any S3-compatible bucket in production, both through ``pyarrow.fs``) and the read carries the
picture's URL in ``image_ref``. The layout ``<root>/<read day>/<camera>/<read_id>-<kind>.jpg``
lets retention delete whole days, matching the plate_reads table's TTL. In S3 a bucket lifecycle
rule does the same job; ``gantry ingest prune-snapshots`` works on both.

S3 URLs follow pyarrow: ``s3://bucket/prefix?endpoint_override=minio:9000&scheme=http``; the
credentials come from the usual AWS environment variables, never from the configuration.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from pyarrow import fs

from gantry.config import GantryConfig


def store_url(config: GantryConfig) -> str:
    return config.ingest.snapshot_url or (config.data_dir / "snapshots").resolve().as_uri()


class SnapshotStore:
    def __init__(self, url: str) -> None:
        if url.startswith("file://"):
            Path(url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        self._fs, self._root = fs.FileSystem.from_uri(url)
        self._scheme = "s3" if isinstance(self._fs, fs.S3FileSystem) else "file"

    def put(self, ts: datetime, camera_id: str, read_id: str, kind: str, jpeg: bytes) -> str:
        """Write one picture; returns the URL that the read carries as ``image_ref``."""
        folder = f"{self._root}/{ts.date().isoformat()}/{camera_id}"
        self._fs.create_dir(folder, recursive=True)
        path = f"{folder}/{read_id}-{kind}.jpg"
        with self._fs.open_output_stream(path) as out:
            out.write(jpeg)
        return f"{self._scheme}://{path}" if self._scheme == "s3" else Path(path).as_uri()

    def prune(self, today: date, retention_days: int) -> list[str]:
        """Delete the day folders older than the retention; returns the days deleted."""
        oldest_kept = today - timedelta(days=retention_days)
        deleted = []
        for info in self._fs.get_file_info(fs.FileSelector(self._root, allow_not_found=True)):
            try:
                day = date.fromisoformat(info.base_name)
            except ValueError:
                continue  # not a day folder: not ours to delete
            if info.type == fs.FileType.Directory and day < oldest_kept:
                self._fs.delete_dir(info.path)
                deleted.append(info.base_name)
        return sorted(deleted)
