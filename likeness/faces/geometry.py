"""Rotated rectangles and 2x3 affine maps between frames and model crops (pure math)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RotatedRect:
    """A square-ish region in pixels: centre, size, rotation (radians, counter-clockwise)."""

    cx: float
    cy: float
    width: float
    height: float
    angle: float = 0.0

    def scaled(self, sx: float, sy: float | None = None) -> RotatedRect:
        sy = sx if sy is None else sy
        return RotatedRect(self.cx, self.cy, self.width * sx, self.height * sy, self.angle)

    def squared(self) -> RotatedRect:
        side = max(self.width, self.height)
        return RotatedRect(self.cx, self.cy, side, side, self.angle)


def normalize_angle(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def angle_between(p0: np.ndarray, p1: np.ndarray, target: float = 0.0) -> float:
    """Rotation that brings the p0->p1 direction to `target` (image y points down)."""
    return normalize_angle(target - math.atan2(-(p1[1] - p0[1]), p1[0] - p0[0]))


def rect_to_crop_matrix(rect: RotatedRect, out_w: int, out_h: int) -> np.ndarray:
    """2x3 matrix taking frame pixels to crop pixels (crop upright, size out_w x out_h)."""
    cos, sin = math.cos(rect.angle), math.sin(rect.angle)
    sx, sy = out_w / rect.width, out_h / rect.height
    # `angle` is the face's roll in image coordinates (y down); rotating by -angle
    # about the centre makes the face upright in the crop.
    rot = np.array([[cos, sin], [-sin, cos]])
    lin = np.diag([sx, sy]) @ rot
    centre = np.array([rect.cx, rect.cy])
    offset = np.array([out_w / 2, out_h / 2]) - lin @ centre
    return np.hstack([lin, offset[:, None]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    lin = matrix[:, :2]
    inv = np.linalg.inv(lin)
    return np.hstack([inv, (-inv @ matrix[:, 2])[:, None]])


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """2x3 affine maps: outer(inner(p))."""
    return np.hstack(
        [outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]]
    )


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points (extra columns are kept unchanged)."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[:, :2] = points[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    return out


def affine_scale(matrix: np.ndarray) -> float:
    """Isotropic scale of a similarity-like affine map."""
    return float(math.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def apply_affine_3d(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 3) points (float64 out): x, y through the 2x3 map, depth times the map's
    scale, so that z stays in the same pixel units as x and y."""
    out = apply_affine(matrix, points)
    out[:, 2] *= affine_scale(matrix)
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box `a` (4,) against boxes `b` (N, 4), all (x0, y0, x1, y1)."""
    x0 = np.maximum(a[0], b[:, 0])
    y0 = np.maximum(a[1], b[:, 1])
    x1 = np.minimum(a[2], b[:, 2])
    y1 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-12)
