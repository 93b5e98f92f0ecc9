"""Paste a face crop back into its frame: feathered mask, optional colour match."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from likeness.faces.align import AlignedCrop
from likeness.media.images import resize_square


@dataclass(frozen=True)
class PasteConfig:
    feather: float = 0.08  # blur of the mask edge, as a fraction of the crop side
    inset: float = 0.06  # the mask stays this fraction inside the crop's border
    color_match: bool = True


def crop_mask(size: int, config: PasteConfig) -> np.ndarray:
    """A soft rounded square in crop space, 1 inside, falling to 0 before the border."""
    mask = np.zeros((size, size), np.float32)
    inset = round(size * (config.inset + config.feather))
    radius = max(1, size // 5)
    lo, hi = inset, size - 1 - inset
    cv2.rectangle(mask, (lo + radius, lo), (hi - radius, hi), 1.0, -1)
    cv2.rectangle(mask, (lo, lo + radius), (hi, hi - radius), 1.0, -1)
    for cx in (lo + radius, hi - radius):
        for cy in (lo + radius, hi - radius):
            cv2.circle(mask, (cx, cy), radius, 1.0, -1)
    sigma = max(0.5, size * config.feather / 2)
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma)


def match_colors(src: np.ndarray, ref: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Shift `src` so its per-channel mean and spread in LAB match `ref` under `weight`."""
    w = weight[..., None].astype(np.float64)
    total = w.sum()
    if total < 1.0:
        return src
    s = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float64)
    r = cv2.cvtColor(ref, cv2.COLOR_RGB2LAB).astype(np.float64)
    s_mean, r_mean = (s * w).sum((0, 1)) / total, (r * w).sum((0, 1)) / total
    s_std = np.sqrt((((s - s_mean) ** 2) * w).sum((0, 1)) / total) + 1e-6
    r_std = np.sqrt((((r - r_mean) ** 2) * w).sum((0, 1)) / total) + 1e-6
    # Limit the gain: a generated face is not meant to take on another face's contrast.
    gain = np.clip(r_std / s_std, 0.7, 1.4)
    out = (s - s_mean) * gain + r_mean
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def paste_back(
    frame: np.ndarray,
    generated: np.ndarray,
    crop: AlignedCrop,
    config: PasteConfig | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Blend `generated` (crop space, any square size) into a copy of `frame`."""
    config = config or PasteConfig()
    size = crop.image.shape[0]
    generated = resize_square(generated, size, enlarge=cv2.INTER_AREA)
    soft = crop_mask(size, config) if mask is None else mask.astype(np.float32)
    if config.color_match:
        generated = match_colors(generated, crop.image, soft)
    h, w = frame.shape[:2]
    flags = cv2.INTER_CUBIC
    back = cv2.warpAffine(
        generated, crop.inverse, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE
    )
    alpha = cv2.warpAffine(soft, crop.inverse, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    alpha = np.clip(alpha, 0.0, 1.0)[..., None]
    out = frame.astype(np.float32) * (1 - alpha) + back.astype(np.float32) * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
