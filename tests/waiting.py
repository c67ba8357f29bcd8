"""Polling for a condition in tests: real services answer when they are ready, not on a schedule."""

from __future__ import annotations

import time


def wait_until(check, timeout: float, what: str) -> None:
    """Until ``check()`` is true (an exception counts as not yet); TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
