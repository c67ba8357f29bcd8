"""A stand-in for the root ``gantry`` command with this stage's commands mounted, so the tests
can run ``python -m tests.integration.stream_jobs.gantry_root jobs worker`` as the stack would."""

from __future__ import annotations

from pathlib import Path

import typer

from stream_jobs.cli import app as jobs_app
from stream_jobs.cli import hotlist_app

root = typer.Typer(no_args_is_help=True)


@root.callback()
def main(ctx: typer.Context, config: Path | None = typer.Option(None, "--config")) -> None:
    ctx.ensure_object(dict)


root.add_typer(jobs_app, name="jobs")
root.add_typer(hotlist_app, name="hotlist")

if __name__ == "__main__":
    root()
