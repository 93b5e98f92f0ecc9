"""Affine warps from a frame into a small crop without aliasing, at the cost of the crop.

Shrinking a 4000 px photo's face to 192 px in one warp aliases badly; blurring the whole
frame first costs hundreds of milliseconds. So: cut the region the crop covers, reduce it
with area averaging to about the crop's resolution, then warp that.

Below half scale the reduce is by a whole factor k (each k x k block becomes one pixel):
a fractional one runs OpenCV's generic weight-table path, 7 ms per crop against 2 ms
(median over the 80 mesh, iris and face crops of 20 frames of bench detector's 720p
minute, scales 0.35-0.44, loaded 2-core CPU); a 720p scan makes four per face a frame.
The reduced region is placed by its pixels' centres (it was by their corners before: a
0.4 frame pixel shift at scale 0.4). Against a supersampled warp (4x4 cubic samples per
pixel, area-averaged) those 80 crops are 0.39 grey levels off on average, 0.94 before.
A whole factor is less exact than a fractional reduce placed by centres (sharp noise
blurred by 1 px, scale 0.45: 2.45 grey levels off against 1.23; a plain warp 3.84).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from likeness.faces.geometry import affine_scale, apply_affine, invert_affine

# Below this crop/frame scale, pre-reduce (fractionally to 1/0.7 of the crop's scale).
PRE_REDUCE_BELOW = 0.7
# Whole factor k = round(WHOLE_TARGET / scale): the warp after it is at 0.55-0.95 of the
# reduced region. The best k against a supersampled warp (sharp noise, blurred by sigma
# 0.7-1.5 px, 128 px crops) was 2 at scales 0.45 and 0.36, 2-3 at 0.3, 3 at 0.24, 4 at
# 0.18; from 0.5 to 0.7 neither k = 1 nor 2 beat the fractional reduce, kept there.
WHOLE_TARGET = 0.75


def reduce_factor(scale: float) -> int:
    """The whole factor a warp at `scale` reduces its region by first; 1: none, or a
    fractional one (scale 0.5 to 0.7)."""
    if scale >= PRE_REDUCE_BELOW:
        return 1
    return max(1, math.floor(WHOLE_TARGET / scale + 0.5))


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
    k = reduce_factor(scale)
    w, h = size
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float64)
    frame_pts = apply_affine(invert_affine(matrix), corners)
    fh, fw = rgb.shape[:2]
    margin = 2 * k + 1  # two reduced pixels beyond the crop, for a cubic warp's support
    x0 = max(0, math.floor(frame_pts[:, 0].min()) - margin)
    y0 = max(0, math.floor(frame_pts[:, 1].min()) - margin)
    x1 = min(fw, math.ceil(frame_pts[:, 0].max()) + margin)
    y1 = min(fh, math.ceil(frame_pts[:, 1].max()) + margin)
    if k > 1:  # whole k x k blocks
        rw, rh = (x1 - x0) // k, (y1 - y0) // k
        x1, y1 = x0 + rw * k, y0 + rh * k
    else:
        factor = scale / PRE_REDUCE_BELOW
        rw, rh = round((x1 - x0) * factor), round((y1 - y0) * factor)
    if rw < 2 or rh < 2:  # the crop lies (almost) outside the frame
        return cv2.warpAffine(rgb, matrix, size, flags=interpolation, borderMode=border)
    region = cv2.resize(rgb[y0:y1, x0:x1], (rw, rh), interpolation=cv2.INTER_AREA)
    # Region pixel r averages the frame from x0 + r / f to x0 + (r + 1) / f (f = rw / width),
    # so its centre is frame = (r + 0.5) / f - 0.5 + x0:  crop = A @ frame + b
    # = (A / f) @ r + A @ (x0 + 0.5 / f - 0.5) + b.
    f = np.array([rw / (x1 - x0), rh / (y1 - y0)])
    lin = matrix[:, :2] / f
    offset = matrix[:, :2] @ (np.array([x0, y0]) + 0.5 / f - 0.5) + matrix[:, 2]
    return cv2.warpAffine(
        region, np.hstack([lin, offset[:, None]]), size, flags=interpolation, borderMode=border
    )
