"""Error kinds. Each carries one line for the user and the exit code the CLI uses.

Exit 2 means the user can fix it (bad input, missing setup); exit 1 means our fault.
"""

from __future__ import annotations


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
