"""Writing a file so that it survives a crash: whole or not at all, and on disk when we return."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_durably(target: Path, data: bytes, tmp_dir: Path | None = None) -> None:
    """Written aside (mode 0600), fsynced, renamed over ``target``, then the folder fsynced: a
    reader sees the old file or the new one, never a part, and a power cut keeps what we acked."""
    target.parent.mkdir(parents=True, exist_ok=True)
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
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
