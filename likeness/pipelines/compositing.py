"""Rendered face crop -> output frame: pasted back into the photo, or the crop itself;
several faces into one frame (`paste_faces`), and the side-by-side preview frame."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
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
        self.window, self.crop = _window(crop, self.photo.shape)
        self.mask = crop_mask(size, self.config)

    def __call__(self, rendered: np.ndarray) -> np.ndarray:

        if not self.paste_back:
            return rendered
        frame = self.photo.copy()
        part = frame[self.window]
        frame[self.window] = paste_back(part, rendered, self.crop, self.config, self.mask)
        return frame


def _window(crop: AlignedCrop, shape: tuple[int, ...]) -> tuple[tuple[slice, slice], AlignedCrop]:
    """The frame window a crop covers, and the crop as seen from that window. Only the
    crop's footprint changes: pasting into that window, not the whole frame, saves two
    full-frame warps a face (a 4000 px photo would otherwise pay them every frame)."""
    size = crop.image.shape[0]
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], float)
    xy = corners @ crop.inverse.T
    h, w = shape[:2]
    x0, y0 = (min(max(0, math.floor(v) - 2), lim) for v, lim in zip(xy.min(0), (w, h), strict=True))
    x1, y1 = min(w, math.ceil(xy[:, 0].max()) + 2), min(h, math.ceil(xy[:, 1].max()) + 2)
    shift = np.array([[0, 0, x0], [0, 0, y0]], float)
    return (slice(y0, y1), slice(x0, x1)), _shifted(crop, shift)


def paste_faces(
    frame: np.ndarray,
    faces: Sequence[tuple[np.ndarray, AlignedCrop]],
    config: PasteConfig | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """A copy of `frame` with each rendered crop pasted where its crop came from (in
    order: a later face covers an earlier one where they overlap). `mask` is the crop
    mask for the crops' size (made when None)."""
    config = config or PasteConfig()
    out = frame.copy()
    for rendered, crop in faces:
        window, local = _window(crop, out.shape)
        part = out[window]
        if part.shape[0] < 2 or part.shape[1] < 2:
            continue  # the crop lies outside the frame
        size = crop.image.shape[0]
        soft = mask if mask is not None and mask.shape[0] == size else crop_mask(size, config)
        out[window] = paste_back(part, rendered, local, config, soft)
    return out


PREVIEW_MAX_HEIGHT = 720  # a preview is for judging motion: 720 p keeps it cheap to encode


def side_by_side(left: np.ndarray, right: np.ndarray, max_height: int = PREVIEW_MAX_HEIGHT):
    """`left | right` at one height (the right's, at most `max_height`), each keeping
    its aspect; the preview frame (driver | output)."""
    height = min(right.shape[0], max_height)

    def fit(img: np.ndarray) -> np.ndarray:
        if img.shape[0] == height:
            return img
        width = max(2, round(img.shape[1] * height / img.shape[0]))
        shrink = img.shape[0] > height
        return cv2.resize(
            img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )

    return np.ascontiguousarray(np.concatenate([fit(left), fit(right)], axis=1))


def _shifted(crop: AlignedCrop, shift: np.ndarray) -> AlignedCrop:
    """The same crop, for a frame whose origin moved by shift[:, 2]."""
    matrix = crop.matrix.copy()
    matrix[:, 2] += crop.matrix[:, :2] @ shift[:, 2]
    inverse = crop.inverse - shift
    return AlignedCrop(crop.image, matrix, inverse, crop.params, crop.frame_size)
