"""Small inputs the tests make for themselves: videos, broken files, hostile headers."""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def face_video(path: Path, base: np.ndarray, frames: int = 12, fps: int = 25, size: int = 256,
               audio: bool = False) -> Path:  # fmt: skip
    """A clip of `base` drifting slowly, written with PyAV directly (not our writer)."""
    img = cv2.resize(base, (size, size), interpolation=cv2.INTER_AREA)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        a_stream = out.add_stream("aac", rate=44100) if audio else None
        for i in range(frames):
            m = np.float32([[1, 0, 2 * np.sin(i / 3)], [0, 1, 0]])
            frame = cv2.warpAffine(img, m, (size, size), borderMode=cv2.BORDER_REFLECT)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if a_stream is not None:
            encode_tone(out, a_stream, frames / fps)
    return path


def encode_tone(container, stream, seconds: float, rate: int = 44100) -> None:
    """A 440 Hz mono tone into an open audio stream, then flush it."""
    samples = int(seconds * rate)
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.float32)
    chunk = stream.codec_context.frame_size or 1024
    for start in range(0, samples, chunk):
        block = np.ascontiguousarray(tone[start : start + chunk][np.newaxis, :])
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def audio_only(path: Path, seconds: float = 1.0, codec: str = "aac", rate: int = 44100) -> Path:
    with av.open(str(path), "w") as out:
        encode_tone(out, out.add_stream(codec, rate=rate), seconds, rate)
    return path


def huge_png_header(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A valid-looking PNG that claims 20000x20000 pixels but holds almost nothing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def truncated_copy(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def png_bytes(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def run_cli(capsys, *args: object) -> tuple[int, str, str]:
    """`likeness ARGS...` in this process: (exit code, stdout, stderr)."""
    from likeness.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 25, crf: int = 16) -> Path:
    """RGB frames as an H.264 MP4, written with PyAV directly (the tests of our own
    readers and writers do not lean on them to make their inputs)."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "ultrafast"}
        for rgb in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    return path


def decode(path: Path) -> list[np.ndarray]:
    """Every frame of a video, RGB."""
    from likeness.media import iter_frames

    return [f.image for f in iter_frames(path)]


def fail_render_after(monkeypatch, model, calls: int) -> None:
    """Make `model.render` raise RuntimeError("boom") after `calls` good calls. The
    loaded generator is shared by every job of the process, so it is patched through
    `monkeypatch` for the one test only."""
    real, made = model.render, []

    def failing(*args):
        made.append(1)
        if len(made) > calls:
            raise RuntimeError("boom")
        return real(*args)

    monkeypatch.setattr(model, "render", failing)
