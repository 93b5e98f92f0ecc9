"""What the face stack returns: plain dataclasses of numpy arrays in frame pixels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Mesh indices (MediaPipe FaceMesh topology) used across likeness.
RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 33, 133  # subject's right eye: left in the image
LEFT_EYE_INNER, LEFT_EYE_OUTER = 362, 263
MOUTH_RIGHT, MOUTH_LEFT = 61, 291
FOREHEAD, CHIN, NOSE_TIP = 10, 152, 1
RIGHT_EYE_RING = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE_RING = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
    377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip


@dataclass
class Detection:
    """BlazeFace output: box (x0, y0, x1, y1), score, six keypoints (x, y).

    Keypoints: 0 right eye, 1 left eye (the subject's), 2 nose tip, 3 mouth centre,
    4 right ear tragion, 5 left ear tragion.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray

    @property
    def area(self) -> float:
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


@dataclass
class HeadPose:
    """Degrees. yaw > 0: the face turns towards the image's right (the subject's left);
    pitch > 0: looks up; roll > 0: the head tilts clockwise in the image."""

    yaw: float
    pitch: float
    roll: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.yaw, self.pitch, self.roll)


@dataclass
class Face:
    """One face in one frame, all coordinates in frame pixels."""

    detection: Detection
    landmarks: np.ndarray | None = None  # (468, 3): x, y, relative depth (pixels)
    mesh_score: float = 0.0
    eye_contours: np.ndarray | None = None  # (2, 71, 3): subject's right eye, left eye
    irises: np.ndarray | None = None  # (2, 5, 3): centre then four rim points
    pose: HeadPose | None = None
    extras: dict = field(default_factory=dict)

    @property
    def box(self) -> np.ndarray:
        if self.landmarks is not None:
            xy = self.landmarks[:, :2]
            return np.concatenate([xy.min(axis=0), xy.max(axis=0)])
        return self.detection.box

    @property
    def area(self) -> float:
        b = self.box
        return float((b[2] - b[0]) * (b[3] - b[1]))

    def eye_centres(self) -> np.ndarray:
        """(2, 2): the subject's right eye then left eye (left then right in the image)."""
        if self.irises is not None:
            return self.irises[:, 0, :2].copy()
        if self.landmarks is not None:
            lm = self.landmarks[:, :2]
            return np.stack([lm[list(RIGHT_EYE_RING)].mean(0), lm[list(LEFT_EYE_RING)].mean(0)])
        return self.detection.keypoints[:2].copy()

    def mouth_centre(self) -> np.ndarray:
        if self.landmarks is not None:
            return self.landmarks[[MOUTH_RIGHT, MOUTH_LEFT], :2].mean(0)
        return self.detection.keypoints[3].copy()

    def interocular(self) -> float:
        eyes = self.eye_centres()
        return float(np.linalg.norm(eyes[1] - eyes[0]))
