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
from gantry.errors import StackError

STACK_FILE = "stack.json"


@dataclass(frozen=True)
class Endpoints:
    bootstrap_servers: str
    warehouse_dsn: str
    ray_address: str | None


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
    """The addresses to use now; a clear error if the embedded stack is needed but not up."""
    stack = read_stack(config)
    broker = config.broker.bootstrap_servers or stack.get("broker")
    warehouse = config.warehouse.dsn or stack.get("warehouse")
    if not broker or not warehouse:
        missing = "broker" if not broker else "warehouse"
        raise StackError(
            f"no {missing} address: set it in the configuration or start the embedded stack with `gantry up` "
            f"(looked in {stack_file(config)})"
        )
    return Endpoints(broker, warehouse, config.ray.address or stack.get("ray"))
