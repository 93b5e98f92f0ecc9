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
) -> EmbedReport:
    """Mark a video (re-encoded with x264, audio copied) or an image (PNG/JPEG out)."""
    from likeness.media import VideoWriter, iter_frames, probe, write_image

    src, dst = Path(src), Path(dst)
    info = probe(src)
    embedder = Embedder(key, payload, config)
    psnrs: list[float] = []
    if info.kind == "image":
        if dst.suffix.lower() not in IMAGE_OUT:
            raise InputError(f"cannot write {dst.name}: use .png or .jpg for a marked image")
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
    finite = [p for p in psnrs if np.isfinite(p)] or [99.0]
    return EmbedReport(
        output=dst,
        kind=info.kind,
        frames=len(psnrs),
        mean_psnr=round(float(np.mean(finite)), 3),
        min_psnr=round(float(np.min(finite)), 3),
        payload_hex=payload.hex(),
    )


def detect_file(
    path: Path,
    *,
    key: bytes,
    config: WatermarkConfig = WatermarkConfig(),
    max_frames: int = 120,
) -> WatermarkResult:
    """Look for the watermark in the first `max_frames` frames of a video (or an image)."""
    from likeness.media import iter_frames

    return detect_frames(
        (f.image for f in iter_frames(Path(path), max_frames=max_frames)), key=key, config=config
    )
