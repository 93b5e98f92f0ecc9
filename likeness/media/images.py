"""Still images: header-only size checks, EXIF orientation, decoding, atomic writing."""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from likeness.errors import LikenessError, MediaError, OutputError
from likeness.fsio import atomic_output
from likeness.media.inputs import (
    IMAGE_FORMAT_NAMES,
    check_input_file,
    read_head,
    sniff_image_format,
)
from likeness.media.limits import DEFAULT_LIMITS, MediaLimits, check_frame_size
from likeness.media.suffixes import IMAGE_SUFFIXES

# EXIF orientations 5..8 turn the picture a quarter, so the displayed size is swapped.
_QUARTER_TURN_ORIENTATIONS = {5, 6, 7, 8}
# Clockwise angle each EXIF orientation turns the picture for display (flips ignored).
ORIENTATION_ROTATION = {1: 0, 2: 0, 3: 180, 4: 180, 5: 270, 6: 90, 7: 90, 8: 270}
# A JPEG with more segments than this before its frame header is not one we want.
_MAX_JPEG_SEGMENTS = 4096

_METADATA_ALLOWANCE = 64 * 2**20  # EXIF, ICC profiles, embedded previews


@dataclass(frozen=True)
class ImageHeader:
    format: str  # 'jpeg' | 'png' | 'webp' | 'bmp'
    width: int  # as stored, before EXIF orientation
    height: int
    orientation: int  # EXIF orientation 1..8

    @property
    def display_size(self) -> tuple[int, int]:
        if self.orientation in _QUARTER_TURN_ORIENTATIONS:
            return self.height, self.width
        return self.width, self.height


def read_image_header(path: Path, limits: MediaLimits = DEFAULT_LIMITS) -> ImageHeader:
    """Parse format and size from the first bytes and refuse oversize images; no pixel
    is decoded, so a 20000x20000 header costs microseconds."""
    fmt = sniff_image_format(read_head(path))
    if fmt is None:
        raise MediaError(f"cannot read {path.name}: not a JPEG, PNG, WebP or BMP image")
    try:
        with open(path, "rb") as handle:
            width, height = _SIZE_READERS[fmt](handle)
    except (struct.error, ValueError, EOFError):
        width, height = 0, 0
    if width <= 0 or height <= 0:
        raise MediaError(f"cannot read {path.name}: damaged {IMAGE_FORMAT_NAMES[fmt]} header")
    check_frame_size(path.name, width, height, limits)
    return ImageHeader(fmt, width, height, _exif_orientation(path))


