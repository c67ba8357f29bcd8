"""Who may talk to the embedded warehouse: its credential, and the host names it answers to.

The server listens on loopback, but everything on the machine can reach loopback: other users'
processes, and every web page the operator's browser opens (a page cannot read the answers, but
``<img src=http://127.0.0.1:8123/?query=DROP...>`` is sent all the same, and a page whose name
re-resolves to 127.0.0.1 can read them). So a request must carry the warehouse's password, which
lives in a 0600 file in the data directory, and must name this machine in its ``Host`` header.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gantry.credentials import WAREHOUSE_USER, ensure_secret, warehouse_password_file

USER = WAREHOUSE_USER
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Credential:
    user: str
    password: str

    def admits(self, user: str | None, password: str | None) -> bool:
        """Compared in constant time, so the answer's timing does not spell the password out."""
        if user is None or password is None:
            return False
        return hmac.compare_digest(f"{user}\0{password}".encode(), f"{self.user}\0{self.password}".encode())


@dataclass(frozen=True)
class Policy:
    """Who may ask: the credential (None: anyone on this machine), the names ``Host`` may carry,
    and the most bytes a request body may hold, compressed or not."""

    credential: Credential | None = None
    hosts: frozenset[str] = LOOPBACK_NAMES
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def embedded_credential(data_dir: Path) -> tuple[str, str]:
    """The embedded warehouse's (user, password), created on first use (see :mod:`gantry.credentials`)."""
    return USER, ensure_secret(warehouse_password_file(data_dir))


def presented(headers: Mapping[str, str], url_params: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(user, password) as ClickHouse clients send them: HTTP Basic (clickhouse-connect, Grafana),
    ``X-ClickHouse-User``/``X-ClickHouse-Key`` headers, or ``user``/``password`` URL parameters."""
    authorization = headers.get("Authorization", "")
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        return user, password
    if "X-ClickHouse-User" in headers or "X-ClickHouse-Key" in headers:
        return headers.get("X-ClickHouse-User", "default"), headers.get("X-ClickHouse-Key", "")
    if "user" in url_params or "password" in url_params:
        return url_params.get("user", "default"), url_params.get("password", "")
    return None, None


def host_allowed(host_header: str | None, allowed: frozenset[str]) -> bool:
    """Whether ``Host`` names one of ``allowed`` (any port): the defence against DNS rebinding."""
    if not host_header:
        return False
    try:
        parts = urlsplit(f"//{host_header.strip()}")
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return bool(parts.hostname) and parts.hostname.rstrip(".") in allowed
