"""Aligned face crops: a similarity transform from eyes and mouth (FFHQ-style framing).

The crop keeps its forward and inverse 2x3 matrices, so anything made in crop space
(a generated face, a mask) can be put back exactly where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from likeness.faces.geometry import invert_affine
from likeness.faces.types import Face
from likeness.faces.warp import warp_to_crop


@dataclass(frozen=True)
class AlignConfig:
    size: int = 256
    # 1.0 frames the whole head with some hair and neck, as FFHQ does; LivePortrait's
    # tighter crops are about 0.8.
    scale: float = 1.0
    # Positive moves the crop centre down towards the mouth (fraction of eye-to-mouth).
    shift: float = 0.1


@dataclass(frozen=True)
class AlignParams:
    """A similarity transform as the few numbers worth smoothing over time."""

    cx: float
    cy: float
    half: float  # half the crop side, in frame pixels
    angle: float  # radians; rotation of the crop's x axis in the frame


@dataclass
class AlignedCrop:
    image: np.ndarray  # size x size x 3 RGB
    matrix: np.ndarray  # 2x3, frame -> crop
    inverse: np.ndarray  # 2x3, crop -> frame
    params: AlignParams
    frame_size: tuple[int, int]  # (width, height) of the frame it came from


def align_params(eyes: np.ndarray, mouth: np.ndarray, config: AlignConfig) -> AlignParams:
    """eyes (2, 2): the subject's right eye then left eye; mouth (2,): mouth centre."""
    eye_mid = eyes.mean(0)
    eye_to_eye = eyes[1] - eyes[0]
    eye_to_mouth = mouth - eye_mid
    # The crop's x axis: the eye line averaged with the perpendicular of the eye-mouth
    # line, which keeps roll stable when one of them is noisy.
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= np.linalg.norm(x) + 1e-12
    half = max(np.linalg.norm(eye_to_eye) * 2.0, np.linalg.norm(eye_to_mouth) * 1.8)
    centre = eye_mid + eye_to_mouth * config.shift
    return AlignParams(
        float(centre[0]),
        float(centre[1]),
        float(half * config.scale),
        float(np.arctan2(x[1], x[0])),
    )


def params_to_matrix(p: AlignParams, size: int) -> np.ndarray:
    s = size / (2 * p.half)
    cos, sin = np.cos(p.angle), np.sin(p.angle)
    lin = s * np.array([[cos, sin], [-sin, cos]])
    offset = np.array([size / 2, size / 2]) - lin @ np.array([p.cx, p.cy])
    return np.hstack([lin, offset[:, None]])


def warp_crop(rgb: np.ndarray, params: AlignParams, size: int) -> AlignedCrop:
    matrix = params_to_matrix(params, size)
    image = warp_to_crop(rgb, matrix, (size, size), cv2.INTER_CUBIC, cv2.BORDER_REFLECT_101)
    h, w = rgb.shape[:2]
    return AlignedCrop(image, matrix, invert_affine(matrix), params, (w, h))


def align_face(rgb: np.ndarray, face: Face, config: AlignConfig | None = None) -> AlignedCrop:
    config = config or AlignConfig()
    params = align_params(face.eye_centres(), face.mouth_centre(), config)
    return warp_crop(rgb, params, config.size)
