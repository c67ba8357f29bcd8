"""Starting and stopping child processes the way every Gantry process expects: each answers
``/healthz`` when ready, and is stopped with SIGTERM before SIGKILL."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path


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


def healthy(port: int) -> bool:
    """Whether the process with this health port answers ``/healthz`` with 200 now."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def wait_healthy(process: subprocess.Popen, port: int, *, timeout_s: float = 60, what: str = "process") -> None:
    """Until ``process`` answers ``/healthz``; an error naming ``what`` if it exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        if healthy(port):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} not healthy after {timeout_s:.0f} s")


def started_at(pid: int) -> int | None:
    """When the process with ``pid`` started (clock ticks since boot), or None if there is none.

    A PID alone can be reused by an unrelated process after a crash or reboot; together with its
    start time it names one process, so a stale record never signals a stranger. Without /proc
    (not Linux) the PID is all there is to go on, and 0 stands for "it exists".
    """
    if not Path("/proc/self").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return 0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else int(fields[19])
