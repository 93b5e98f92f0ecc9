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
