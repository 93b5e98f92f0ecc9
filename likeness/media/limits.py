"""Size limits that every reader checks before it allocates pixels."""

from __future__ import annotations

from dataclasses import dataclass

from likeness.errors import MediaError


@dataclass(frozen=True)
class MediaLimits:
    """What a file may claim before we refuse it (hostile headers must fail fast)."""

    max_pixels: int = 40_000_000  # per frame or image
    max_side: int = 16384
    max_frames: int = 200_000
    max_bytes: int = 8 * 2**30


DEFAULT_LIMITS = MediaLimits()


def check_frame_size(name: str, width: int, height: int, limits: MediaLimits) -> None:
    """Refuse a picture size from a header, before anything of that size is allocated."""
    if width <= 0 or height <= 0:
        raise MediaError(f"cannot read {name}: its header gives no picture size")
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise MediaError(
            f"{name} is {width}x{height} pixels ({width * height / 1e6:.1f} MP): "
            f"larger than the limit of {limits.max_pixels / 1e6:.1f} MP "
            f"and {limits.max_side} px per side"
        )


def check_frame_count(name: str, frames: int, limits: MediaLimits) -> None:
    if frames > limits.max_frames:
        raise MediaError(f"{name} has {frames} frames: more than the limit of {limits.max_frames}")
