"""The embedded stack's own secrets: random values in 0600 files under ``<data_dir>/secrets``.

Where production configures its secrets (environment, mounted files), the embedded stack makes
its own, once, and keeps them with its data: the warehouse password every client presents and
the key that pseudonymises plates. Each file appears whole or not at all (written aside with mode
0600, fsynced, renamed over its place), and an empty one (a crash of an older writer, a
``touch``) is replaced rather than used as an empty secret.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from gantry.files import write_durably

WAREHOUSE_USER = "gantry"


def secrets_dir(data_dir: Path) -> Path:
    return data_dir / "secrets"


def warehouse_password_file(data_dir: Path) -> Path:
    return secrets_dir(data_dir) / "warehouse.password"


def pseudonym_key_file(data_dir: Path) -> Path:
    return secrets_dir(data_dir) / "pseudonym.key"


def ensure_secret(path: Path, make=lambda: secrets.token_urlsafe(32)) -> str:
    """The secret in ``path``, made first if the file is missing or empty."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    existing = read_secret(path)
    if existing:
        return existing
    value = make()
    write_durably(path, (value + "\n").encode())
    return value


def read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def with_password(dsn: str, password: str) -> str:
    """``dsn`` carrying the password: what the stack's own clients use, never what it prints."""
    parts = urlsplit(dsn)
    if parts.password or not parts.hostname:
        return dsn
    user = parts.username or WAREHOUSE_USER
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))
