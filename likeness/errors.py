"""Error kinds. Each carries one line for the user and the exit code the CLI uses.

Exit 2 means the user can fix it (bad input, missing setup); exit 1 means our fault.
"""

from __future__ import annotations

import errno


class LikenessError(Exception):
    """Base error: `str(err)` is the one-line message shown to the user."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str) -> None:
        # One line, always: file-controlled text must not add lines to our output.
        super().__init__(" ".join(str(message).split()))


class InputError(LikenessError):
    """A file or argument the user gave cannot be used."""

    exit_code = 2
    kind = "bad input"


class MediaError(InputError):
    """A file is not decodable media, is corrupt, or is outside our limits."""

    kind = "media"


class OutputError(InputError):
    """An output path cannot be written (missing folder, no permission, same as input)."""

    kind = "output"


class NoFaceError(InputError):
    """A face was needed and none was found."""

    kind = "no face"


class SetupError(LikenessError):
    """Something `likeness` needs is not installed (models, keys); the message says how."""

    exit_code = 2
    kind = "setup"


class ModelError(SetupError):
    """Model files missing or not what we expect."""

    kind = "models"


class ProvenanceError(InputError):
    """Keys, signing, manifests or watermarks."""

    kind = "provenance"


# A write refused for lack of room: disk full, over quota, over RLIMIT_FSIZE.
_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
_SQLITE_FULL = 13  # sqlite3.SQLITE_FULL, "database or disk is full"


def out_of_space(err: BaseException) -> OutputError | None:
    """The one-line OutputError for `err` when it, or an error it was raised from or
    while handling, is a write refused for lack of room; None otherwise.

    Libraries report a full disk in many shapes (OSError, PyAV's OSError, sqlite's
    OperationalError, torch's RuntimeError over the OSError, our own errors over any of
    those), so the CLI asks here once instead of every writer guessing."""
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in _NO_SPACE_ERRNOS:
            reason = cur.strerror or errno.errorcode.get(cur.errno or 0, "no space")
        elif getattr(cur, "sqlite_errorcode", None) == _SQLITE_FULL:
            reason = "database or disk is full"
        else:
            cur = cur.__cause__ or cur.__context__
            continue
        return OutputError(
            f"out of disk space ({reason}): free some space (or raise the quota or file "
            "size limit) and run again"
        )
    return None
