"""HTTP status codes for likeness errors: every failure answers `{"error": "one line"}`.

The CLI's rule carries over: the caller's fault (bad input, a file that is not media, no
face) is a 4xx with what to change; missing set-up on the server (signing keys, models)
is a 503 with the command that fixes it; our own fault is a 500 that names the
exception type, never a traceback.
"""

from __future__ import annotations

from likeness.errors import (
    InputError,
    LikenessError,
    MediaError,
    NoFaceError,
    SetupError,
)


class HttpError(LikenessError):
    """An error that carries its own status (size limit, token, form shape)."""

    status = 400
    kind = "bad request"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class UploadTooLarge(HttpError):
    status = 413
    kind = "too large"


class NotMedia(HttpError):
    status = 415
    kind = "media"


class Unauthorized(HttpError):
    status = 401
    kind = "unauthorized"


def status_of(err: BaseException) -> int:
    """The HTTP status for an exception raised while answering a request."""
    if isinstance(err, HttpError):
        return err.status
    if isinstance(err, NoFaceError):
        return 422
    if isinstance(err, MediaError):
        return 415
    if isinstance(err, InputError):
        return 400
    if isinstance(err, SetupError):
        return 503
    return 500


def message_of(err: BaseException) -> str:
    """The one line the client sees; a fault of ours names its type (as the CLI does)."""
    if isinstance(err, LikenessError):
        return str(err)
    text = " ".join(str(err).split())
    return (
        f"internal error: {type(err).__name__}: {text}"
        if text
        else (f"internal error: {type(err).__name__}")
    )


def status_of_kind(kind: str | None) -> int:
    """The status for a scan record's error kind (`ScanError.kind`)."""
    return {
        "media": 415,
        "no face": 422,
        "bad input": 400,
        "output": 400,
        "provenance": 400,
        "setup": 503,
        "models": 503,
    }.get(kind or "", 500)
