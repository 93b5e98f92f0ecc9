"""The `likeness` command. Parses, calls the library, renders; no logic lives here.

Each area registers its commands from `likeness.commands.<area>`; this module owns the
root app and turns `LikenessError` into one line and an exit code.
"""

from __future__ import annotations

import os
import sys

import typer

from likeness.commands import (
    animate,
    bench,
    dataset,
    faces,
    provenance,
    scan,
    serve,
    system,
    train,
    watermark,
)
from likeness.errors import LikenessError, out_of_space
from likeness.ui import err_console, safe

app = typer.Typer(
    name="likeness",
    help=(
        "Make, mark and catch synthetic portrait videos.\n\n"
        "Start with `likeness doctor` to see what is installed, then "
        "`likeness models install` to fetch the face models."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show full tracebacks instead of one-line errors."
    ),
) -> None:
    if debug:
        os.environ["LIKENESS_DEBUG"] = "1"


_COMMANDS = (system, faces, animate, scan, provenance, watermark, dataset, train, bench, serve)
for _module in _COMMANDS:
    _module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: every LikenessError becomes one line on stderr and its code."""
    try:
        # Without standalone mode click hands back typer.Exit codes instead of exiting.
        code = app(args=argv, standalone_mode=False)
    except LikenessError as err:
        if os.environ.get("LIKENESS_DEBUG"):
            raise
        err = out_of_space(err) or err  # a full disk, whatever the writer called it
        err_console.print(f"[bold red]error:[/] {safe(err)}", soft_wrap=True)
        return err.exit_code
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        return 130
    except SystemExit as exc:  # typer/click exit paths (--help, usage errors)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    except Exception as err:
        # Usage errors come from the click that typer vendors; recognise them by shape.
        exit_code = getattr(err, "exit_code", None)
        if callable(getattr(err, "show", None)) and isinstance(exit_code, int):
            err.show()
            return exit_code
        if type(err).__name__ == "Abort":
            err_console.print("[bold red]aborted[/]")
            return 1
        if os.environ.get("LIKENESS_DEBUG"):
            raise
        full = out_of_space(err)
        if full is not None:  # not our fault: the disk (or quota, or size limit) is full
            err_console.print(f"[bold red]error:[/] {safe(full)}", soft_wrap=True)
            return full.exit_code
        err_console.print(
            f"[bold red]internal error:[/] {safe(type(err).__name__)}: {safe(err)} "
            "(run with --debug for the traceback)",
            soft_wrap=True,
        )
        return 1
    return code if isinstance(code, int) else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
