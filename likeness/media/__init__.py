"""Video and image I/O on PyAV and OpenCV: probe, decode, encode (outputs: likeness.fsio).

Everything here raises likeness errors with one-line messages; PyAV's and FFmpeg's
exceptions never reach callers.

PyAV loads only when a video is touched: the frame iterator and the writer load on
first use (PEP 562) and `probe` imports PyAV inside. So images, atomic outputs and
input checks work where PyAV is not installed (the GPU training machine).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from likeness.lazy import lazy_exports
from likeness.media.images import read_image, write_image
from likeness.media.inputs import check_input_file, is_image_path
from likeness.media.limits import DEFAULT_LIMITS, MediaLimits
from likeness.media.probe import MediaInfo, probe, require_video
from likeness.media.suffixes import (
    IMAGE_SUFFIXES,
    MEDIA_SUFFIXES,
    VIDEO_SUFFIXES,
    VIDEO_WRITE_SUFFIXES,
    is_media_name,
)

if TYPE_CHECKING:
    from likeness.media.decode import Frame, apply_rotation, iter_frames
    from likeness.media.encode import VideoWriter

__all__ = [
    "DEFAULT_LIMITS",
    "IMAGE_SUFFIXES",
    "MEDIA_SUFFIXES",
    "VIDEO_SUFFIXES",
    "VIDEO_WRITE_SUFFIXES",
    "Frame",
    "MediaInfo",
    "MediaLimits",
    "VideoWriter",
    "apply_rotation",
    "check_input_file",
    "is_image_path",
    "is_media_name",
    "iter_frames",
    "probe",
    "read_image",
    "require_video",
    "write_image",
]


__getattr__, __dir__, _ = lazy_exports(
    __name__,
    {
        "likeness.media.decode": ("Frame", "apply_rotation", "iter_frames"),
        "likeness.media.encode": ("VideoWriter",),
    },
)
