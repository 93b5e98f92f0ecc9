"""Face mesh (468 points) and iris landmarks, run on rotated crops cut from the frame.

Each model sees an upright crop made by an affine warp from a rotated rectangle; its
outputs are mapped back through the inverse warp, so every point is in frame pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from likeness.faces.detect import sigmoid
from likeness.faces.geometry import (
    RotatedRect,
    angle_between,
    apply_affine_3d,
    invert_affine,
    rect_to_crop_matrix,
)
from likeness.faces.litert import TFLiteModel
from likeness.faces.types import (
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    LEFT_EYE_RING,
    NOSE_TIP,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
    RIGHT_EYE_RING,
    Detection,
)
from likeness.faces.warp import warp_to_crop

MESH_ROI_SCALE = 1.5
IRIS_ROI_SCALE = 2.3
# The mesh rectangle is rotated by the line through these points (the eyes' outer corners).
TRACK_ROTATION_POINTS = (RIGHT_EYE_OUTER, LEFT_EYE_OUTER)


def crop(
    rgb: np.ndarray, rect: RotatedRect, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Upright crop of `rect` resized to `size`; returns it and the frame->crop matrix."""
    matrix = rect_to_crop_matrix(rect, *size)
    return warp_to_crop(rgb, matrix, size), matrix


def roi_from_detection(det: Detection) -> RotatedRect:
    box = det.box
    angle = angle_between(det.keypoints[0], det.keypoints[1])
    rect = RotatedRect((box[0] + box[2]) / 2, (box[1] + box[3]) / 2,
                       box[2] - box[0], box[3] - box[1], angle)  # fmt: skip
    return rect.squared().scaled(MESH_ROI_SCALE)


def roi_from_landmarks(landmarks: np.ndarray) -> RotatedRect:
    """The next frame's mesh rectangle from this frame's mesh (MediaPipe's tracking)."""
    a, b = TRACK_ROTATION_POINTS
    angle = angle_between(landmarks[a, :2], landmarks[b, :2])
    # Measure the extent in the rotated frame so a rolled head gets a tight square.
    cos, sin = np.cos(angle), np.sin(angle)
    centre = landmarks[:, :2].mean(0)
    local = (landmarks[:, :2] - centre) @ np.array([[cos, -sin], [sin, cos]])
    lo, hi = local.min(0), local.max(0)
    mid = (lo + hi) / 2
    c = centre + mid @ np.array([[cos, sin], [-sin, cos]])
    rect = RotatedRect(float(c[0]), float(c[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]), angle)
    return rect.squared().scaled(MESH_ROI_SCALE)


def detection_from_landmarks(landmarks: np.ndarray, score: float) -> Detection:
    """A BlazeFace-shaped detection for a tracked face, so boxes move with the mesh."""
    lm = landmarks[:, :2]
    keypoints = np.stack([
        lm[list(RIGHT_EYE_RING)].mean(0), lm[list(LEFT_EYE_RING)].mean(0), lm[NOSE_TIP],
        lm[[13, 14]].mean(0), lm[234], lm[454],
    ])  # fmt: skip
    return Detection(box=np.concatenate([lm.min(0), lm.max(0)]), score=score, keypoints=keypoints)


class FaceMeshModel:
    """468-point mesh. Returns (landmarks (468, 3) in frame pixels, presence score)."""

    def __init__(self, model_file: Path) -> None:
        self.model = TFLiteModel(model_file)

    def __call__(self, rgb: np.ndarray, rect: RotatedRect) -> tuple[np.ndarray, float]:
        size = self.model.input_size
        patch, matrix = crop(rgb, rect, size)
        raw, flag = self.model(patch.astype(np.float32) / 255.0)
        points = raw.reshape(-1, 3).astype(np.float64)
        return apply_affine_3d(invert_affine(matrix), points), float(sigmoid(flag.reshape(-1))[0])


class IrisModel:
    """71 eye-contour points and 5 iris points per eye, from the mesh's eye corners."""

    def __init__(self, model_file: Path) -> None:
        self.model = TFLiteModel(model_file)

    def _eye(self, rgb: np.ndarray, p0: np.ndarray, p1: np.ndarray, flip: bool):
        centre = (p0 + p1) / 2
        width = float(np.linalg.norm(p1 - p0))
        rect = RotatedRect(float(centre[0]), float(centre[1]), width, width,
                           angle_between(p0, p1)).scaled(IRIS_ROI_SCALE)  # fmt: skip
        size = self.model.input_size
        patch, matrix = crop(rgb, rect, size)
        if flip:  # the model knows one eye; the other is shown to it mirrored
            patch = patch[:, ::-1]
        contour, iris = self.model(patch.astype(np.float32) / 255.0)
        pts = np.concatenate([contour.reshape(-1, 3), iris.reshape(-1, 3)]).astype(np.float64)
        if flip:
            pts[:, 0] = size[0] - pts[:, 0]
        pts = apply_affine_3d(invert_affine(matrix), pts)
        return pts[:71], pts[71:]

    def __call__(self, rgb: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lm = landmarks[:, :2]
        right = self._eye(rgb, lm[RIGHT_EYE_OUTER], lm[RIGHT_EYE_INNER], flip=False)
        left = self._eye(rgb, lm[LEFT_EYE_INNER], lm[LEFT_EYE_OUTER], flip=True)
        return np.stack([right[0], left[0]]), np.stack([right[1], left[1]])
