"""``python -m ingest``: the ingest commands without the root ``gantry`` CLI (used by tests and bench)."""

from ingest.cli import app

app()
