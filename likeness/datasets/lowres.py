"""The low-resolution family: the face rendered small, upsampled, and pasted back.

Most talking-head generators (audio-driven heads, implicit-keypoint reenactment at
256 px, diffusion portraits decoded from a small latent) and every face restorer run
the face at a resolution below the frame's, then upsample it, often sharpen it (GFPGAN
and CodeFormer outputs: smooth skin, crisp edges) and paste it into the full-resolution
frame. What is left is a face whose high frequencies are missing or synthetic next to a
background that keeps its own: the family every detector meets and a lazy detector
ignores. Pure function: numpy and OpenCV in, numpy out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from likeness.datasets import forgery as fg
from likeness.datasets.forgery import Forgery
from likeness.faces.types import FACE_OVAL

FAMILY = "lowres"
UPSAMPLERS = {
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}
# What is done after upsampling: nothing, an unsharp mask, a light edge-preserving
# denoise, or both (the face-restorer look).
FINISHES = ("none", "sharpen", "denoise", "restore")


@dataclass(frozen=True)
class LowResConfig:
    """What `low_res` draws from. Fractions are of the face size (landmark box
    diagonal over sqrt 2, about 140 px in a 256 px FFHQ-style crop)."""

    face_px: tuple[float, float] = (48.0, 112.0)  # side of the face box as rendered
    max_scale: float = 0.75  # never rendered at more than this fraction of its size
    min_change: float = 2.0  # mean change inside the face, levels, to aim for
    min_face_px: float = 24.0  # how small the retries may render it
    upsampler_probs: tuple[float, float, float] = (0.2, 0.5, 0.3)  # in UPSAMPLERS order
    finish_probs: tuple[float, float, float, float] = (0.3, 0.3, 0.15, 0.25)  # FINISHES
    sharpen: tuple[float, float] = (0.5, 1.5)  # unsharp amount
    denoise: tuple[float, float] = (15.0, 40.0)  # bilateral colour sigma, levels
    deform: float = 0.03  # elastic displacement of the mask
    morph: tuple[float, float] = (-0.03, 0.08)  # erode (< 0) or dilate the face hull
    soften: tuple[float, float] = (0.015, 0.06)  # mask feather sigma


def _finish(rgb: np.ndarray, kind: str, scale: float, cfg: LowResConfig, rng) -> tuple:
    """The upsampled face sharpened and/or denoised; the blur radius follows the
    upsampling factor (1 / scale), which sets how wide the missing detail is."""
    params: dict = {}
    out = rgb
    if kind in ("denoise", "restore"):
        sigma_colour = float(rng.uniform(*cfg.denoise))
        out = cv2.bilateralFilter(out, 5, sigma_colour, max(1.0, 0.5 / scale))
        params["denoise"] = sigma_colour
    if kind in ("sharpen", "restore"):
        amount = float(rng.uniform(*cfg.sharpen))
        out = fg.unsharp(out, max(0.6, 0.5 / scale), amount)
        params["sharpen"] = amount
    return out, params


def _choice(names, probs, rng) -> str:
    p = np.asarray(probs, np.float64)
    return tuple(names)[int(rng.choice(len(p), p=p / p.sum()))]


def low_res(
    target: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator | int | None = None,
    config: LowResConfig | None = None,
) -> Forgery:
    """The target's face rendered at 48-112 px (smaller when that changes too little),
    upsampled, finished (sharpened, denoised, both or neither), and pasted back through
    a deformed, softened face-hull mask.

    Args:
        target: H x W x 3 uint8 RGB crop.
        landmarks: (140, 2|3) pack rows (KEY_LANDMARKS) or (468, 2|3) mesh, crop pixels.
        rng: a Generator (drawn from), or an int seed.
        config: LowResConfig; defaults if None.
    Returns:
        Forgery(family="lowres"): mask = the paste weight of the re-rendered face.
    """
    cfg = config or LowResConfig()
    rng = fg.as_rng(rng)
    target = fg.check_image(target, "target")
    h, w = target.shape[:2]
    size = fg.face_size(landmarks)
    oval = fg.points(landmarks, FACE_OVAL)
    side = float(max(np.ptp(oval[:, 0]), np.ptp(oval[:, 1]), 1.0))

    face_px = float(rng.uniform(*cfg.face_px))
    # A face already near face_px (a small or blurry source) is still rendered smaller:
    # the fake must lose detail the target has.
    scale = min(face_px / side, cfg.max_scale)
    down = (cv2.INTER_AREA, cv2.INTER_LINEAR)[int(rng.integers(2))]
    up_name = _choice(UPSAMPLERS, cfg.upsampler_probs, rng)
    finish = _choice(FINISHES, cfg.finish_probs, rng)
    core = fg.hull_mask((h, w), oval) > 0.5
    # Smooth faces (already soft video frames) barely change at a mild scale: render
    # smaller until the change is visible, or a "fake" is a mislabelled real.
    for _attempt in range(4):
        rendered = fg.resample(target, scale, down, UPSAMPLERS[up_name])
        rendered, finish_params = _finish(rendered, finish, scale, cfg, rng)
        change = float(np.abs(rendered.astype(np.float32) - target)[core].mean())
        if change >= cfg.min_change or scale * side <= cfg.min_face_px:
            break
        scale = max(scale * 0.7, cfg.min_face_px / side)

    mask = fg.hull_mask((h, w), oval)
    mask = fg.elastic_deform(mask, cfg.deform * size, max(4.0, 0.25 * size), rng)
    morph = int(round(size * rng.uniform(*cfg.morph)))
    mask = fg.grow_or_shrink(mask, morph)
    sigma = float(size * rng.uniform(*cfg.soften))
    mask = fg.soften(mask, sigma)
    if mask.max() < 0.5:  # eroded away (tiny face): the plain hull
        mask = fg.soften(fg.hull_mask((h, w), oval), sigma)
    params = {
        "face_px": face_px,
        "scale": scale,
        "rendered_px": scale * side,
        "upsampler": up_name,
        "finish": finish,
        **finish_params,
        "morph_px": morph,
        "soften_px": sigma,
    }
    return fg.forgery(target, rendered, mask, FAMILY, params)
