"""Writing a file so that it survives a crash: whole or not at all, and on disk when we return."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_durably(target: Path, data: bytes, tmp_dir: Path | None = None) -> None:
    """Written aside (mode 0600), fsynced, renamed over ``target``, then the folder fsynced: a
    reader sees the old file or the new one, never a part, and a power cut keeps what we acked."""
    _make_folders(target.parent)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)


def _make_folders(folder: Path) -> None:
    """``mkdir -p`` that fsyncs the parent of each folder it makes: a new folder is an entry in its
    parent, which a power cut loses like any unsynced write, and every file under it with it."""
    if folder.is_dir():
        return
    _make_folders(folder.parent)
    folder.mkdir(exist_ok=True)
    _fsync_folder(folder.parent)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
