"""Terminal output shared by every command: one console, progress bars, safe text."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def printable(text: object) -> str:
    """Control characters (escape sequences, newlines, tabs) in file-controlled text
    become "?": they could move a terminal's cursor or forge lines in any output."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))


def safe(text: object) -> str:
    """Text from files (names, manifest fields) made inert for rich markup and terminals."""
    return escape(printable(text))


def interactive() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[callable]:
    """Yield an `advance(n=1)` function; draws a bar only on a terminal."""
    if not interactive():
        yield lambda n=1: None
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(safe(description), total=total)
        yield lambda n=1: progress.advance(task, n)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    with progress_bar(description, total) as advance:
        for item in items:
            yield item
            advance()
