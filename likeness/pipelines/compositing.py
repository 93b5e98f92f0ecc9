"""Rendered face crop -> output frame: pasted back into the photo, or the crop itself."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from likeness.faces import AlignedCrop
from likeness.faces.paste import PasteConfig, crop_mask, paste_back

if TYPE_CHECKING:
    from likeness.pipelines.animate import Source


class Composer:
    """Rendered crop -> output frame: pasted into the photo, or the crop itself."""

    def __init__(self, source: Source, paste_back: bool) -> None:

        self.paste_back = paste_back
        self.config = PasteConfig()
        self.photo = source.image
        crop = source.crop
        size = crop.image.shape[0]
        # Only the crop's footprint changes: paste into that window of the photo, not
        # the whole frame (a 4000 px photo would otherwise cost two full warps a frame).
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], float)
        xy = corners @ crop.inverse.T
        h, w = self.photo.shape[:2]
        x0, y0 = (max(0, math.floor(v) - 2) for v in xy.min(0))
        x1, y1 = min(w, math.ceil(xy[:, 0].max()) + 2), min(h, math.ceil(xy[:, 1].max()) + 2)
        self.window = (slice(y0, y1), slice(x0, x1))
        shift = np.array([[0, 0, x0], [0, 0, y0]], float)
        self.crop = _shifted(crop, shift)
        self.mask = crop_mask(size, self.config)

    def __call__(self, rendered: np.ndarray) -> np.ndarray:

        if not self.paste_back:
            return rendered
        frame = self.photo.copy()
        part = frame[self.window]
        frame[self.window] = paste_back(part, rendered, self.crop, self.config, self.mask)
        return frame


def _shifted(crop: AlignedCrop, shift: np.ndarray) -> AlignedCrop:
    """The same crop, for a frame whose origin moved by shift[:, 2]."""
    matrix = crop.matrix.copy()
    matrix[:, 2] += crop.matrix[:, :2] @ shift[:, 2]
    inverse = crop.inverse - shift
    return AlignedCrop(crop.image, matrix, inverse, crop.params, crop.frame_size)
