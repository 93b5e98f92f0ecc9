"""Terminal output shared by every command: one console, progress bars, safe text.

One progress protocol for all long work: a `Progress` is a factory,
`with progress(description, total) as advance: ... advance(n)`; `progress_bar` draws one
on a terminal, `no_progress` draws nothing. Library code takes `progress: Progress |
None` and falls back to `no_progress`.

rich is imported on first use (the consoles resolve lazily, PEP 562), so library code
that takes a `Progress` imports this module where rich is not installed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from rich.console import Console

    console: Console
    err_console: Console

T = TypeVar("T")


class Advance(Protocol):
    """Moves a progress bar on by `n` steps."""

    def __call__(self, n: int = 1) -> None: ...


class Progress(Protocol):
    """A progress-bar factory: `with progress("scanning", total) as advance: advance()`;
    `total` None when unknown."""

    def __call__(self, description: str, total: int | None) -> AbstractContextManager[Advance]: ...


def _nothing(n: int = 1) -> None:
    return None


@contextmanager
def no_progress(description: str = "", total: int | None = None) -> Iterator[Advance]:
    """The `Progress` that shows nothing."""
    yield _nothing


def __getattr__(name: str) -> Any:
    if name in globals():
        return globals()[name]
    if name in ("console", "err_console"):
        from rich.console import Console

        made = Console(stderr=name == "err_console", highlight=False, soft_wrap=True)
        globals()[name] = made  # one console each, made once
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def printable(text: object) -> str:
    """Control characters (escape sequences, newlines, tabs) in file-controlled text
    become "?": they could move a terminal's cursor or forge lines in any output."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))


def safe(text: object) -> str:
    """Text from files (names, manifest fields) made inert for rich markup and terminals."""
    from rich.markup import escape

    return escape(printable(text))


def interactive() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Advance]:
    """The `Progress` of the CLI: a bar on a terminal, nothing otherwise."""
    if not interactive():
        yield _nothing
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Bar(*columns, console=__getattr__("err_console"), transient=True) as bar:
        task = bar.add_task(safe(description), total=total)
        yield lambda n=1: bar.advance(task, n)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    with progress_bar(description, total) as advance:
        for item in items:
            yield item
            advance()
