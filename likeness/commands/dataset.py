"""`likeness dataset ...`: training packs (and, later, detector training sets)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    dataset_app = typer.Typer(
        help="Build training data from real videos and photos.", no_args_is_help=True
    )
    app.add_typer(dataset_app, name="dataset")
