"""`likeness bench provenance`: C2PA sign/verify seconds and store milliseconds.

Runs in a throw-away LIKENESS_HOME with fresh keys, so the user's keys and store are
never touched. Figures are medians of N repetitions:

- sign_s: `sign_file` end to end (c2pa sign, read-back check, sha256, store record);
- c2pa_sign_s / c2pa_read_s: the native calls alone (`sign_stream`, `read_manifest`);
- verify_s: `verify_file` with the trust anchor (manifest, watermark detection when the
  watermark module is installed, store lookup).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from likeness.bench.common import machine_info, write_json

MB = 1 << 20


@contextlib.contextmanager
def _temporary_home() -> Iterator[Path]:
    old = os.environ.get("LIKENESS_HOME")
    with tempfile.TemporaryDirectory(prefix="likeness-bench-") as tmp:
        os.environ["LIKENESS_HOME"] = str(Path(tmp) / "home")
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("LIKENESS_HOME", None)
            else:
                os.environ["LIKENESS_HOME"] = old


def _noise_mp4(path: Path, target_bytes: int, size: int = 256, fps: int = 25) -> Path:
    """An MP4 of about `target_bytes`: lossless H.264 of noise barely compresses, so the
    size is set by the frame count (about 1.8 bytes per pixel per frame)."""
    import av

    rng = np.random.default_rng(0)
    frames = max(5, int(target_bytes / (size * size * 1.8)))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"qp": "0", "preset": "ultrafast"}
        for _ in range(frames):
            rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _jpeg(path: Path, size: int = 1024) -> Path:
    import cv2

    rng = np.random.default_rng(1)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 3)
    ok, buf = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def _median(fn: Callable[[int], object], n: int) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _case(name: str, src: Path, work: Path, root: Path, n: int) -> dict:
    from likeness.provenance import c2pa_io
    from likeness.provenance.keys import load_signing
    from likeness.provenance.manifest import build_manifest
    from likeness.provenance.mark import sign_file
    from likeness.provenance.verify import verify_file

    mime = c2pa_io.sniff(src)
    assert mime is not None
    suffix = src.suffix
    keys = load_signing()
    manifest = build_manifest(title=f"bench{suffix}")
    root_pem = root.read_bytes()

    def sign(i: int) -> None:
        out = work / f"{name}-{i}{suffix}"
        sign_file(src, out)

    def native_sign(i: int) -> None:
        c2pa_io.sign_stream(
            src, work / f"{name}-native-{i}{suffix}", mime=mime, manifest=manifest, keys=keys
        )

    signed = work / f"{name}-0{suffix}"
    sign_s = _median(sign, n)
    native_s = _median(native_sign, n)
    read_s = _median(lambda _: c2pa_io.read_manifest(signed, mime=mime, trust_pems=[root_pem]), n)
    verdicts: list = []
    verify_s = _median(lambda _: verdicts.append(verify_file(signed, [root])), n)
    return {
        "file": name,
        "bytes": src.stat().st_size,
        "mb": round(src.stat().st_size / MB, 2),
        "sign_s": round(sign_s, 4),
        "c2pa_sign_s": round(native_s, 4),
        "c2pa_read_s": round(read_s, 4),
        "verify_s": round(verify_s, 4),
        "sign_plus_verify_s": round(sign_s + verify_s, 4),
        "verdict": verdicts[-1].manifest,
        "watermark_checked": verdicts[-1].watermark is not None,
    }


def _store_figures(n: int) -> dict:
    from likeness.provenance.store import Store

    store = Store()
    writes = []
    for i in range(n):
        start = time.perf_counter()
        store.record(
            sha256=f"{i:064x}",
            manifest={"i": i, "pad": "x" * 2000},
            file_name=f"bench-{i}.mp4",
            payload_hex=f"{i:012x}beef",
            content_id=i,
            key_id=0xBEEF,
        )
        writes.append(time.perf_counter() - start)
    lookups = []
    for i in range(n):
        start = time.perf_counter()
        assert store.lookup_payload(f"{i:012x}beef") is not None
        lookups.append(time.perf_counter() - start)
    return {
        "records": n,
        "write_ms": round(1000 * statistics.median(writes), 3),
        "lookup_ms": round(1000 * statistics.median(lookups), 3),
    }


def run(out_dir: Path, quick: bool = False) -> Path:
    """Measure and write `provenance.json` into `out_dir`; returns its path."""
    from likeness.provenance.keys import export_trust, init_keys

    n = 3 if quick else 7
    sizes = {"mp4_1mb": 1 * MB, "mp4_large": (8 if quick else 50) * MB}
    results = []
    with _temporary_home() as tmp:
        init_keys(passphrase="")
        root = export_trust(tmp / "root.pem")
        work = tmp / "work"
        work.mkdir()
        for name, size in sizes.items():
            src = _noise_mp4(tmp / f"{name}.mp4", size)
            results.append(_case(name, src, work, root, n))
            for path in work.iterdir():  # keep the disk footprint to one case
                path.unlink()
        results.append(_case("jpeg_1024", _jpeg(tmp / "still.jpg"), work, root, n))
        store = _store_figures(50 if quick else 200)
    payload = {
        "benchmark": "provenance",
        "machine": machine_info(),
        "repetitions": n,
        "notes": (
            "median seconds; sign_s = sign_file end to end (c2pa sign, read-back check, "
            "sha256, store record); verify_s = verify_file with the trust anchor, "
            "including watermark detection when watermark_checked"
        ),
        "files": results,
        "store": store,
    }
    return write_json(Path(out_dir), "provenance", payload)
