"""Lossy round trips for crops: JPEG (OpenCV) and H.264 (PyAV, loaded on first use).

Training data and training batches pass real and fake crops through the same codecs,
so that compression never tells the classes apart. The GPU training machine has no
PyAV: `h264_available()` says so and callers skip H.264 there.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import cv2
import numpy as np


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        return rgb
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


def encode_jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def encode_png(image: np.ndarray) -> bytes:
    """A grey (H, W) or RGB (H, W, 3) uint8 image as PNG bytes."""
    pixels = image if image.ndim == 2 else image[..., ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def decode_grey(data: bytes) -> np.ndarray | None:
    """PNG/JPEG bytes -> (H, W) uint8, or None when they do not decode."""
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)


def decode_image(data: bytes) -> np.ndarray | None:
    """JPEG/PNG bytes -> RGB uint8, or None when they do not decode."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else np.ascontiguousarray(bgr[..., ::-1])


@functools.cache
def h264_available() -> bool:
    try:
        import av

        av.codec.Codec("libx264", "w")
    except Exception:  # ImportError, or a PyAV build without libx264
        return False
    return True


def h264_roundtrip(frames: Sequence[np.ndarray], crf: int, preset: str = "veryfast") -> list:
    """Encode frames (same even size, RGB uint8) as one H.264 yuv420p stream in memory
    and decode them back; consecutive frames are predicted from each other, as in a
    real video. Raises RuntimeError when PyAV or libx264 is missing."""
    if not frames:
        return []
    if not h264_available():
        raise RuntimeError("H.264 round trip needs PyAV with libx264")
    import io

    import av

    h, w = frames[0].shape[:2]
    pad_h, pad_w = h % 2, w % 2  # yuv420p needs even sizes
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height = w + pad_w, h + pad_h
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(int(crf)), "preset": preset}
        for rgb in frames:
            if pad_h or pad_w:
                rgb = cv2.copyMakeBorder(rgb, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), "rgb24")))
        out.mux(stream.encode(None))
    buf.seek(0)
    decoded = []
    with av.open(buf, "r") as src:
        for frame in src.decode(video=0):
            decoded.append(frame.to_ndarray(format="rgb24")[:h, :w].copy())
    if len(decoded) != len(frames):
        raise RuntimeError(f"H.264 round trip returned {len(decoded)} of {len(frames)} frames")
    return decoded
