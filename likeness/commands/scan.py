"""`likeness scan`: score videos and images for face manipulation, with provenance."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Filled in by the detector."""
