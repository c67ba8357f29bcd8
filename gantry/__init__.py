"""Gantry's core: configuration, event schemas, topics, the embedded stack and the CLI."""

__version__ = "0.1.0"
