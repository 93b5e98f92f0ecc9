"""Frame iterators: one decoded RGB frame at a time, rotation applied, constant memory."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import cv2
import numpy as np

from likeness.errors import InputError, MediaError
from likeness.media.images import read_image
from likeness.media.inputs import check_input_file, read_head, sniff_image_format
from likeness.media.limits import DEFAULT_LIMITS, MediaLimits
from likeness.media.probe import (
    av_errors,
    av_reason,
    open_video,
    stream_fps,
    stream_rotation,
    stream_start,
    video_stream,
)

log = logging.getLogger(__name__)
AV_ERRORS = av_errors()
T = TypeVar("T")


@dataclass
class Frame:
    index: int  # position in the decoded stream (estimated from time after a seek)
    time: float  # seconds from the start of the stream
    image: np.ndarray  # H x W x 3 uint8 RGB, contiguous, upright


def apply_rotation(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn decoded pixels clockwise by `rotation` degrees (0/90/180/270) for display."""
    quarter_turns = (rotation // 90) % 4
    if quarter_turns == 0:
        return image
    return np.rot90(image, k=-quarter_turns)  # np.rot90 turns counter-clockwise


def iter_frames(
    path: str | os.PathLike[str],
    every: int = 1,
    max_frames: int | None = None,
    start: float | None = None,
    end: float | None = None,
    limits: MediaLimits = DEFAULT_LIMITS,
    strict: bool = True,
) -> Iterator[Frame]:
    """Yield every `every`-th frame whose time lies in [start, end), at most `max_frames`.

    `every` counts from the first frame in range. A still image yields one frame at
    time 0 whatever the range. A damaged or truncated stream raises MediaError after the
    frames that decode (so a writer fed from it discards its output); with
    `strict=False` it stops quietly there instead (scanning wants what is left). If not
    even one frame decodes, MediaError either way.
    """
    if every < 1:
        raise InputError(f"every must be 1 or more, got {every}")
    # Checked now rather than at the first next(), so a bad path fails where it is given.
    path = check_input_file(path, limits)
    if sniff_image_format(read_head(path)) is not None:
        return _iter_image(path, max_frames, limits)
    return _iter_video(path, every, max_frames, start, end, limits, strict)


def _iter_image(path: Path, max_frames: int | None, limits: MediaLimits) -> Iterator[Frame]:
    if max_frames is None or max_frames > 0:
        yield Frame(0, 0.0, read_image(path, limits))


def _iter_video(
    path: Path,
    every: int,
    max_frames: int | None,
    start: float | None,
    end: float | None,
    limits: MediaLimits,
    strict: bool,
) -> Iterator[Frame]:
    if max_frames is not None and max_frames <= 0:
        return
    with open_video(path, limits) as container:
        stream = video_stream(container)
        fps = stream_fps(stream) or Fraction(25)
        origin = stream_start(stream)
        seeked = bool(start and start > 0) and _seek(container, stream, origin + start)
        # `every` counts from `start`: skipping by display position needs start at 0.
        from_zero = not (start and start > 0)
        ranks = _display_ranks(path, container, stream, limits) if every > 1 and from_zero else None
        counter = _Counter()  # for the frame limit and the truncation check
        if ranks is None:
            source = _all_frames(container, stream, counter)
        else:
            source = _sampled_frames(container, stream, ranks, every, counter)
        in_range = 0  # frames inside [start, end), for `every`
        yielded = 0
        try:
            for position, av_frame in source:
                if counter.frames > limits.max_frames:
                    raise MediaError(
                        f"{path.name} has more than {limits.max_frames} frames (the limit)"
                    )
                time = _frame_time(av_frame, origin, position, fps)
                if start is not None and time < start - 0.5 / float(fps):
                    continue  # decoded from the key frame before `start`
                if end is not None and time >= end:
                    return
                in_range += 1
                if ranks is None and (in_range - 1) % every:
                    continue  # (with ranks, `source` gave the sampled positions only)
                index = round(time * float(fps)) if seeked else position
                yield Frame(index, time, _to_rgb(path, av_frame, stream))
                yielded += 1
                if max_frames is not None and yielded >= max_frames:
                    return
        except _DecodeFailed as failure:
            decoded = counter.frames
            if not yielded:
                raise MediaError(f"cannot decode {path.name}: {failure}") from None
            if strict:
                raise MediaError(
                    f"{path.name} is damaged or truncated: decoding failed after "
                    f"{decoded} frames ({failure})"
                ) from None
            log.warning("%s: decoding stopped early: %s", path.name, failure)
            return
        declared, decoded = stream.frames or 0, counter.frames
        # A file cut inside its media data can end cleanly with frames missing.
        if strict and not seeked and declared > 10 and decoded < declared * 0.98 - 1:
            raise MediaError(
                f"{path.name} is truncated: it declares {declared} frames, {decoded} decode"
            )


class _DecodeFailed(Exception):
    """PyAV failed mid-stream; carries a one-line reason."""


def _seek(container, stream, seconds: float) -> bool:
    """Jump to the key frame at or before `seconds`; False when the file cannot seek
    (then we decode from the start and drop frames before the range)."""
    try:
        container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
    except AV_ERRORS:
        return False
    return True


@dataclass
class _Counter:
    frames: int = 0  # frames passed: decoded, or skipped on purpose
    decoded: int = 0  # frames the decoder produced


def _all_frames(container, stream, counter: _Counter) -> Iterator[tuple[int, av.VideoFrame]]:
    """(position in display order, frame) for every decoded frame."""
    for frame in _guarded(container.decode(stream)):
        counter.frames += 1
        counter.decoded += 1
        yield counter.frames - 1, frame


def _guarded(items: Iterator[T]) -> Iterator[T]:
    """`items` (PyAV's frames or packets), with any PyAV exception turned into
    _DecodeFailed."""
    while True:
        try:
            item = next(items)
        except StopIteration:
            return
        except AV_ERRORS as exc:
            raise _DecodeFailed(av_reason(exc)) from None
        yield item


# Sampled decoding. Decoding is most of the cost of reading every 10th frame of an H.264
# 720p minute (converting the 180 kept frames is 0.3 s of it); FFmpeg can skip the
# frames no other frame is predicted from (skip_frame NONREF: B-frames, about half of
# x264's default output), so those that are not sampled are never decoded. The frames
# that are decoded are the same bit for bit (nothing else depends on a skipped one).
# Measured on bench detector's 720p minute (every 10th frame, 2 loaded cores): 8.6-10.1
# s -> 5.9-6.3 s. Only for decoders that honour NONREF, in containers that store one
# frame per packet, so a packet's display position is its frame's.
_SKIPPING_CODECS = {"h264", "hevc"}
_ONE_FRAME_PER_PACKET = {"mov", "mp4", "matroska", "webm"}


def _display_ranks(path: Path, container, stream, limits: MediaLimits) -> dict[int, int] | None:
    """pts -> position in display order of every frame of `stream`, from a demux-only
    pass over a second handle (no decoding: 0.05 s for the 720p minute); None when
    frames cannot be skipped safely (another codec or container, a packet without pts,
    two packets with one pts, a demux error, more frames than the limit): then every
    frame is decoded."""
    formats = set(container.format.name.split(","))
    if stream.codec_context.name not in _SKIPPING_CODECS or not formats & _ONE_FRAME_PER_PACKET:
        return None
    pts: list[int] = []
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as second:
            for packet in second.demux(second.streams[stream.index]):
                if not packet.size or packet.is_discard:  # flush packet; edit-list cut
                    continue
                if packet.pts is None or len(pts) >= limits.max_frames:
                    return None  # (past the limit: the full decode says so, in order)
                pts.append(packet.pts)
    except AV_ERRORS:
        return None
    if len(set(pts)) != len(pts):
        return None
    return {p: rank for rank, p in enumerate(sorted(pts))}


def _sampled_frames(
    container, stream, ranks: dict[int, int], every: int, counter: _Counter
) -> Iterator[tuple[int, av.VideoFrame]]:
    """(position, frame) for the frames at positions 0, every, 2 * every, ..., in
    display order; the non-reference frames between them are skipped, not decoded."""
    context = stream.codec_context

    def packets():
        for packet in container.demux(stream):
            if packet.size:
                rank = None if packet.is_discard else ranks.get(packet.pts)
                # Set per packet: frame threads copy it from here when the packet is sent.
                context.skip_frame = "NONREF" if rank is not None and rank % every else "DEFAULT"
                counter.frames += not packet.is_discard
            yield packet

    def decoded():
        for packet in _guarded(packets()):
            yield from packet.decode()  # as container.decode does (frame times set)

    for frame in _guarded(decoded()):
        counter.decoded += 1
        rank = ranks.get(frame.pts)
        if rank is not None and rank % every == 0:
            yield rank, frame


def _frame_time(frame: av.VideoFrame, origin: float, position: int, fps: Fraction) -> float:
    if frame.pts is None or frame.time is None:
        return position / float(fps)
    return max(frame.time - origin, 0.0)


# Colour spaces OpenCV's I420 conversion matches (BT.601, limited range), by FFmpeg code.
_FAST_COLORSPACES = {2, 5, 6}  # unspecified, BT470BG, SMPTE170M
_JPEG_RANGE = 2


def _to_rgb(path: Path, frame: av.VideoFrame, stream) -> np.ndarray:
    try:
        if (
            frame.format.name == "yuv420p"
            and frame.width % 2 == 0  # PyAV exports yuv420p planes only for even sizes
            and frame.height % 2 == 0
            and frame.colorspace in _FAST_COLORSPACES
            and frame.color_range != _JPEG_RANGE
        ):
            # OpenCV's SIMD conversion is about 1.5x faster than swscale's here and
            # within 3 levels of it (measured on the corpus' 512 px clips).
            planes = frame.to_ndarray(format="yuv420p")
            rgb = cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420)
        else:
            rgb = frame.to_ndarray(format="rgb24")
    except AV_ERRORS as exc:
        raise MediaError(
            f"cannot convert a frame of {path.name} to RGB: {av_reason(exc)}"
        ) from None
    rotated = apply_rotation(rgb, stream_rotation(stream, frame.rotation))
    return np.ascontiguousarray(rotated)
