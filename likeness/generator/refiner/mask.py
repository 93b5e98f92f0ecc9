"""Where the refiner may change pixels: a feathered face mask from the render's own
keypoints, and the eye and mouth boxes its training weighs and its bench measures.
numpy and OpenCV only."""

from __future__ import annotations

import cv2
import numpy as np

from likeness.generator import keypoints as kpt


def face_mask(kp: np.ndarray, size: int, grow: float, feather: float) -> np.ndarray:
    """(size, size) float32 in [0, 1]: the convex hull of normalised keypoints (K, 3),
    grown by `grow` and feathered by `feather` (fractions of `size`). Exactly 0 beyond
    the feather, so pixels there are the render's own."""
    px = kpt.to_pixels(np.asarray(kp, np.float32), size)[:, :2]
    hull = cv2.convexHull(np.round(px * 4).astype(np.int32))
    mask = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA, shift=2)
    grow_px = max(1, round(grow * size))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow_px + 1,) * 2))
    radius = max(1, round(feather * size))
    # Erode by the feather radius first, so the blur's tail stays inside the grown hull.
    inner = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    soft = cv2.GaussianBlur(inner.astype(np.float32) / 255.0, (0, 0), radius / 2.0)
    soft[mask == 0] = 0.0
    return np.clip(soft, 0.0, 1.0)


def face_masks(kps: np.ndarray, size: int, grow: float, feather: float) -> np.ndarray:
    """(N, size, size) masks of (N, K, 3) keypoints."""
    return np.stack([face_mask(k, size, grow, feather) for k in kps])


# Each eye's aperture (outer corner, upper lid outer and middle, inner corner, lower lid
# middle and outer) and the inner lips (corners, upper and lower middle), as mesh points.
_ROW = {p: i for i, p in enumerate(kpt.MESH_POINTS)}
EYE_APERTURES = tuple(
    tuple(_ROW[p] for p in ring)
    for ring in ((33, 160, 159, 133, 145, 144), (263, 387, 386, 362, 374, 373))
)
INNER_LIPS = tuple(_ROW[p] for p in (78, 13, 308, 14))


def _arc(a: np.ndarray, mid: np.ndarray, b: np.ndarray, n: int = 8) -> np.ndarray:
    """Points of the parabola from a to b that passes through mid halfway."""
    control = 2 * mid - (a + b) / 2
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * control + t**2 * b


def apertures(kp: np.ndarray, size: int) -> np.ndarray:
    """(2, size, size) float32 in [0, 1]: the driving keypoints' eye apertures and the
    opening between the inner lips (two curves through the inner corners and each lip's
    middle), each pixel the share of it covered. What the render was asked to show
    there: an open mouth the render left shut, an eye it left half open."""
    px = kpt.to_pixels(np.asarray(kp, np.float32), size)[:, :2].astype(np.float64)
    out = np.zeros((2, size, size), np.float32)
    for ring in EYE_APERTURES:
        _fill(out[0], px[list(ring)])
    left, upper, right, lower = (px[r] for r in INNER_LIPS)
    _fill(out[1], np.concatenate([_arc(left, upper, right), _arc(right, lower, left)[1:-1]]))
    return np.minimum(out, 1.0)


SUPERSAMPLE = 4


def _fill(canvas: np.ndarray, points: np.ndarray) -> None:
    """Add the polygon's coverage to `canvas`, drawn 4x finer in its box and averaged:
    shut lips (no area) add next to nothing, where an anti-aliased fill would still
    draw their line a pixel wide (46 px of a 25 px mouth against 139 px for an open one
    in `tests/test_refiner.py`)."""
    h, w = canvas.shape
    x0, y0 = np.maximum(np.floor(points.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(points.max(0)).astype(int) + 2, (w, h))
    if x1 <= x0 or y1 <= y0:
        return
    f = SUPERSAMPLE
    fine = np.zeros(((y1 - y0) * f, (x1 - x0) * f), np.uint8)
    # Pixel centres sit at +0.5: fine sample k covers [k / f, (k + 1) / f).
    pts = np.round((points - (x0, y0)) * f - 0.5).astype(np.int32)[None]
    cv2.fillPoly(fine, pts, 1)
    cover = fine.reshape(y1 - y0, f, x1 - x0, f).mean(axis=(1, 3), dtype=np.float32)
    canvas[y0:y1, x0:x1] += cover


def region_boxes(kp: np.ndarray, size: int, margin: float = 0.08) -> dict[str, tuple[int, ...]]:
    """Pixel boxes (x0, y0, x1, y1) around the right eye, left eye and mouth of
    normalised keypoints (K, 3), as the generator's training loss draws them."""
    right = [r for r in kpt.EYE_ROWS if r % 2 == 0 and r < kpt.N_MESH] + [kpt.IRIS_ROWS[0]]
    left = [r for r in kpt.EYE_ROWS if r % 2 == 1 and r < kpt.N_MESH] + [kpt.IRIS_ROWS[1]]
    boxes = {}
    for name, rows in (("right_eye", right), ("left_eye", left), ("mouth", list(kpt.LIP_ROWS))):
        pts = np.asarray(kp)[rows, :2]
        lo = (pts.min(0) - margin + 1) / 2 * size
        hi = (pts.max(0) + margin + 1) / 2 * size
        x0, y0 = np.clip(np.floor(lo), 0, size - 1).astype(int)
        x1, y1 = np.clip(np.ceil(hi), 1, size).astype(int)
        boxes[name] = (int(x0), int(y0), max(int(x1), int(x0) + 1), max(int(y1), int(y0) + 1))
    return boxes


def region_mask(kp: np.ndarray, size: int) -> np.ndarray:
    """(size, size) float32: 1 inside the eye and mouth boxes."""
    out = np.zeros((size, size), np.float32)
    for x0, y0, x1, y1 in region_boxes(kp, size).values():
        out[y0:y1, x0:x1] = 1.0
    return out
