"""H.264 video writing: atomic, exact frame rate, even-sized, optional audio copy.

Odd sizes: yuv420p stores colour at half resolution, so libx264 needs an even width
and height. We pad, never crop: an odd last column/row is repeated once, so the
output is (w + w % 2) x (h + h % 2), nothing the caller drew is lost, and pixel
coordinates (face boxes) keep their meaning because the origin stays top-left.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from likeness.errors import InputError, LikenessError, MediaError, OutputError
from likeness.fsio import atomic_output, check_output_path
from likeness.media.images import as_rgb_uint8
from likeness.media.inputs import check_input_file
from likeness.media.probe import av_errors, av_reason
from likeness.media.suffixes import VIDEO_WRITE_SUFFIXES

AV_ERRORS = av_errors()
_MP4_FAMILY = (".mp4", ".m4v", ".mov")
# Audio codecs every MP4 player handles: copied as they are, anything else becomes AAC.
_MP4_AUDIO_COPY = {"aac", "mp3", "alac", "ac3", "eac3"}
PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
# Sample rates FFmpeg's AAC encoder takes; others are resampled to 48 kHz.
_AAC_RATES = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000}
_EVEN_SIZE_FORMATS = {"yuv420p", "yuvj420p", "nv12", "yuv422p"}


def exact_rate(fps: float | Fraction) -> Fraction:
    """A frame rate as an exact fraction: 29.97 -> 2997/100, 30000/1001 (as a float)
    -> 30000/1001, 12.988 -> 3247/250, so timestamps do not drift over long videos."""
    if isinstance(fps, Fraction):
        rate = fps
    else:
        value = float(fps)
        if not np.isfinite(value):
            raise InputError(f"frame rate must be a positive number, got {fps}")
        rate = Fraction(value).limit_denominator(1001)
        if abs(float(rate) - value) > 1e-6 * value:
            rate = Fraction(value).limit_denominator(1_000_000)
    if rate <= 0 or rate > 1000:
        raise InputError(f"frame rate must be between 0 and 1000, got {float(fps):g}")
    return rate


def pad_to_even(image: np.ndarray) -> np.ndarray:
    """Repeat the last column/row when the width/height is odd (see module docstring)."""
    height, width = image.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return image
    return np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


class VideoWriter:
    """Write RGB frames to an H.264 file atomically; use as a context manager.

    >>> with VideoWriter(out, 25) as writer:
    ...     for rgb in frames:
    ...         writer.write(rgb)

    The first frame fixes the size. On a clean exit the file is finished (audio from
    `audio_from` copied and trimmed to the video) and renamed onto `path`; on an
    exception nothing is left behind.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float | Fraction,
        *,
        crf: int = 18,
        preset: str = "medium",
        audio_from: Path | None = None,
        inputs: Sequence[Path] = (),
        pix_fmt: str = "yuv420p",
    ) -> None:
        self.path = Path(path)
        self.fps = exact_rate(fps)
        if self.path.suffix.lower() not in VIDEO_WRITE_SUFFIXES:
            raise OutputError(
                f"cannot write {self.path.name}: use a .mp4, .mov or .mkv name for video"
            )
        if not 0 <= int(crf) <= 51:
            raise InputError(f"crf must be between 0 and 51, got {crf}")
        if preset not in PRESETS:
            raise InputError(f"unknown x264 preset {preset!r}: use one of {', '.join(PRESETS)}")
        self.crf = int(crf)
        self.preset = preset
        self.pix_fmt = pix_fmt
        self.audio_from = check_input_file(audio_from) if audio_from is not None else None
        self._inputs = [Path(p) for p in inputs]
        if self.audio_from is not None:
            self._inputs.append(self.audio_from)
        check_output_path(self.path, self._inputs)  # fail before the caller does any work
        self._atomic: contextlib.AbstractContextManager[Path] | None = None
        self._tmp: Path | None = None
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._audio: _AudioTrack | None = None
        self._size: tuple[int, int] | None = None  # (height, width) of the caller's frames
        self._frames = 0

    @property
    def frames_written(self) -> int:
        return self._frames

    # --- context manager --------------------------------------------------------------

    def __enter__(self) -> VideoWriter:
        self._atomic = atomic_output(self.path, inputs=self._inputs)
        self._tmp = self._atomic.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        atomic = self._atomic
        if atomic is None:
            return
        self._atomic = self._tmp = None
        if exc_type is not None:
            self._close_quietly()
            atomic.__exit__(exc_type, exc, tb)  # removes the temporary file
            return
        try:
            self._finish()
        except BaseException as error:
            self._close_quietly()
            atomic.__exit__(type(error), error, error.__traceback__)
            raise
        atomic.__exit__(None, None, None)  # fsync and rename into place

    # --- writing ----------------------------------------------------------------------

    def write(self, rgb: np.ndarray) -> None:
        """Append one H x W x 3 uint8 RGB frame."""
        if self._tmp is None:
            raise LikenessError("VideoWriter.write called outside its `with` block")
        image = as_rgb_uint8(rgb)
        if self._size is None:
            self._open(image.shape[0], image.shape[1])
        elif image.shape[:2] != self._size:
            got = f"{image.shape[1]}x{image.shape[0]}"
            want = f"{self._size[1]}x{self._size[0]}"
            raise LikenessError(f"frame {self._frames} is {got}, expected {want}")
        if self.pix_fmt in _EVEN_SIZE_FORMATS:
            image = pad_to_even(image)
        self._encode(image)
        self._frames += 1
        if self._audio is not None:
            self._guard(self._audio.feed_until, self._frames / self.fps)

    def _open(self, height: int, width: int) -> None:
        self._size = (height, width)
        options = {"movflags": "+faststart"} if self.path.suffix.lower() in _MP4_FAMILY else {}
        try:
            container = av.open(str(self._tmp), mode="w", container_options=options)
        except AV_ERRORS as exc:
            raise OutputError(f"cannot write {self.path.name}: {av_reason(exc)}") from None
        self._container = container
        try:
            stream = container.add_stream("libx264", rate=self.fps)
            stream.width, stream.height = width + width % 2, height + height % 2
            if self.pix_fmt not in _EVEN_SIZE_FORMATS:
                stream.width, stream.height = width, height
            stream.pix_fmt = self.pix_fmt
            stream.codec_context.time_base = 1 / self.fps
            stream.options = {"crf": str(self.crf), "preset": self.preset}
            ctx = stream.codec_context
            ctx.colorspace = ctx.color_primaries = ctx.color_trc = 1  # BT.709
            ctx.color_range = 1  # limited ("MPEG") range
        except AV_ERRORS as exc:
            raise OutputError(
                f"cannot set up the encoder for {self.path.name}: {av_reason(exc)}"
            ) from None
        self._stream = stream
        if self.audio_from is not None:
            try:
                self._audio = _AudioTrack.open(self.audio_from, container, self.path.suffix.lower())
            except AV_ERRORS as exc:
                raise MediaError(
                    f"cannot copy audio from {self.audio_from.name}: {av_reason(exc)}"
                ) from None

    def _encode(self, image: np.ndarray | None) -> None:
        """Encode one frame (None flushes the encoder) and mux what comes out."""
        try:
            frame = None
            if image is not None:
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                # Converted as BT.709 and tagged so (see _open): players and our decoder agree.
                frame = frame.reformat(
                    format=self.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG"
                )
                frame.pts = self._frames
                frame.time_base = 1 / self.fps
            self._container.mux(self._stream.encode(frame))
        except AV_ERRORS as exc:
            raise OutputError(f"cannot write {self.path.name}: {av_reason(exc)}") from None

    def _guard(self, func, *args) -> None:
        try:
            func(*args)
        except AV_ERRORS as exc:
            raise MediaError(
                f"cannot copy audio from {self.audio_from.name}: {av_reason(exc)}"
            ) from None

    def _finish(self) -> None:
        if self._frames == 0:
            raise MediaError("no frames to write")
        self._encode(None)  # flush the encoder's delayed frames
        if self._audio is not None:
            self._guard(self._audio.finish, self._frames / self.fps)
            self._audio = None
        try:
            self._container.close()  # writes the trailer (and moves moov for faststart)
        except AV_ERRORS as exc:
            raise OutputError(f"cannot write {self.path.name}: {av_reason(exc)}") from None
        finally:
            self._container = None

    def _close_quietly(self) -> None:
        if self._audio is not None:
            self._audio.close()
            self._audio = None
        if self._container is not None:
            with contextlib.suppress(*AV_ERRORS):
                self._container.close()
            self._container = None


