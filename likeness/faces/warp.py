"""Affine warps from a frame into a small crop without aliasing, at the cost of the crop.

Shrinking a 4000 px photo's face to 192 px in one warp aliases badly; blurring the whole
frame first costs hundreds of milliseconds. So: cut the region the crop covers, reduce it
with area averaging to about the crop's resolution, then warp that.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from likeness.faces.geometry import affine_scale, apply_affine, invert_affine

# Below this crop/frame scale, pre-reduce; the final warp then shrinks by at most 1/0.7.
PRE_REDUCE_BELOW = 0.7


def warp_to_crop(
    rgb: np.ndarray,
    matrix: np.ndarray,
    size: tuple[int, int],
    interpolation: int = cv2.INTER_LINEAR,
    border: int = cv2.BORDER_CONSTANT,
) -> np.ndarray:
    """`cv2.warpAffine(rgb, matrix, size)` with anti-aliasing for strong reductions."""
    scale = affine_scale(matrix)
    if scale >= PRE_REDUCE_BELOW:
        return cv2.warpAffine(rgb, matrix, size, flags=interpolation, borderMode=border)
    w, h = size
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float64)
    frame_pts = apply_affine(invert_affine(matrix), corners)
    fh, fw = rgb.shape[:2]
    x0 = max(0, math.floor(frame_pts[:, 0].min()) - 2)
    y0 = max(0, math.floor(frame_pts[:, 1].min()) - 2)
    x1 = min(fw, math.ceil(frame_pts[:, 0].max()) + 2)
    y1 = min(fh, math.ceil(frame_pts[:, 1].max()) + 2)
    if x1 - x0 < 2 or y1 - y0 < 2:  # the crop lies outside the frame
        return cv2.warpAffine(rgb, matrix, size, flags=interpolation, borderMode=border)
    factor = min(1.0, scale / PRE_REDUCE_BELOW)
    rw, rh = max(2, round((x1 - x0) * factor)), max(2, round((y1 - y0) * factor))
    region = cv2.resize(rgb[y0:y1, x0:x1], (rw, rh), interpolation=cv2.INTER_AREA)
    fx, fy = rw / (x1 - x0), rh / (y1 - y0)
    # crop = A @ frame + b, frame = region_pt / f + origin  =>  crop = (A / f) @ region_pt + b'
    lin = matrix[:, :2] @ np.diag([1 / fx, 1 / fy])
    offset = matrix[:, :2] @ np.array([x0, y0], dtype=np.float64) + matrix[:, 2]
    local = np.hstack([lin, offset[:, None]])
    return cv2.warpAffine(region, local, size, flags=interpolation, borderMode=border)
