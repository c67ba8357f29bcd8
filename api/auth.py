"""Who is asking the API, and what their role lets them see.

Tokens never live in code or in ``gantry.yaml``: they come from the environment variable named by
``api.tokens_env`` (``name:role=token`` pairs separated by commas) and/or the YAML file
``api.tokens_file`` (``name: {role: operator, token: ...}``), which a deployment mounts from its
secret store; the environment wins for a name in both. A client presents its token as
``Authorization: Bearer <token>``.

Two roles:

- ``operator``: plates in clear and the pictures; every search must give a ``reason`` and is
  written to ``audit_log`` (who, what, why, how many rows).
- ``analyst``: plates only as keyed pseudonyms (:func:`gantry.privacy.pseudonymise`), no
  pictures, no search by plate.

Each role may look back at most ``api.roles.<role>.max_lookback_days``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import get_args

import yaml
from pydantic import SecretStr

from gantry.config import ApiConfig, ApiRole
from gantry.errors import ConfigError

ROLES: tuple[str, ...] = get_args(ApiRole)


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    max_lookback_days: int

    @property
    def sees_plates(self) -> bool:
        return self.role == "operator"

    def earliest(self, now: datetime | None = None) -> datetime:
        """The oldest time this principal may search."""
        return (now or datetime.now(UTC)) - timedelta(days=self.max_lookback_days)


@dataclass(frozen=True)
class Grant:
    name: str
    role: str
    token: SecretStr


def _grant(name: str, role: str, token: str, where: str) -> Grant:
    if role not in ROLES:
        raise ConfigError(f"{where}: {name}: unknown role {role!r} (use {' or '.join(ROLES)})")
    if not name or not token:
        raise ConfigError(f"{where}: every token needs a name and a value")
    return Grant(name, role, SecretStr(token))


def load_grants(settings: ApiConfig, environ: Mapping[str, str] = os.environ) -> dict[str, Grant]:
    """Name -> grant, from the tokens file and then the environment (which wins)."""
    grants: dict[str, Grant] = {}
    if settings.tokens_file is not None:
        where = str(settings.tokens_file)
        try:
            data = yaml.safe_load(settings.tokens_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{where}: cannot read API tokens: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise ConfigError(f"{where}: expected `name: {{role: operator|analyst, token: ...}}` entries")
        for name, entry in data.items():
            grants[str(name)] = _grant(str(name), str(entry.get("role", "")), str(entry.get("token", "")), where)
    where = f"${settings.tokens_env}"
    for pair in filter(None, (p.strip() for p in environ.get(settings.tokens_env, "").split(","))):
        who, sep, token = pair.partition("=")
        name, colon, role = who.partition(":")
        if not sep or not colon:
            raise ConfigError(f"{where}: expected name:role=token pairs separated by commas")
        grants[name.strip()] = _grant(name.strip(), role.strip(), token.strip(), where)
    return grants


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenBook:
    """Finds a presented token's principal by the token's digest: O(1), no timing channel on the secret."""

    def __init__(self, grants: Mapping[str, Grant], settings: ApiConfig) -> None:
        self._by_digest: dict[bytes, Principal] = {}
        for grant in grants.values():
            limits = getattr(settings.roles, grant.role)
            self._by_digest[_digest(grant.token.get_secret_value())] = Principal(
                grant.name, grant.role, limits.max_lookback_days
            )

    def __len__(self) -> int:
        return len(self._by_digest)

    def principal(self, authorization: str | None) -> Principal | None:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        return self._by_digest.get(_digest(token))
