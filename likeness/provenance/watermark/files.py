"""File-level embedding and detection on top of likeness.media."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from likeness.errors import InputError, ProvenanceError
from likeness.provenance.watermark.config import WatermarkConfig
from likeness.provenance.watermark.detect import WatermarkResult, detect_frames
from likeness.provenance.watermark.embed import Embedder
from likeness.provenance.watermark.payload import Payload

IMAGE_OUT = {".png", ".jpg", ".jpeg"}


@dataclass
class EmbedReport:
    output: Path
    kind: str  # "video" or "image"
    frames: int
    mean_psnr: float
    min_psnr: float
    payload_hex: str

    def to_dict(self) -> dict:
        return {**self.__dict__, "output": str(self.output)}


def embed_file(
    src: Path,
    dst: Path,
    *,
    key: bytes,
    payload: Payload,
    config: WatermarkConfig = WatermarkConfig(),
    crf: int = 18,
    on_frame: Callable[[int], None] | None = None,
    read_back: bool = False,
) -> EmbedReport:
    """Mark a video (re-encoded with x264, audio copied) or an image (PNG/JPEG out).

    With `read_back`, the mark is detected in the encoded output before it is renamed
    into place; when it does not read (payload exact, `found`), nothing is written and
    a `ProvenanceError` says so. (The generator's signed writer reads back on its own.)
    """
    from likeness.fsio import atomic_output
    from likeness.media import probe

    src, dst = Path(src), Path(dst)
    info = probe(src)
    if info.kind == "image" and dst.suffix.lower() not in IMAGE_OUT:
        raise InputError(f"cannot write {dst.name}: use .png or .jpg for a marked image")
    if not read_back:
        psnrs = _embed_into(src, dst, info, key, payload, config, crf, on_frame)
    else:
        with atomic_output(dst, inputs=(src,)) as tmp:
            psnrs = _embed_into(src, tmp, info, key, payload, config, crf, on_frame)
            found = detect_file(tmp, key=key, key_id=payload.key_id, config=config)
            if not (found.found and found.payload == payload):
                raise ProvenanceError(
                    f"the watermark does not read back from the marked {dst.name} (p_false "
                    f"{found.p_false:.1e}, needs {config.threshold_p:.0e}); nothing was "
                    "written: the picture is too small, too flat or too noisy to carry it "
                    "at this strength (a lower --psnr or a lower --crf may help)"
                )
    finite = [p for p in psnrs if np.isfinite(p)] or [99.0]
    return EmbedReport(
        output=dst,
        kind=info.kind,
        frames=len(psnrs),
        mean_psnr=round(float(np.mean(finite)), 3),
        min_psnr=round(float(np.min(finite)), 3),
        payload_hex=payload.hex(),
    )


def _embed_into(src, dst, info, key, payload, config, crf, on_frame) -> list[float]:
    from likeness.media import VideoWriter, iter_frames, write_image

    embedder = Embedder(key, payload, config)
    psnrs: list[float] = []
    if info.kind == "image":
        image = next(iter(iter_frames(src))).image
        write_image(dst, embedder.embed(image))
        psnrs.append(embedder.last_psnr or 0.0)
    else:
        with VideoWriter(dst, info.fps, crf=crf, audio_from=src if info.has_audio else None,
                         inputs=(src,)) as writer:  # fmt: skip
            for frame in iter_frames(src):
                writer.write(embedder.embed(frame.image))
                psnrs.append(embedder.last_psnr or 0.0)
                if on_frame:
                    on_frame(1)
    if not psnrs:
        raise ProvenanceError(f"{src.name}: no frames to watermark")
    return psnrs


def detect_file(
    path: Path,
    *,
    key: bytes,
    key_id: int | None = None,
    config: WatermarkConfig = WatermarkConfig(),
    max_frames: int = 120,
) -> WatermarkResult:
    """Look for the watermark in the first `max_frames` frames of a video (or an image);
    `key_id`: the id this key marks, whose bits the decoder then knows (`detect_frames`)."""
    from likeness.media import iter_frames

    return detect_frames(
        (f.image for f in iter_frames(Path(path), max_frames=max_frames)),
        key=key,
        key_id=key_id,
        config=config,
    )
