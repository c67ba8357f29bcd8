"""One way to reach the warehouse, whatever it runs on.

A DSN names either the in-process chDB engine (``chdb:///dir``) or a ClickHouse server over HTTP
(``http(s)://user:pass@host:port[/db]``; the embedded ``gantry warehouse serve`` speaks the same
protocol). Everything else in :mod:`warehouse` takes the client this returns, so the same DDL and
queries run on a laptop and on a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import clickhouse_connect
from clickhouse_connect.driver import Client

from gantry.config import GantryConfig
from gantry.errors import ConfigError
from gantry.runtime import endpoints


@dataclass(frozen=True)
class Dsn:
    scheme: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    username: str = "default"
    password: str = ""
    database: str | None = None

    @property
    def in_process(self) -> bool:
        return self.scheme == "chdb"

    def redacted(self) -> str:
        """The DSN without its password, for logs and messages."""
        if self.in_process:
            return f"chdb://{self.path or 'memory'}"
        return f"{self.scheme}://{self.username}@{self.host}:{self.port}/{self.database or ''}"


def parse_dsn(dsn: str) -> Dsn:
    """Split a warehouse DSN into its parts; an unknown scheme is a configuration error."""
    parsed = urlparse(dsn)
    if parsed.scheme == "chdb":
        location = parsed.path if not parsed.netloc else parsed.netloc
        if not location or location in ("memory", ":memory:"):
            return Dsn("chdb")
        return Dsn("chdb", path=location)
    if parsed.scheme in ("http", "https"):
        if not parsed.hostname:
            raise ConfigError(f"warehouse.dsn {dsn!r}: no host (expected {parsed.scheme}://host:port)")
        try:
            port = parsed.port or (8443 if parsed.scheme == "https" else 8123)
        except ValueError:
            raise ConfigError(f"warehouse.dsn {dsn!r}: the port is not a number") from None
        return Dsn(
            parsed.scheme,
            host=parsed.hostname,
            port=port,
            username=unquote(parsed.username or "default"),
            password=unquote(parsed.password or ""),
            database=parsed.path.strip("/") or None,
        )
    raise ConfigError(
        f"warehouse.dsn {dsn!r}: unknown scheme {parsed.scheme!r} (use chdb:///dir or http(s)://host:port)"
    )


def connect(dsn: str, database: str | None = "gantry") -> Client:
    """A clickhouse-connect client; ``database`` is used unless the DSN names one.

    The database need not exist yet (``migrate`` creates it): it is only applied per query.
    """
    target = parse_dsn(dsn)
    if target.in_process:
        client = clickhouse_connect.get_client(interface="chdb", path=target.path)
    else:
        client = clickhouse_connect.get_client(
            host=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            secure=target.scheme == "https",
            # Sessions serialise a client's concurrent queries on a real server; we need none.
            autogenerate_session_id=False,
        )
    client.database = target.database or database
    return client


def warehouse_dsn(config: GantryConfig) -> str:
    """The configured DSN, else the embedded stack's (with its password from the stack's secrets)."""
    return endpoints(config).warehouse_dsn


def open_warehouse(config: GantryConfig) -> Client:
    return connect(warehouse_dsn(config), config.warehouse.database)
