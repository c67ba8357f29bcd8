"""Where the running services are: from the configuration, or from the embedded stack.

When ``broker.bootstrap_servers`` or ``warehouse.dsn`` is empty the embedded stack provides it;
``gantry up`` records the addresses it chose in ``<data_dir>/stack.json`` and every later command
reads them from there, so the same commands work against real clusters and the embedded stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gantry.config import GantryConfig
from gantry.credentials import read_secret, warehouse_password_file, with_password
from gantry.errors import StackError

STACK_FILE = "stack.json"


@dataclass(frozen=True)
class Endpoints:
    """The service addresses; reading one that is neither configured nor running says how to fix it."""

    broker: str | None
    warehouse: str | None
    ray_address: str | None
    stack_path: Path

    @property
    def bootstrap_servers(self) -> str:
        return self.broker or self._missing("broker", "broker.bootstrap_servers")

    @property
    def warehouse_dsn(self) -> str:
        return self.warehouse or self._missing("warehouse", "warehouse.dsn")

    def _missing(self, what: str, key: str) -> str:
        raise StackError(
            f"no {what} address: set {key} in the configuration or start the embedded stack with "
            f"`gantry up` (looked in {self.stack_path})"
        )


def stack_file(config: GantryConfig) -> Path:
    return config.data_dir / STACK_FILE


def read_stack(config: GantryConfig) -> dict:
    path = stack_file(config)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StackError(f"{path}: unreadable stack state ({exc}); run `gantry down` then `gantry up`") from None


def endpoints(config: GantryConfig) -> Endpoints:
    """The addresses to use now: the configuration's, else those of the running embedded stack."""
    stack = read_stack(config)
    return Endpoints(
        broker=config.broker.bootstrap_servers or stack.get("broker"),
        warehouse=config.warehouse.dsn or _with_stack_password(config, stack.get("warehouse")),
        ray_address=config.ray.address or stack.get("ray"),
        stack_path=stack_file(config),
    )


def _with_stack_password(config: GantryConfig, dsn: str | None) -> str | None:
    """The embedded warehouse's DSN with its password, which ``stack.json`` never holds: it is
    read from the stack's secrets, readable only by whoever may read the data directory."""
    password = read_secret(warehouse_password_file(config.data_dir)) if dsn else ""
    return with_password(dsn, password) if password else dsn
