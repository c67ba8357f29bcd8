"""Files: written so that they survive a crash (whole or not at all, and on disk when we return),
and read as UTF-8 text whose first bad byte is reported by line."""

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


class NotUtf8(ValueError):
    """Text that is not UTF-8; the message starts with the line of its first bad byte, for the
    caller to put after the file's name."""


def utf8_text(data: bytes) -> str:
    """``data`` as text: UTF-8, with or without the byte-order mark that spreadsheets and some
    editors write first (which would otherwise become part of the first name in the file)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise NotUtf8(f"{line}: not UTF-8 text (byte 0x{data[exc.start]:02x})") from None
