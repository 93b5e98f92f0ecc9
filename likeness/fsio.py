"""Atomic outputs: write beside the target under a hidden name, then rename into place.

A reader of the target sees either the old file or the complete new one, never a
half-written file, whatever happens to the writer.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from likeness.errors import OutputError

_CREATE_TRIES = 8
# Longest file name most filesystems take, in bytes; a temp name adds a prefix and a tag
# to the target's, so a target near this length must have its name cut in the temp.
NAME_MAX = 255


def hidden_name(name: str, tag: str) -> str:
    """`.NAME` + `tag`, with NAME cut (on a character boundary) so the whole fits
    NAME_MAX bytes: a legal 250-byte target name must not make an illegal temp name."""
    room = NAME_MAX - len(f".{tag}".encode())
    cut = name.encode()[:room].decode(errors="ignore")
    return f".{cut}{tag}"


def check_output_path(target: str | os.PathLike[str], inputs: Sequence[Path] = ()) -> Path:
    """Refuse, before any work is done, an output that could not be written."""
    target = Path(target)
    parent = target.parent
    if target.is_symlink():
        # Writing through a link lets whoever planted it (in a shared folder, say) pick
        # the file we overwrite; replacing it would silently break the user's link.
        raise OutputError(
            f"output {target} is a symbolic link; likeness does not write through or "
            "replace links: remove it or choose another name"
        )
    if not parent.exists():
        raise OutputError(f"output folder {parent} does not exist")
    if not parent.is_dir():
        raise OutputError(f"output folder {parent} is not a folder")
    if target.is_dir():
        raise OutputError(f"output {target} is a directory, expected a file path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to {parent}: permission denied")
    for source in inputs:
        if _same_file(target, Path(source)):
            raise OutputError(f"output {target} is the same file as input {source}")
    return target


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return a.resolve() == b.resolve()


def temp_path_for(target: Path) -> Path:
    """A hidden name beside `target` whose last suffix is the target's, so that
    encoders that pick the format by extension still pick the right one."""
    return target.with_name(hidden_name(target.stem, f".{secrets.token_hex(4)}.tmp{target.suffix}"))


def _create_temp(target: Path) -> Path:
    for _ in range(_CREATE_TRIES):
        tmp = temp_path_for(target)
        try:
            # O_EXCL: never clobber someone else's temp; 0o666 & umask like a normal file.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except PermissionError:
            raise OutputError(f"cannot write to {target.parent}: permission denied") from None
        except OSError as exc:
            raise OutputError(f"cannot write to {target.parent}: {exc.strerror or exc}") from None
        os.close(fd)
        return tmp
    raise OutputError(f"cannot make a temporary file beside {target}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_path(path: Path) -> None:
    """fsync a file or folder (a folder's fsync makes a rename in it durable); some
    filesystems refuse, which costs nothing."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _rename(tmp: Path, target: Path) -> None:
    try:
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike[str], *, inputs: Sequence[Path] = ()) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success fsync and rename it onto
    `target`, on any exception delete it and re-raise."""
    target = check_output_path(target, inputs)
    tmp = _create_temp(target)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"nothing was written for {target}")
        _fsync_file(tmp)
        _rename(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_path(target.parent)


def make_temp_dir(target: Path) -> Path:
    """A new hidden folder beside `target` to build a folder output in (see
    `install_dir`)."""
    for _ in range(_CREATE_TRIES):
        tmp = target.with_name(hidden_name(target.name, f".{secrets.token_hex(4)}.tmp"))
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot write to {target.parent}: {exc.strerror or exc}") from None
        return tmp
    raise OutputError(f"cannot make a temporary folder beside {target}")


def install_dir(tmp: Path, target: Path) -> None:
    """fsync the finished folder `tmp` and rename it onto `target`; an old folder there is
    moved aside first, put back if the rename fails, and deleted only once the new one
    is in place."""
    for path in [*tmp.rglob("*"), tmp]:
        fsync_path(path)
    old = None
    try:
        if target.exists():
            old = target.with_name(hidden_name(target.name, f".{secrets.token_hex(4)}.old"))
            os.rename(target, old)
        os.rename(tmp, target)
    except OSError as exc:
        if old is not None and not target.exists():
            with contextlib.suppress(OSError):
                os.rename(old, target)
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    fsync_path(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
