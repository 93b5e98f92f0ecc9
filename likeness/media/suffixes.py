"""The one table of media file names: what likeness writes, and what a folder gives.

A file named on the command line is judged by its content (`inputs.sniff_image_format`,
`probe`), never by these; they decide only what to write and which files of a folder
to pick up.
"""

from __future__ import annotations

import os
from pathlib import Path

# Still images OpenCV reads and writes.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# Containers the H.264 writer makes.
VIDEO_WRITE_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
# Videos a folder gives (scan, dataset pack): anything FFmpeg commonly reads.
VIDEO_SUFFIXES = (*VIDEO_WRITE_SUFFIXES, ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".gif", ".3gp")
MEDIA_SUFFIXES = frozenset(VIDEO_SUFFIXES + IMAGE_SUFFIXES)


def is_media_name(path: str | os.PathLike[str]) -> bool:
    """Whether a folder's file is picked up as media, by its suffix (any case)."""
    return Path(path).suffix.lower() in MEDIA_SUFFIXES