class _AudioTrack:
    """Audio from another file, muxed alongside the video as it is written.

    Packets are interleaved with the video (not appended at the end) so that players
    can stream the file; the track is trimmed at the video's end: to the sample when
    re-encoded, to the packet when copied (about 20 ms for AAC). The audio's own first
    timestamp becomes 0, matching a video written from the same source's first frame.
    """

    def __init__(self, source: av.container.InputContainer, output, copy: bool) -> None:
        self._input = source
        self._in = source.streams.audio[0]
        self._output = output
        self._origin = self._in.start_time or 0  # in the input stream's time base
        self._packets: Iterator[av.Packet] = source.demux(self._in)
        self._pending: av.Packet | None = None
        self._done = False
        if copy:
            self._out = output.add_stream_from_template(self._in)
            self._encoder = None
        else:
            rate = self._in.codec_context.sample_rate
            rate = rate if rate in _AAC_RATES else 48000
            channels = self._in.codec_context.layout.nb_channels
            self._out = output.add_stream("aac", rate=rate)
            self._out.layout = "stereo" if channels > 1 else "mono"
            self._resampler = av.AudioResampler(format="fltp", layout=self._out.layout, rate=rate)
            self._fifo = av.AudioFifo()  # decoded samples not yet due
            self._encoder = self._out
            self._samples = 0  # samples encoded so far

    @classmethod
    def open(cls, path: Path, output, suffix: str) -> _AudioTrack | None:
        """None when `path` has no audio (not an error: the video is written silent)."""
        try:
            source = av.open(str(path), mode="r", metadata_errors="ignore")
        except AV_ERRORS:
            raise MediaError(
                f"cannot read audio from {path.name}: not a media file FFmpeg can decode"
            ) from None
        try:
            if not source.streams.audio:
                source.close()
                return None
            codec = source.streams.audio[0].codec_context.name
            copy = suffix not in _MP4_FAMILY or codec in _MP4_AUDIO_COPY
            try:
                return cls(source, output, copy)
            except ValueError:  # the container refuses this codec as it is
                if not copy:
                    raise
            return cls(source, output, copy=False)
        except BaseException:
            with contextlib.suppress(*AV_ERRORS):
                source.close()
            raise

    def _next(self) -> av.Packet | None:
        if self._pending is not None:
            packet, self._pending = self._pending, None
            return packet
        for packet in self._packets:
            if packet.dts is not None and packet.size:
                return packet
        return None

    def _seconds(self, packet: av.Packet) -> float:
        pts = packet.pts if packet.pts is not None else packet.dts
        return float((pts - self._origin) * packet.time_base)

    def feed_until(self, seconds: float) -> None:
        """Mux every audio packet that starts before `seconds`."""
        while not self._done:
            packet = self._next()
            if packet is None:
                self._done = True
                return
            if self._seconds(packet) >= seconds:
                self._pending = packet
                break
            self._mux(packet)
        if self._encoder is not None:
            self._drain(seconds)

    def _mux(self, packet: av.Packet) -> None:
        if self._encoder is None:
            packet.pts = None if packet.pts is None else packet.pts - self._origin
            packet.dts = packet.dts - self._origin
            packet.stream = self._out
            self._output.mux(packet)
            return
        for frame in packet.decode():
            self._buffer(self._resampler.resample(frame))

    def _buffer(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            frame.pts = None  # the FIFO re-times; its own continuity check would refuse gaps
            self._fifo.write(frame)

    def _drain(self, seconds: float) -> None:
        """Encode buffered samples up to `seconds` exactly, so a re-encoded track ends
        with the video to the sample."""
        due = min(self._fifo.samples, round(seconds * self._out.rate) - self._samples)
        if due > 0:
            self._encode(self._fifo.read(due))

    def _encode(self, frame: av.AudioFrame | None) -> None:
        if frame is not None:
            frame.pts = self._samples
            frame.time_base = Fraction(1, self._out.rate)
            self._samples += frame.samples
        self._output.mux(self._encoder.encode(frame))

    def finish(self, seconds: float) -> None:
        self.feed_until(seconds)
        if self._encoder is not None:
            self._buffer(self._resampler.resample(None))  # samples the resampler holds
            self._drain(seconds)
            self._encode(None)
        self.close()

    def close(self) -> None:
        with contextlib.suppress(*AV_ERRORS):
            self._input.close()
