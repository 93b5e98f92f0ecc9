"""Mutation fuzzing of the decoders likeness wraps, each case in a bounded child process.

Seed files are made at run time (small H.264 MP4s with and without audio, MKV, WebM,
GIF, AVI, a variable-frame-rate MP4, a 33x17 video, a zero-frame MP4; PNG, JPEG, WebP,
BMP; MP4, JPEG and PNG signed with a C2PA manifest; a dataset pack; a scan JSONL and
JSON configs). Each case is one seed put through one or more mutations (truncation,
bit flips, byte overwrites, zeroed ranges, another format's header, duplicated or
shuffled chunks, huge or zero dimensions written into PNG IHDR / JPEG SOF / GIF / BMP /
WebP / MP4 tkhd and avc1 / AVI headers, extreme values in MP4 box fields), then read
by the real readers (`probe`, `iter_frames`, `read_image`, `read_manifest`,
`verify_file`, `Pack.open` + frames + arrays, `read_jsonl`, the JSON config loaders).

Cases run in batches in child processes (``--child``) under RLIMIT_AS (4 GiB), a CPU
limit per case and a wall-clock timeout per case, so a hang, a memory blow-up or a
segfault is a reported failure, not a dead test run. The child writes one JSON line
when a case starts and one with its outcome: ``ok``, ``likeness-error`` (type and
message) or ``exception`` (type, message, where). The parent counts as failures:
any ``exception``, a LikenessError whose message is empty or not one line, a trusted
C2PA verdict over pixels that differ from the signed original, a child that dies
(signal or exit code: the case it was in is blamed), a timeout and a memory kill.

The long run (``make fuzz``) is, per target, with ``--seed 1``:

    video 6000, image 6000, manifest 2000, pack 2400, jsonl 6000, json 6000

    python -m tests.reliability.fuzzing --target all --seed 1 --count 6000 --jobs 2

(`manifest` and `pack` cases cost more, so `--target all` scales their counts down:
a third of `--count` for manifest, two fifths for pack). A case is reproducible from
(target, seed, index): ``--only INDEX`` reruns one, ``--keep DIR`` keeps the inputs
of failing cases. Signed seeds differ between runs (signing time and keys), so the
inputs kept are the reproducer for manifest cases.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

TARGETS = ("video", "image", "manifest", "pack", "jsonl", "json")
# Readers run on each case of a target (names of functions in READERS below).
TARGET_READERS = {
    "video": ("probe", "frames", "frames-lenient"),
    "image": ("probe", "read_image", "frames"),
    "manifest": ("read_manifest", "verify"),
    "pack": ("pack",),
    "jsonl": ("read_jsonl",),
    "json": ("read_json", "detector_config", "generator_config", "calibration"),
}
# Relative cost of a case, for `--target all` (verify decodes and looks for a watermark).
COUNT_SCALE = {"manifest": 1 / 3, "pack": 2 / 5}

MEMORY_LIMIT = 4 * 2**30
CASE_TIMEOUT = 30.0  # wall-clock seconds per reader call (2 shared cores, slow CI)
CASE_CPU = 20  # CPU seconds per reader call
BATCH = 40  # cases per child process
# The JSON config loaders import torch (4 s a child): fewer, larger batches.
BATCH_SIZES = {"json": 250}


# ---------------------------------------------------------------- seed files


@dataclass(frozen=True)
class Seed:
    name: str
    target: str
    path: Path  # a file, or a pack folder
    extra: dict = field(default_factory=dict)  # trust anchor, home, mime


def _frames(size: tuple[int, int], count: int):
    import numpy as np

    w, h = size
    for i in range(count):
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = (np.arange(w) * 255 // max(w - 1, 1))[None, :]
        img[..., 1] = (i * 20) % 256
        img[: h // 2, : (i * 5) % w, 2] = 255
        yield img


def write_video(
    path: Path,
    codec: str = "libx264",
    size: tuple[int, int] = (64, 48),
    frames: int = 12,
    pix_fmt: str = "yuv420p",
    audio: str | None = None,
    vfr: bool = False,
) -> Path:
    """A small synthetic clip written with PyAV directly (never through likeness)."""
    import av

    from tests import samples

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        if vfr:
            stream.codec_context.time_base = Fraction(1, 1000)
        a_stream = (
            out.add_stream(audio, rate=48000 if audio == "libopus" else 44100) if audio else None
        )
        t = 0
        for i, img in enumerate(_frames(size, frames)):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if vfr:  # 20..120 ms between frames
                frame.pts, frame.time_base = t, Fraction(1, 1000)
                t += (40, 20, 120, 40, 80)[i % 5]
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if a_stream is not None:
            samples.encode_tone(out, a_stream, frames / 25, a_stream.codec_context.sample_rate)
    return path


def zero_frame_video(path: Path) -> Path:
    """A container with a video stream and not one packet."""
    import av

    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    out.start_encoding()
    out.close()
    return path


def write_picture(path: Path, size: tuple[int, int] = (40, 30), exif_orientation: int = 0) -> Path:
    import cv2

    img = next(_frames(size, 1))
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    assert ok, path
    data = buf.tobytes()
    if exif_orientation and path.suffix == ".jpg":
        # APP1 Exif with one IFD0 entry: Orientation (0x0112), SHORT, 1 value.
        tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1)
        tiff += struct.pack(">HHIHH", 0x0112, 3, 1, exif_orientation, 0) + b"\x00" * 4
        app1 = b"Exif\x00\x00" + tiff
        data = data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]
    path.write_bytes(data)
    return path


@contextlib.contextmanager
def likeness_home(home: Path) -> Iterator[Path]:
    """LIKENESS_HOME set to `home` for the duration (restored after)."""
    old = os.environ.get("LIKENESS_HOME")
    os.environ["LIKENESS_HOME"] = str(home)
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("LIKENESS_HOME", None)
        else:
            os.environ["LIKENESS_HOME"] = old


def make_pack(root: Path) -> Path:
    """A minimal valid pack (format in likeness/datasets/pack_format.py), made by hand:
    one 64 px 6-frame clip and one photo, with their arrays."""
    import numpy as np

    from likeness.datasets.pack_format import ARRAY_DTYPES, PACK_FORMAT, PACK_VERSION
    from likeness.faces.regions import KEY_LANDMARKS

    (root / "clips").mkdir(parents=True)
    (root / "photos").mkdir()
    write_video(root / "clips" / "c1.mp4", size=(64, 64), frames=6)
    write_picture(root / "photos" / "p1.png", size=(64, 64))
    rng = np.random.default_rng(0)
    for rel, n in (("clips/c1.npz", 6), ("photos/p1.npz", 1)):
        arrays = {
            "landmarks": rng.uniform(0, 64, (n, len(KEY_LANDMARKS), 3)),
            "irises": rng.uniform(0, 64, (n, 2, 3)),
            "pose": rng.uniform(-30, 30, (n, 3)),
            "frame_index": np.arange(n),
            "params": rng.uniform(0, 64, (n, 4)),
        }
        typed = {k: v.astype(ARRAY_DTYPES[k]) for k, v in arrays.items()}
        np.savez_compressed(root / rel, **typed)
    item = {"identity": "someone", "source_sha256": "0" * 64, "every": 1}
    manifest = {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "created_utc": "2024-01-01T00:00:00Z",
        "likeness": "0.1.0",
        "crop": {"size": 64, "scale": 1.0, "shift": 0.1},
        "landmark_indices": list(KEY_LANDMARKS),
        "split": {"file": "split.tsv", "sha256": "0" * 64},
        "items": [
            {
                **item,
                "id": "c1",
                "kind": "video",
                "source": "videos/c1.mp4",
                "split": "train",
                "file": "clips/c1.mp4",
                "arrays": "clips/c1.npz",
                "frames": 6,
                "fps": 25.0,
            },
            {
                **item,
                "id": "p1",
                "kind": "photo",
                "source": "photos/p1.png",
                "split": "test",
                "file": "photos/p1.png",
                "arrays": "photos/p1.npz",
                "frames": 1,
                "fps": 0.0,
            },
        ],
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def scan_jsonl(path: Path) -> Path:
    from likeness.pipelines.scan import SCHEMA

    records = [
        {
            "schema": SCHEMA,
            "path": "/data/a.mp4",
            "name": "a.mp4",
            "status": "ok",
            "sha256": "ab" * 32,
            "verdict": "likely-real",
            "score": 0.12,
            "kind": "video",
            "frames": [{"index": 0, "time": 0.0, "faces": [{"box": [1, 2, 30, 40], "p": 0.1}]}],
        },
        {
            "schema": SCHEMA,
            "path": "/data/b.png",
            "name": "b.png",
            "status": "error",
            "sha256": None,
            "error": {"kind": "bad input", "message": "cannot read b.png"},
        },
        {
            "schema": SCHEMA,
            "path": "/data/c.mp4",
            "name": "c.mp4",
            "status": "ok",
            "sha256": "cd" * 32,
            "verdict": "no-face",
            "score": None,
            "kind": "video",
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def make_seeds(folder: Path, targets: tuple[str, ...] = TARGETS) -> dict[str, list[Seed]]:
    """Seed files for `targets` under `folder`, made with PyAV, OpenCV and the signer."""
    folder.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, list[Seed]] = {t: [] for t in targets}
    if "video" in targets:
        d = folder / "video"
        d.mkdir(exist_ok=True)
        made = {
            "h264.mp4": lambda p: write_video(p),
            "h264-aac.mp4": lambda p: write_video(p, audio="aac"),
            "h264.mkv": lambda p: write_video(p, audio="libopus"),
            "vp8.webm": lambda p: write_video(p, codec="libvpx"),
            "anim.gif": lambda p: write_video(p, codec="gif", pix_fmt="rgb8", frames=6),
            "mpeg4.avi": lambda p: write_video(p, codec="mpeg4"),
            "vfr.mp4": lambda p: write_video(p, vfr=True),
            "odd-33x17.mp4": lambda p: write_video(p, size=(33, 17), pix_fmt="yuv444p"),
            "zero-frames.mp4": zero_frame_video,
        }
        for name, make in made.items():
            seeds["video"].append(Seed(name, "video", make(d / name)))
    if "image" in targets:
        d = folder / "image"
        d.mkdir(exist_ok=True)
        for name in ("a.png", "a.jpg", "a.webp", "a.bmp", "odd-33x17.png"):
            size = (33, 17) if name.startswith("odd") else (40, 30)
            seeds["image"].append(Seed(name, "image", write_picture(d / name, size)))
        seeds["image"].append(
            Seed("exif6.jpg", "image", write_picture(d / "exif6.jpg", exif_orientation=6))
        )
    if "manifest" in targets:
        seeds["manifest"] = signed_seeds(folder / "manifest")
    if "pack" in targets:
        seeds["pack"].append(Seed("pack", "pack", make_pack(folder / "pack" / "pack")))
    if "jsonl" in targets:
        (folder / "jsonl").mkdir(exist_ok=True)
        seeds["jsonl"].append(
            Seed("scan.jsonl", "jsonl", scan_jsonl(folder / "jsonl" / "scan.jsonl"))
        )
    if "json" in targets:
        d = folder / "json"
        d.mkdir(exist_ok=True)
        shipped = Path(__file__).resolve().parents[2] / "likeness" / "weights"
        for rel in ("detector/config.json", "detector/calibration.json", "generator/config.json"):
            dst = d / rel.replace("/", "-")
            shutil.copyfile(shipped / rel, dst)
            seeds["json"].append(Seed(dst.name, "json", dst))
    return seeds


def signed_seeds(folder: Path) -> list[Seed]:
    """MP4, JPEG and PNG signed by keys made in a private home under `folder`."""
    from likeness.provenance import keys as keys_mod
    from likeness.provenance.mark import sign_file

    folder.mkdir(parents=True, exist_ok=True)
    home = folder / "home"
    home.mkdir(exist_ok=True)
    seeds = []
    with likeness_home(home):
        old = os.environ.pop(keys_mod.PASSPHRASE_ENV, None)
        try:
            if not keys_mod.keys_exist():
                keys_mod.init_keys(passphrase="")
            trust = keys_mod.export_trust(folder / "root.pem")
            for src in (
                write_video(folder / "src.mp4", frames=8),
                write_picture(folder / "src.jpg", (48, 32)),
                write_picture(folder / "src.png", (48, 32)),
            ):
                dst = folder / f"signed{src.suffix}"
                sign_file(src, dst)
                extra = {"trust": str(trust), "home": str(home)}
                seeds.append(Seed(dst.name, "manifest", dst, extra))
        finally:
            if old is not None:
                os.environ[keys_mod.PASSPHRASE_ENV] = old
    return seeds


# ---------------------------------------------------------------- mutations

HEADERS = {
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    + b"\x00\x00\x00\x40\x00\x00\x00\x30\x08\x02\x00\x00\x00",
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\xff\xc0\x00\x11\x08",
    "mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2",
    "gif": b"GIF89a\x40\x00\x30\x00\xf7\x00\x00",
    "ebml": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04",
    "avi": b"RIFF\x00\x10\x00\x00AVI LIST\x00\x01\x00\x00hdrlavih",
    "webp": b"RIFF\x00\x10\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x3f\x00\x00\x2f\x00\x00",
    "bmp": b"BM\x36\x10\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00\x40\x00\x00\x00",
    "json": b'{"schema": "likeness-scan/1", "path": ',
}
EXTREMES_32 = (0, 1, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x00FFFFFF)
EXTREMES_16 = (0, 1, 0x3FFF, 0x7FFF, 0x8000, 0xFFFF)
MP4_BOXES = (
    b"ftyp",
    b"moov",
    b"mvhd",
    b"trak",
    b"tkhd",
    b"mdia",
    b"mdhd",
    b"hdlr",
    b"minf",
    b"stbl",
    b"stsd",
    b"avc1",
    b"avcC",
    b"stts",
    b"stss",
    b"ctts",
    b"stsc",
    b"stsz",
    b"stco",
    b"co64",
    b"mdat",
    b"edts",
    b"elst",
    b"uuid",
    b"jumb",
    b"mp4a",
    b"esds",
    b"free",
    b"udta",
    b"meta",
)


def _put(data: bytearray, offset: int, value: int, size: int, order: str = "big") -> bool:
    if offset < 0 or offset + size > len(data):
        return False
    data[offset : offset + size] = (value % (1 << (8 * size))).to_bytes(size, order)
    return True


def _find_all(data: bytes | bytearray, needle: bytes, limit: int = 64) -> list[int]:
    out, start = [], 0
    while len(out) < limit:
        at = data.find(needle, start)
        if at < 0:
            return out
        out.append(at)
        start = at + 1
    return out


def _png_fix_crc(data: bytearray, chunk_at: int) -> None:
    """Recompute the CRC of the PNG chunk whose length field is at `chunk_at`."""
    length = int.from_bytes(data[chunk_at : chunk_at + 4], "big")
    body = bytes(data[chunk_at + 4 : chunk_at + 8 + length])
    _put(data, chunk_at + 8 + length, zlib.crc32(body), 4)


def huge_dimensions(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Write extreme sizes into whichever size fields the data has."""
    out = bytearray(data)
    w = rng.choice((*EXTREMES_32, 20000, 65500, 100000))
    h = rng.choice((*EXTREMES_32, 20000, 65500, 100000))
    w16, h16 = rng.choice(EXTREMES_16), rng.choice(EXTREMES_16)
    done = []
    if out[:8] == b"\x89PNG\r\n\x1a\n" and out[12:16] == b"IHDR":
        _put(out, 16, w, 4), _put(out, 20, h, 4)
        _png_fix_crc(out, 8)
        done.append(f"png-ihdr {w}x{h}")
    for at in _find_all(out, b"\xff\xc0", 4) + _find_all(out, b"\xff\xc2", 4):
        _put(out, at + 5, h16, 2), _put(out, at + 7, w16, 2)
        done.append(f"jpeg-sof {w16}x{h16}")
    if out[:6] in (b"GIF87a", b"GIF89a"):
        _put(out, 6, w16, 2, "little"), _put(out, 8, h16, 2, "little")
        for at in _find_all(out, b"\x2c\x00\x00\x00\x00", 2):
            _put(out, at + 5, w16, 2, "little"), _put(out, at + 7, h16, 2, "little")
        done.append(f"gif {w16}x{h16}")
    if out[:2] == b"BM":
        _put(out, 18, w, 4, "little"), _put(out, 22, h, 4, "little")
        done.append(f"bmp {w}x{h}")
    if out[:4] == b"RIFF" and out[8:12] == b"WEBP":
        for at in _find_all(out, b"VP8 ", 1):
            _put(out, at + 14, w16, 2, "little"), _put(out, at + 16, h16, 2, "little")
        for at in _find_all(out, b"VP8X", 1):
            _put(out, at + 12, w, 3, "little"), _put(out, at + 15, h, 3, "little")
        for at in _find_all(out, b"VP8L", 1):
            _put(out, at + 9, rng.getrandbits(32), 4, "little")
        done.append("webp")
    for at in _find_all(out, b"tkhd", 4):
        base = at + 4 + (88 if out[at + 4] == 1 else 76)
        _put(out, base, w << 16, 4), _put(out, base + 4, h << 16, 4)
        done.append(f"tkhd {w}x{h}")
    for at in _find_all(out, b"avc1", 4) + _find_all(out, b"mp4v", 4):
        _put(out, at + 28, w16, 2), _put(out, at + 30, h16, 2)
        done.append(f"sample-entry {w16}x{h16}")
    for at in _find_all(out, b"avih", 2):
        _put(out, at + 40, w, 4, "little"), _put(out, at + 44, h, 4, "little")
        done.append(f"avih {w}x{h}")
    for at in _find_all(out, b"strf", 2):
        _put(out, at + 12, w, 4, "little"), _put(out, at + 16, h, 4, "little")
    if out[:4] == b"\x1a\x45\xdf\xa3":  # Matroska PixelWidth (B0) / PixelHeight (BA)
        for marker in (b"\xb0\x81", b"\xba\x81", b"\xb0\x82", b"\xba\x82"):
            for at in _find_all(out, marker, 2):
                out[at + 2 : at + 2 + marker[1] - 0x80] = b"\xff" * (marker[1] - 0x80)
        done.append("matroska pixel size")
    if not done:
        return flip_bits(data, rng)
    return bytes(out), "huge-dims " + ",".join(done)


