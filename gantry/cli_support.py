"""What every command needs: the configuration, loaded once, with errors that say what to fix."""

from __future__ import annotations

import logging
from typing import NoReturn

import typer
from rich.console import Console

from gantry.config import GantryConfig, load_config
from gantry.errors import GantryError

console = Console(stderr=True)


def config_of(ctx: typer.Context) -> GantryConfig:
    """The validated configuration for this invocation (``--config`` on the root command)."""
    root = ctx.find_root()
    root.ensure_object(dict)
    if "config" not in root.obj:
        try:
            root.obj["config"] = load_config(root.params.get("config"))
        except GantryError as exc:
            fail(str(exc))
    return root.obj["config"]


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("kafka", "aiokafka", "urllib3", "httpx", "mode"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