def _exact(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise EOFError
    return data


def _png_size(handle: BinaryIO) -> tuple[int, int]:
    data = _exact(handle, 24)
    if data[12:16] != b"IHDR":
        raise ValueError("no IHDR")
    return struct.unpack(">II", data[16:24])


def _bmp_size(handle: BinaryIO) -> tuple[int, int]:
    data = _exact(handle, 26)
    if int.from_bytes(data[14:18], "little") == 12:  # OS/2 core header: 16-bit sizes
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    return width, abs(height)  # negative height means rows stored top-down


def _webp_size(handle: BinaryIO) -> tuple[int, int]:
    data = _exact(handle, 30)
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the key-frame start code
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: 14-bit (size - 1) fields packed after 0x2f
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit (canvas size - 1)
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    raise ValueError("unknown WebP chunk")


def _jpeg_size(handle: BinaryIO) -> tuple[int, int]:
    """Walk the marker segments up to the first start-of-frame (SOF0..SOF15 except the
    DHT, JPG and DAC markers that share the range)."""
    _exact(handle, 2)  # SOI
    for _ in range(_MAX_JPEG_SEGMENTS):
        byte = _exact(handle, 1)
        if byte != b"\xff":
            raise ValueError("marker expected")
        marker = _exact(handle, 1)[0]
        while marker == 0xFF:  # fill bytes
            marker = _exact(handle, 1)[0]
        if marker in (0x01, *range(0xD0, 0xD8)):  # segments without a length
            continue
        if marker == 0xDA:  # scan data began without a frame header
            raise ValueError("no SOF")
        length = struct.unpack(">H", _exact(handle, 2))[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            _precision, height, width = struct.unpack(">BHH", _exact(handle, 5))
            return width, height
        handle.seek(length - 2, os.SEEK_CUR)
    raise ValueError("too many segments")


_SIZE_READERS = {"png": _png_size, "bmp": _bmp_size, "webp": _webp_size, "jpeg": _jpeg_size}


def _exif_orientation(path: Path) -> int:
    """EXIF orientation (1..8, 1 when absent or unreadable) via Pillow's lazy open, which
    parses metadata without decoding pixels. Only called after our own size check."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                value = image.getexif().get(0x0112, 1)
    except Exception:  # a damaged EXIF block must not make a good picture unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn/mirror stored pixels into display pixels for an EXIF orientation."""
    if orientation == 2:
        return image[:, ::-1]
    if orientation == 3:
        return image[::-1, ::-1]
    if orientation == 4:
        return image[::-1]
    if orientation == 5:
        return image.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(image, k=-1)
    if orientation == 7:
        return image.transpose(1, 0, 2)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(image, k=1)
    return image


def read_image(path: str | os.PathLike[str], limits: MediaLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Decode a JPEG, PNG, WebP or BMP file to contiguous H x W x 3 uint8 RGB, turned
    upright by its EXIF orientation; the size limit is checked before decoding."""
    path = check_input_file(path, limits)
    head = read_head(path)
    if sniff_image_format(head) is None:
        if head.startswith((b"GIF87a", b"GIF89a")) or _looks_like_video(head):
            raise MediaError(f"{path.name} is a video, expected an image")
        raise MediaError(f"cannot read {path.name}: not a JPEG, PNG, WebP or BMP image")
    header = read_image_header(path, limits)
    _check_file_fits_header(path, header)
    # cv2 would apply EXIF orientation only for some formats; we apply it ourselves for all.
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    bgr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), flags)
    if bgr is None or bgr.shape[:2] != (header.height, header.width):
        name = IMAGE_FORMAT_NAMES[header.format]
        raise MediaError(f"cannot decode {path.name}: damaged or unsupported {name} data")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(apply_orientation(rgb, header.orientation))


def _check_file_fits_header(path: Path, header: ImageHeader) -> None:
    """A small picture in a huge file is junk appended to a header; refuse it rather than
    read gigabytes into memory (8 bytes a pixel covers 16-bit RGBA BMP, plus metadata)."""
    size = path.stat().st_size
    allowed = header.width * header.height * 8 + _METADATA_ALLOWANCE
    if size > allowed:
        raise MediaError(
            f"{path.name} is {size / 2**20:.0f} MiB, far more than a "
            f"{header.width}x{header.height} image needs"
        )


def _looks_like_video(head: bytes) -> bool:
    """Common video containers by signature, only to word the error message."""
    return (
        head[4:8] == b"ftyp"  # MP4 / MOV / 3GP
        or head.startswith(b"\x1a\x45\xdf\xa3")  # Matroska / WebM
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
    )


def write_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    quality: int = 95,
    *,
    inputs: Sequence[Path] = (),
) -> Path:
    """Encode by extension (.png .jpg .jpeg .webp .bmp) and write atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise OutputError(
            f"cannot write {path.name}: unsupported image type {suffix or '(none)'!r} "
            "(use .png, .jpg, .webp or .bmp)"
        )
    bgr = cv2.cvtColor(as_rgb_uint8(rgb), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(suffix, bgr, _encode_params(suffix, quality))
    if not ok:
        raise OutputError(f"cannot encode {path.name} as {suffix}")
    with atomic_output(path, inputs=inputs) as tmp:
        tmp.write_bytes(buffer.tobytes())
    return path


def _encode_params(suffix: str, quality: int) -> list[int]:
    quality = int(min(max(quality, 1), 100))
    if suffix in (".jpg", ".jpeg"):
        return [cv2.IMWRITE_JPEG_QUALITY, quality]
    if suffix == ".webp":
        return [cv2.IMWRITE_WEBP_QUALITY, quality]
    if suffix == ".png":
        return [cv2.IMWRITE_PNG_COMPRESSION, 3]  # fast; size barely differs from 9
    return []


def as_rgb_uint8(rgb: np.ndarray) -> np.ndarray:
    """Accept H x W x 3 uint8 (or H x W grey); anything else is a caller bug."""
    array = np.asarray(rgb)
    if array.dtype != np.uint8:
        raise LikenessError(f"image must be uint8, got {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise LikenessError(f"image must be H x W x 3 RGB, got shape {array.shape}")
    return np.ascontiguousarray(array)


def resize_square(image: np.ndarray, size: int, enlarge: int = cv2.INTER_LINEAR) -> np.ndarray:
    """`image` (H, W[, C]) as size x size: INTER_AREA when shrinking (no aliasing),
    `enlarge` when growing; as it is (contiguous) when already that size."""
    image = np.ascontiguousarray(image)
    if image.shape[0] == size and image.shape[1] == size:
        return image
    interpolation = cv2.INTER_AREA if image.shape[0] > size else enlarge
    return cv2.resize(image, (size, size), interpolation=interpolation)
