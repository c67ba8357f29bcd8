"""Which camera a request comes from: one secret token per edge camera.

Tokens never live in the repository's YAML: they come from the environment variable named by
``ingest.tokens_env`` (``camera=token,camera=token``) and/or the YAML file ``ingest.tokens_file``
(``camera: token`` lines), which a deployment mounts from its secret store. A camera presents its
token as ``X-Gantry-Token: <token>``, ``Authorization: Bearer <token>``, or as the password of
HTTP Basic authentication (what many ANPR cameras can be configured to send).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping

import yaml
from pydantic import SecretStr

from gantry.config import IngestConfig
from gantry.errors import ConfigError


def load_tokens(settings: IngestConfig, environ: Mapping[str, str] = os.environ) -> dict[str, SecretStr]:
    """Camera id -> token, from the tokens file and then the environment (which wins)."""
    tokens: dict[str, SecretStr] = {}
    if settings.tokens_file is not None:
        try:
            data = yaml.safe_load(settings.tokens_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{settings.tokens_file}: cannot read camera tokens: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str | int) for v in data.values()):
            raise ConfigError(f"{settings.tokens_file}: expected `camera_id: token` lines")
        tokens |= {str(camera): SecretStr(str(token)) for camera, token in data.items()}
    for pair in filter(None, (p.strip() for p in environ.get(settings.tokens_env, "").split(","))):
        camera, sep, token = pair.partition("=")
        if not sep or not camera or not token:
            raise ConfigError(f"${settings.tokens_env}: expected camera=token pairs separated by commas")
        tokens[camera.strip()] = SecretStr(token.strip())
    return tokens


class TokenBook:
    """Finds the camera of a presented token by the token's hash.

    Looking up a digest rather than the token itself keeps lookups O(1) for thousands of cameras
    without a timing side channel on the secret.
    """

    def __init__(self, tokens: Mapping[str, SecretStr]) -> None:
        self._by_digest = {_digest(token.get_secret_value()): camera for camera, token in tokens.items()}

    def __len__(self) -> int:
        return len(self._by_digest)

    def camera_of(self, headers: Mapping[str, str]) -> str | None:
        presented = presented_token(headers)
        return self._by_digest.get(_digest(presented)) if presented else None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def presented_token(headers: Mapping[str, str]) -> str | None:
    if token := headers.get("X-Gantry-Token"):
        return token
    scheme, _, credentials = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None
