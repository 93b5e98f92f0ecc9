"""Input files: existence, size and permission checks, and content sniffing.

The kind of a file is decided by its first bytes, never by its name: a PNG renamed
`.mp4` is still a PNG, and callers that need a video say so in one line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from likeness.errors import InputError, MediaError
from likeness.media.limits import DEFAULT_LIMITS, MediaLimits

# Readable names for the still-image formats we decode ourselves (OpenCV).
IMAGE_FORMAT_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP", "bmp": "BMP"}

# BITMAPCOREHEADER, BITMAPINFOHEADER and its later versions: a text file that happens
# to start with "BM" will not also carry one of these header sizes.
_BMP_DIB_SIZES = {12, 40, 52, 56, 64, 108, 124}

HEAD_BYTES = 32


def check_input_file(path: str | os.PathLike[str], limits: MediaLimits = DEFAULT_LIMITS) -> Path:
    """Return the resolved path of a readable, non-empty regular file within the size limit."""
    given = Path(path)
    try:
        st = given.stat()
    except FileNotFoundError:
        raise InputError(f"no such file: {given}") from None
    except PermissionError:
        raise InputError(f"cannot read {given}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read {given}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{given} is a directory, expected a file")
    if not stat.S_ISREG(st.st_mode):
        # FIFOs and devices would block or never end.
        raise InputError(f"{given} is not a regular file")
    if st.st_size == 0:
        raise MediaError(f"{given} is empty (0 bytes)")
    if st.st_size > limits.max_bytes:
        raise MediaError(
            f"{given} is {st.st_size / 2**30:.1f} GiB: larger than the limit of "
            f"{limits.max_bytes / 2**30:.1f} GiB"
        )
    try:
        # os.access says yes to root even on read-only mounts; only opening is certain.
        with open(given, "rb") as handle:
            handle.read(1)
    except PermissionError:
        raise InputError(f"cannot read {given}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read {given}: {exc.strerror or exc}") from None
    return given.resolve()


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def sniff_image_format(head: bytes) -> str | None:
    """'jpeg', 'png', 'webp' or 'bmp' from a file's first bytes; None for anything else.

    GIF is left out on purpose: it can animate, so it goes through the video decoder.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    bmp_header = int.from_bytes(head[14:18], "little") if len(head) >= 18 else 0
    if head[:2] == b"BM" and bmp_header in _BMP_DIB_SIZES:
        return "bmp"
    return None


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True for a JPEG, PNG, WebP or BMP file, judged by content (False if unreadable)."""
    try:
        return sniff_image_format(read_head(Path(path))) is not None
    except OSError:
        return False
