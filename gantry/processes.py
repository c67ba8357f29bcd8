"""Stopping a child process the way every Gantry process expects to be stopped."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen | None, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``: the process gets its chance to flush and commit."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