def box_field(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """An extreme value in an MP4 box's size or one of its first fields (sample counts,
    chunk offsets, entry counts), or in a RIFF / PNG chunk length."""
    out = bytearray(data)
    spots = [(b, at) for b in MP4_BOXES for at in _find_all(out, b, 4)]
    spots += [
        (b, at)
        for b in (b"IHDR", b"IDAT", b"IEND", b"caBX", b"iTXt")
        for at in _find_all(out, b, 2)
    ]
    spots += [
        (b, at)
        for b in (b"LIST", b"movi", b"idx1", b"strh", b"VP8 ", b"VP8L", b"VP8X")
        for at in _find_all(out, b, 2)
    ]
    if not spots:
        return overwrite(data, rng)
    box, at = rng.choice(spots)
    value = rng.choice((*EXTREMES_32, rng.getrandbits(32)))
    if rng.random() < 0.4:
        offset, what = at - 4, "size"
    else:
        k = rng.randrange(0, 6)
        offset, what = at + 4 + 4 * k, f"field {k}"
    if box in (b"LIST", b"movi", b"idx1", b"strh", b"VP8 ", b"VP8L", b"VP8X") and what == "size":
        offset = at + 4  # RIFF: size after the fourcc, little-endian
        _put(out, offset, value, 4, "little")
    else:
        _put(out, offset, value, 4)
    return bytes(out), f"box {box.decode('latin-1')} {what} = {value:#x}"


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    cut = rng.choice(
        [rng.randrange(1, max(len(data), 2)), rng.randrange(1, min(len(data), 64) + 1)]
    )
    return data[:cut], f"truncate at {cut}"


def flip_bits(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    n = rng.choice((1, 1, 2, 4, 8, 32))
    # Headers hold most of the structure: half of the flips land in the first 512 bytes.
    spots = [
        rng.randrange(min(len(out), 512)) if rng.random() < 0.5 else rng.randrange(len(out))
        for _ in range(n)
    ]
    for at in spots:
        out[at] ^= 1 << rng.randrange(8)
    return bytes(out), f"flip {n} bits"


def overwrite(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    at = rng.randrange(len(out))
    n = min(rng.choice((1, 2, 4, 16, 64)), len(out) - at)
    fill = rng.choice((b"\xff", b"\x00", b"\x7f", b"\x80", None))
    out[at : at + n] = fill * n if fill else rng.randbytes(n)
    return bytes(out), f"overwrite {n} bytes at {at}"


def zero_range(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    at = rng.randrange(len(out))
    n = min(rng.choice((4, 32, 256, 4096, len(out))), len(out) - at)
    out[at : at + n] = bytes(n)
    return bytes(out), f"zero {n} bytes at {at}"


def swap_header(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    name = rng.choice(sorted(HEADERS))
    header = HEADERS[name]
    if rng.random() < 0.5:
        return header + data[len(header) :], f"overwrite header with {name}'s"
    return header + data, f"prepend {name} header"


def duplicate_chunk(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(data))
    n = min(rng.choice((8, 64, 512, 4096)), len(data) - at)
    to = rng.randrange(len(data) + 1)
    return data[:to] + data[at : at + n] + data[to:], f"copy {n} bytes from {at} to {to}"


def shuffle_chunks(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    k = rng.choice((2, 3, 4, 8))
    cuts = (
        sorted(rng.sample(range(1, len(data)), min(k - 1, len(data) - 1))) if len(data) > 1 else []
    )
    parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    order = list(range(len(parts)))
    rng.shuffle(order)
    return b"".join(parts[i] for i in order), f"shuffle {len(parts)} chunks {order}"


MUTATIONS: list[tuple[Callable[[bytes, random.Random], tuple[bytes, str]], float]] = [
    (truncate, 15),
    (flip_bits, 20),
    (overwrite, 10),
    (zero_range, 8),
    (swap_header, 8),
    (duplicate_chunk, 7),
    (shuffle_chunks, 5),
    (huge_dimensions, 12),
    (box_field, 15),
]


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """One mutation, or (one case in eight) two or three stacked."""
    steps = 1 if rng.random() < 0.875 else rng.choice((2, 3))
    notes = []
    funcs, weights = zip(*MUTATIONS, strict=True)
    for _ in range(steps):
        if not data:
            break
        func = rng.choices(funcs, weights)[0]
        data, note = func(data, rng)
        notes.append(note)
    return data, notes


def mutate_json_value(obj, rng: random.Random, depth: int = 0):
    """A structural JSON mutation: one value somewhere replaced, a key dropped or added."""
    nasty = [
        None,
        True,
        -1,
        0,
        2**63,
        -(2**70),
        1e308,
        float("nan"),
        "",
        "x" * 300,
        [],
        {},
        [1, 2],
        {"a": 1},
        "../../../etc/passwd",
        "/etc/passwd",
        "nul\x00",
        1.5,
        "12",
    ]
    if isinstance(obj, dict) and obj:
        key = rng.choice(sorted(obj))
        roll = rng.random()
        if roll < 0.15:
            return {k: v for k, v in obj.items() if k != key}
        if roll < 0.25:
            return {**obj, rng.choice(("extra", "__proto__", key + "_")): rng.choice(nasty)}
        if roll < 0.6 or depth > 4:
            return {**obj, key: rng.choice(nasty)}
        return {**obj, key: mutate_json_value(obj[key], rng, depth + 1)}
    if isinstance(obj, list) and obj:
        i = rng.randrange(len(obj))
        roll = rng.random()
        if roll < 0.2:
            return obj[:i] + obj[i + 1 :]
        if roll < 0.3:
            return obj + obj
        return [*obj[:i], mutate_json_value(obj[i], rng, depth + 1), *obj[i + 1 :]]
    return rng.choice(nasty)


# ---------------------------------------------------------------- cases


@dataclass
class Case:
    id: str  # "<target>-<seed>-<index>"
    target: str
    seed_name: str
    path: str  # the mutated file (or pack folder)
    readers: tuple[str, ...]
    notes: list[str]
    extra: dict = field(default_factory=dict)
    original: str = ""


def make_case(target: str, seeds: list[Seed], seed: int, index: int, folder: Path) -> Case:
    """Case `index` of (target, seed): deterministic given the seed files."""
    rng = random.Random(f"{target}/{seed}/{index}")
    base = rng.choice(seeds)
    case_id = f"{target}-{seed}-{index}"
    if target == "pack":
        dst = folder / case_id
        shutil.copytree(base.path, dst)
        victim = rng.choice(
            [
                "manifest.json",
                "manifest.json",
                "clips/c1.npz",
                "photos/p1.npz",
                "clips/c1.mp4",
                "photos/p1.png",
                "npy-header",
            ]
        )
        if victim == "npy-header":
            rel = rng.choice(["clips/c1.npz", "photos/p1.npz"])
            note = npy_header(dst / rel, rng)
            notes = [f"{rel}: {note}"]
        elif victim == "manifest.json" and rng.random() < 0.5:
            manifest = json.loads((dst / victim).read_text())
            for _ in range(rng.choice((1, 1, 2))):
                manifest = mutate_json_value(manifest, rng)
            (dst / victim).write_text(json.dumps(manifest))
            notes = ["manifest.json: structural"]
        else:
            data, notes = mutate((dst / victim).read_bytes(), rng)
            (dst / victim).write_bytes(data)
            notes = [f"{victim}: {n}" for n in notes]
        return Case(case_id, target, base.name, str(dst), TARGET_READERS[target], notes)
    data = base.path.read_bytes()
    if target in ("json", "jsonl") and rng.random() < 0.5:
        data, notes = _mutate_json_text(data, rng, lines=target == "jsonl")
    else:
        data, notes = mutate(data, rng)
    dst = folder / f"{case_id}{base.path.suffix}"
    dst.write_bytes(data)
    return Case(
        case_id,
        target,
        base.name,
        str(dst),
        TARGET_READERS[target],
        notes,
        dict(base.extra),
        str(base.path),
    )


def _mutate_json_text(data: bytes, rng: random.Random, lines: bool) -> tuple[bytes, list[str]]:
    if not lines:
        obj = json.loads(data)
        return json.dumps(mutate_json_value(obj, rng)).encode(), ["structural"]
    rows = data.decode().splitlines()
    i = rng.randrange(len(rows))
    rows[i] = json.dumps(mutate_json_value(json.loads(rows[i]), rng))
    return ("\n".join(rows) + "\n").encode(), [f"structural, line {i + 1}"]


def npy_header(npz: Path, rng: random.Random) -> str:
    """Rewrite one array's .npy header inside an .npz to claim another (often huge)
    shape, keeping its data."""
    with zipfile.ZipFile(npz) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    name = rng.choice(sorted(members))
    raw = members[name]
    header_len = int.from_bytes(raw[8:10], "little")
    body = raw[10 + header_len :]
    shape = rng.choice([(2**40,), (2**31, 2**31), (10**9, 478, 3), (0,), (-1,), (7, 3), (2**62, 4)])
    dtype = rng.choice(["<f2", "<f4", "<i4", "|O", "<U1000000", "<f8"])
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape!r}, }}"
    text = text + " " * (-(len(text) + 11) % 64) + "\n"
    members[name] = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode() + body
    with zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    return f"npy header of {name}: shape {shape} dtype {dtype}"


# ---------------------------------------------------------------- the child


def _consume(frames) -> int:
    n = 0
    for frame in frames:
        n += 1
        if frame.image.ndim != 3 or frame.image.shape[2] != 3:
            raise AssertionError(f"frame {n} has shape {frame.image.shape}")
    return n


def _read_verify(case: dict) -> str:
    from likeness.provenance.verify import TRUSTED, verify_file

    verdict = verify_file(Path(case["path"]), [Path(case["extra"]["trust"])])
    if verdict.manifest == TRUSTED:
        _check_same_pixels(Path(case["original"]), Path(case["path"]))
    return verdict.manifest


def _pixels(path: Path) -> list:
    from likeness.media import iter_frames

    return [f.image for f in iter_frames(path)]


def _check_same_pixels(original: Path, mutated: Path) -> None:
    """A trusted verdict must never cover changed content."""
    import numpy as np

    if original.read_bytes() == mutated.read_bytes():
        return
    from likeness.errors import LikenessError

    try:
        got = _pixels(mutated)
    except LikenessError as err:
        raise TrustViolation(f"trusted, but the changed file does not decode: {err}") from None
    want = _pixels(original)
    same = len(got) == len(want) and all(
        a.shape == b.shape and np.array_equal(a, b) for a, b in zip(got, want, strict=True)
    )
    if not same:
        raise TrustViolation("trusted, but the decoded pixels differ from the signed original")


class TrustViolation(Exception):
    """A trusted C2PA verdict over content that is not the signed content."""


def _read_manifest(case: dict) -> str:
    from likeness.provenance import c2pa_io

    path = Path(case["path"])
    mime = c2pa_io.sniff(path) or c2pa_io.sniff(Path(case["original"])) or c2pa_io.MP4
    result = c2pa_io.read_manifest(
        path, mime=mime, trust_pems=[Path(case["extra"]["trust"]).read_bytes()]
    )
    return "no manifest" if result is None else result.state


def _read_pack(case: dict) -> str:
    from likeness.datasets.pack_reader import Pack

    pack = Pack.open(case["path"])
    for item in pack.items:
        pack.frames(item)
        pack.frames(item, size=32)
        pack.arrays(item).scaled(0.5)
    return f"{len(pack.items)} items"


def _read_json(case: dict) -> str:
    from likeness.jsonio import read_json_object

    return f"{len(read_json_object(Path(case['path']), 'config'))} keys"


def _detector_config(case: dict) -> str:
    from likeness.detector.config import DetectorConfig

    DetectorConfig.load(Path(case["path"]))
    return "loaded"


def _generator_config(case: dict) -> str:
    from likeness.generator.config import GeneratorConfig

    GeneratorConfig.load(Path(case["path"]))
    return "loaded"


def _calibration(case: dict) -> str:
    from likeness.detector.model import read_decision

    read_decision(Path(case["path"]))
    return "loaded"


def _read_jsonl(case: dict) -> str:
    from likeness.pipelines.scan_runner import read_jsonl

    return f"{len(read_jsonl(Path(case['path'])))} records"


def _probe(case: dict) -> str:
    from likeness.media import probe

    info = probe(case["path"])
    return f"{info.kind} {info.width}x{info.height} {info.frames} frames"


def _frames_strict(case: dict) -> str:
    from likeness.media import iter_frames

    return f"{_consume(iter_frames(case['path']))} frames"


def _frames_lenient(case: dict) -> str:
    from likeness.media import iter_frames

    # As scan samples: every 10th, at most 300, stopping quietly at damage.
    return f"{_consume(iter_frames(case['path'], every=10, max_frames=300, strict=False))} frames"


def _read_image(case: dict) -> str:
    from likeness.media import read_image

    return "x".join(map(str, read_image(case["path"]).shape))


def _selftest(case: dict) -> str:
    """Misbehaviour on purpose, so the tests can show the parent catches each kind."""
    how = case["extra"]["selftest"]
    if how == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if how == "hang":
        while True:
            pass
    if how == "alloc":
        return str(len(bytearray(8 * 2**30)))
    if how == "raise":
        raise KeyError("boom")
    if how == "multiline":
        from likeness.errors import LikenessError

        err = LikenessError("x")
        err.args = ("two\nlines",)
        raise err
    return "fine"


READERS: dict[str, Callable[[dict], str]] = {
    "selftest": _selftest,
    "probe": _probe,
    "frames": _frames_strict,
    "frames-lenient": _frames_lenient,
    "read_image": _read_image,
    "read_manifest": _read_manifest,
    "verify": _read_verify,
    "pack": _read_pack,
    "read_jsonl": _read_jsonl,
    "read_json": _read_json,
    "detector_config": _detector_config,
    "generator_config": _generator_config,
    "calibration": _calibration,
}


def run_reader(reader: str, case: dict) -> dict:
    """One reader on one case, classified (in whatever process calls it)."""
    from likeness.errors import LikenessError

    try:
        detail = READERS[reader](case)
    except LikenessError as err:
        return {"outcome": "likeness-error", "type": type(err).__name__, "message": str(err)}
    except BaseException as err:  # classifying everything is the point
        if isinstance(err, KeyboardInterrupt):
            raise
        return {
            "outcome": "exception",
            "type": type(err).__name__,
            "message": " ".join(str(err).split())[:300],
            "where": _where(err),
        }
    return {"outcome": "ok", "detail": detail}


def _where(err: BaseException) -> str:
    """The innermost likeness frame and the innermost frame overall."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "/likeness/" in f.filename and "/tests/" not in f.filename]
    pick = [*ours[-1:], *frames[-1:]]
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in pick)


def child_main(spec_path: Path, out_path: Path) -> int:
    """Run the cases of a batch; one 'start' and one result line per (case, reader)."""
    import resource

    spec = json.loads(spec_path.read_text())
    resource.setrlimit(resource.RLIMIT_AS, (spec["memory"], spec["memory"]))
    if spec.get("home"):
        os.environ["LIKENESS_HOME"] = spec["home"]
    import logging

    logging.disable(logging.CRITICAL)  # decode warnings are not results
    skip = {tuple(k) for k in spec.get("skip", [])}
    with open(out_path, "a", encoding="utf-8") as out:
        for case in spec["cases"]:
            for reader in case["readers"]:
                if (case["id"], reader) in skip:
                    continue
                out.write(json.dumps({"id": case["id"], "reader": reader, "start": True}) + "\n")
                out.flush()
                used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
                # Soft limit only (SIGXCPU): the hard one cannot be raised again unprivileged.
                hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
                cpu = int(used) + spec["cpu"]
                resource.setrlimit(resource.RLIMIT_CPU, (cpu if hard < 0 else min(cpu, hard), hard))
                result = run_reader(reader, case)
                out.write(json.dumps({"id": case["id"], "reader": reader, **result}) + "\n")
                out.flush()
    return 0


# ---------------------------------------------------------------- the parent


@dataclass
class Result:
    id: str
    reader: str
    outcome: str  # ok | likeness-error | exception | crash | timeout | trust-violation
    type: str = ""
    message: str = ""
    where: str = ""
    detail: str = ""

    @property
    def failed(self) -> bool:
        if self.outcome == "likeness-error":
            return not self.message.strip() or "\n" in self.message
        return self.outcome != "ok"

    def signature(self) -> str:
        """Failures that share a reader, kind and place count as one bug."""
        return f"{self.reader}: {self.outcome} {self.type} at {self.where or '?'}"


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def run_batch(
    cases: list[Case],
    *,
    home: str | None = None,
    timeout: float = CASE_TIMEOUT,
    cpu: int = CASE_CPU,
    memory: int = MEMORY_LIMIT,
) -> list[Result]:
    """Run `cases` in child processes; a child that dies or hangs is replaced and the
    case it was on is blamed."""
    results: dict[tuple[str, str], Result] = {}
    pending = list(cases)
    with tempfile.TemporaryDirectory(prefix="fuzz-batch-") as tmp:
        attempt = 0
        while pending:
            attempt += 1
            spec_path, out_path = (
                Path(tmp) / f"spec{attempt}.json",
                Path(tmp) / f"out{attempt}.jsonl",
            )
            skip = [list(k) for k in results]
            spec = {
                "cases": [asdict(c) for c in pending],
                "cpu": cpu,
                "memory": memory,
                "home": home,
                "skip": skip,
            }
            spec_path.write_text(json.dumps(spec))
            env = {
                **os.environ,
                "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
                "OPENCV_FFMPEG_THREADS": "1",
                "PYTHONFAULTHANDLER": "",
            }
            root = Path(__file__).resolve().parents[2]
            with open(Path(tmp) / f"err{attempt}.txt", "wb") as err:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tests.reliability.fuzzing",
                        "--child",
                        str(spec_path),
                        str(out_path),
                    ],
                    cwd=root,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
                current, since, seen = None, time.monotonic(), 0
                killed = None
                while True:
                    code = proc.poll()
                    lines = out_path.read_text().splitlines() if out_path.exists() else []
                    for line in lines[seen:]:
                        if not line.endswith("}"):
                            break
                        seen += 1
                        row = json.loads(line)
                        key = (row["id"], row["reader"])
                        if row.get("start"):
                            current, since = key, time.monotonic()
                        else:
                            current = None
                            results[key] = _result(row)
                    if code is not None:
                        break
                    if current is not None and time.monotonic() - since > timeout:
                        proc.kill()
                        proc.wait()
                        killed = "timeout"
                        code = proc.returncode
                        break
                    time.sleep(0.02)
            if current is not None:
                if killed:
                    outcome, why = "timeout", f"no answer in {timeout:.0f} s"
                elif code < 0:
                    sig = _signal_name(code)
                    outcome = "crash"
                    why = {"SIGXCPU": "CPU limit", "SIGKILL": "killed (memory?)"}.get(sig, sig)
                else:
                    outcome, why = "crash", f"exit {code}"
                tail = (Path(tmp) / f"err{attempt}.txt").read_text(errors="replace")[-300:]
                results[current] = Result(
                    current[0], current[1], outcome, why, " ".join(tail.split())
                )
            elif code != 0:
                tail = (Path(tmp) / f"err{attempt}.txt").read_text(errors="replace")[-300:]
                key = ("batch", f"child exit {code}")
                results[key] = Result(*key, "crash", f"exit {code}", " ".join(tail.split()))
                break
            if current is None:
                break  # the child finished its batch
            pending = [c for c in pending if not all((c.id, r) in results for r in c.readers)]
    return list(results.values())


def _result(row: dict) -> Result:
    return Result(
        row["id"],
        row["reader"],
        row["outcome"],
        row.get("type", ""),
        row.get("message", ""),
        row.get("where", ""),
        row.get("detail", ""),
    )


@dataclass
class Report:
    target: str
    seed: int
    count: int
    results: list[Result]
    cases: dict[str, Case]
    seconds: float

    def counts(self) -> Counter:
        c: Counter = Counter()
        for r in self.results:
            c["failure" if r.failed else r.outcome] += 1
        return c

    def failures(self) -> list[Result]:
        return [r for r in self.results if r.failed]

    def describe(self, limit: int = 12) -> str:
        """Failures grouped by signature, with one input each, for assertion messages."""
        groups: dict[str, list[Result]] = {}
        for r in self.failures():
            groups.setdefault(r.signature(), []).append(r)
        lines = []
        for sig, rs in list(groups.items())[:limit]:
            r = rs[0]
            case = self.cases.get(r.id)
            how = f"{case.seed_name} {case.notes}" if case else ""
            lines.append(f"{len(rs)}x {sig}: {r.message[:200]} [{r.id}: {how}]")
        return "\n".join(lines)

    def summary(self) -> str:
        c = self.counts()
        return (
            f"{self.target}: seed {self.seed}, {self.count} cases, {len(self.results)} reads: "
            f"{c['ok']} ok, {c['likeness-error']} LikenessError, {c['failure']} failures "
            f"({self.seconds:.0f} s)"
        )


def fuzz(
    target: str,
    seeds: dict[str, list[Seed]],
    *,
    seed: int,
    count: int,
    folder: Path,
    jobs: int = 1,
    batch: int = BATCH,
    only: int | None = None,
    keep: Path | None = None,
    timeout: float = CASE_TIMEOUT,
) -> Report:
    """Make and run `count` cases of `target`; inputs are deleted unless they failed and
    `keep` is given."""
    t0 = time.monotonic()
    indices = [only] if only is not None else list(range(count))
    batch = BATCH_SIZES.get(target, batch)
    chunks = [indices[i : i + batch] for i in range(0, len(indices), batch)]
    home = next((s.extra.get("home") for s in seeds[target] if s.extra.get("home")), None)
    all_cases: dict[str, Case] = {}
    results: list[Result] = []
    lock = threading.Lock()

    def work(chunk: list[int]) -> None:
        work_dir = Path(tempfile.mkdtemp(prefix=f"{target}-", dir=folder))
        try:
            cases = [make_case(target, seeds[target], seed, i, work_dir) for i in chunk]
            got = run_batch(cases, home=home, timeout=timeout)
            by_id = {c.id: c for c in cases}
            if keep is not None:
                for r in got:
                    if r.failed and r.id in by_id:
                        _keep(by_id[r.id], keep)
            with lock:
                all_cases.update(by_id)
                results.extend(got)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)

    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        list(pool.map(work, chunks))
    return Report(target, seed, len(indices), results, all_cases, time.monotonic() - t0)


def _keep(case: Case, keep: Path) -> None:
    keep.mkdir(parents=True, exist_ok=True)
    src = Path(case.path)
    dst = keep / src.name
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True)
    elif src.exists():
        shutil.copyfile(src, dst)
    (keep / f"{case.id}.json").write_text(json.dumps(asdict(case), indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.fuzzing", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--target", choices=(*TARGETS, "all"), default="all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", type=int, help="run case INDEX alone")
    parser.add_argument("--keep", type=Path, help="copy failing inputs here")
    parser.add_argument("--timeout", type=float, default=CASE_TIMEOUT)
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(*args.child)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    targets = TARGETS if args.target == "all" else (args.target,)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="likeness-fuzz-") as tmp:
        seeds = make_seeds(Path(tmp) / "seeds", targets)
        for target in targets:
            count = args.count
            if args.target == "all":
                count = max(1, round(count * COUNT_SCALE.get(target, 1)))
            report = fuzz(
                target,
                seeds,
                seed=args.seed,
                count=count,
                folder=Path(tmp),
                jobs=args.jobs,
                only=args.only,
                keep=args.keep,
                timeout=args.timeout,
            )
            print(report.summary(), flush=True)
            if report.failures():
                print(report.describe(limit=40), flush=True)
                failed += len(report.failures())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
