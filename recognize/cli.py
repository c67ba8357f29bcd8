"""``gantry eval recognition``: accuracy and speed of the Recognizer on a benchmark folder."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import numpy as np

    from recognize.base import PlateResult
    from recognize.evaluation import Report

eval_app = typer.Typer(help="Evaluate Gantry components on labelled data.", no_args_is_help=True)


@eval_app.callback()
def _main() -> None:
    """Keep ``recognition`` a named sub-command even while it is the only one."""


@eval_app.command("recognition")
def recognition(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="Folder of NAME.jpg + NAME.txt (OpenALPR benchmark layout)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last stdout line."),
    preset: str | None = typer.Option(None, "--preset",
                                      help="fast | accurate (default: recognize.preset of the configuration)"),
    backend: str | None = typer.Option(None, "--backend",
                                       help="onnx-cpu | onnx-cuda | tensorrt (default: recognize.backend)"),
    misses: Path = typer.Option(Path("eval-misses.json"), "--misses", help="Where to write misses."),
    batch: int | None = typer.Option(None, "--batch", min=1,
                                     help="Images per recognizer call (default: recognize.batch_size, as the pool)."),
    threads: int = typer.Option(0, "--threads", min=0, help="Cores the recognizer may use (0: all)."),
    regions: str | None = typer.Option(None, "--regions",
                                       help="Comma-separated plate regions, as a camera's regions "
                                            "(default: recognize.regions, the global fallback)."),
    view: str | None = typer.Option(None, "--view",
                                    help="Read the photos as another camera would show them: rolled | near | dim | blurred "
                                         "(default: as shot; see recognize/views.py)."),
    baseline: bool = typer.Option(False, "--baseline",
                                  help="Also run the plain whole-image baseline (same models, every "
                                       "line kept) and report it beside Gantry."),
) -> None:
    """Exact-match rate, false reads and throughput of plate recognition on DIRECTORY."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from gantry.cli_support import config_of
    from recognize.baseline import WholeImageBaseline
    from recognize.diagnose import miss_cause
    from recognize.evaluation import AnnotationError, Sample, baseline_only, evaluate, explain_misses, load_dataset
    from recognize.recognizer import Recognizer
    from recognize.views import view_named

    err = Console(stderr=True)
    settings = config_of(ctx).recognize
    if regions is not None:
        settings = settings.model_copy(update={"regions": tuple(r.strip() for r in regions.split(",") if r.strip())})
    batch = batch or settings.batch_size
    if view is not None:
        try:
            view_named(view)
        except ValueError as exc:
            err.print(f"[red]error:[/red] --view: {exc}")
            raise typer.Exit(2) from None
    try:
        recognizer = Recognizer.configured(settings, preset=preset, backend=backend, threads=threads)
    except ValueError as exc:  # an unknown preset, backend or region
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        dataset = load_dataset(directory)
    except AnnotationError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    for image in dataset.skipped:
        err.print(f"[yellow]warning:[/yellow] {image}: no annotation {image.with_suffix('.txt').name}, skipped")
    samples = dataset.samples

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=True) as bar:

        def run(name: str, read_batch: Callable[[list[np.ndarray]], list[list[PlateResult]]]) -> Report:
            task = bar.add_task(name, total=len(samples))

            def tracked(items: Iterable[Sample]) -> Iterable[Sample]:
                for item in items:
                    yield item
                    bar.advance(task)

            return evaluate(read_batch, samples, tracked, batch=batch, view=view)

        report = run(f"recognition ({recognizer.preset})", recognizer.read_batch)
        explain_misses(report, samples, partial(miss_cause, recognizer), view)
        plain = run("whole-image baseline", WholeImageBaseline(recognizer).read_batch) if baseline else None
    summary = {"preset": recognizer.preset, "backend": recognizer.backend, "regions": ",".join(settings.regions),
               "view": view or "as shot",
               "batch": batch, "threads": recognizer.workers, **report.summary(), "skipped": len(dataset.skipped)}
    if plain is not None:
        summary |= {f"baseline_{key}": value for key, value in plain.summary().items()
                    if key in ("exact_rate", "strict_exact_rate", "images_per_s")}
        summary["baseline_only"] = baseline_only(report, plain)
    summary["misses_file"] = str(misses)
    misses.write_text(json.dumps(report.misses(), indent=2) + "\n", encoding="utf-8")
    err.print(f"misses written to {misses}")
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        for key, value in summary.items():
            typer.echo(f"{key:>22}: {value}")


if __name__ == "__main__":
    eval_app()
