"""The generator's keypoints: which face points drive the warp, in which coordinates.

Keypoints come from the face mesh (or from the learned motion extractor, trained to
predict the same points). Coordinates are normalised to the aligned crop: x and y in
[-1, 1] as `grid_sample` reads them (align_corners=False), z the mesh depth in the same
units (positive away from the camera). Pure numpy.
"""

from __future__ import annotations

import numpy as np

from likeness.faces.geometry import apply_affine_3d
from likeness.faces.regions import KEY_LANDMARKS, positions

# Mesh points that move the face, in mirror pairs (subject's right, left) or alone on
# the midline, so a horizontal flip is a permutation of rows.
_PAIRS = (
    # face outline
    (297, 67),
    (284, 54),
    (389, 162),
    (454, 234),
    (361, 132),
    (397, 172),
    (379, 150),
    (400, 176),
    # brows
    (70, 300),
    (105, 334),
    (107, 336),
    # eyes: outer, inner corners, lids
    (33, 263),
    (133, 362),
    (159, 386),
    (145, 374),
    (160, 387),
    (144, 373),
    # nose wings
    (98, 327),
    # mouth: corners, outer and inner lips
    (61, 291),
    (40, 270),
    (91, 321),
    (78, 308),
)
_MIDLINE = (10, 152, 1, 168, 2, 0, 17, 13, 14)

MESH_POINTS: tuple[int, ...] = tuple([p for pair in _PAIRS for p in pair] + list(_MIDLINE))
N_MESH = len(MESH_POINTS)
# Two iris centres follow the mesh points: subject's right eye, then left.
N_KEYPOINTS = N_MESH + 2
IRIS_ROWS = (N_MESH, N_MESH + 1)


def _rows(points: tuple[int, ...]) -> tuple[int, ...]:
    where = {p: i for i, p in enumerate(MESH_POINTS)}
    return tuple(where[p] for p in points)


# Points that move with the skull, not with expression: used to fit head motion.
RIGID_ROWS = _rows((33, 263, 133, 362, 1, 168, 2, 98, 327, 10, 297, 67, 284, 54, 389, 162))
EYE_ROWS = (*_rows((159, 386, 145, 374, 160, 387, 144, 373, 33, 263, 133, 362)), *IRIS_ROWS)
BROW_ROWS = _rows((70, 300, 105, 334, 107, 336))
LIP_ROWS = _rows((61, 291, 40, 270, 91, 321, 78, 308, 0, 17, 13, 14))
JAW_ROWS = _rows((152, 379, 150, 400, 176, 397, 172))
# Rows used for the head axes (eye outer corners, forehead, chin).
AXIS_ROWS = _rows((33, 263, 10, 152))
# Eyelids (upper, lower) for opening ratios, and the inner lips.
LID_ROWS = (_rows((159, 145)), _rows((386, 374)))
MOUTH_ROWS = _rows((13, 14))
# Every eyelid point (upper and lower, both eyes): they move in blinks, fast.
EYELID_ROWS = _rows((159, 386, 145, 374, 160, 387, 144, 373))
MOUTH_CORNER_ROWS = _rows((61, 291))


def mirror_permutation() -> np.ndarray:
    """Row order of the keypoints of a horizontally flipped face."""
    perm = np.arange(N_KEYPOINTS)
    for i in range(len(_PAIRS)):
        perm[2 * i], perm[2 * i + 1] = 2 * i + 1, 2 * i
    perm[IRIS_ROWS[0]], perm[IRIS_ROWS[1]] = IRIS_ROWS[1], IRIS_ROWS[0]
    return perm


_PACK_ROWS = positions(MESH_POINTS, KEY_LANDMARKS)


def from_pack_arrays(landmarks: np.ndarray, irises: np.ndarray, size: int) -> np.ndarray:
    """(..., L, 3) pack landmarks + (..., 2, 3) iris centres in crop pixels ->
    (..., N_KEYPOINTS, 3) normalised keypoints."""
    pts = np.concatenate([landmarks[..., _PACK_ROWS, :], irises[..., :2, :3]], axis=-2)
    return normalise(pts, size)


def from_face(
    landmarks: np.ndarray, irises: np.ndarray | None, matrix: np.ndarray, size: int
) -> np.ndarray:
    """A face's mesh (468, 3) and irises (2, 5, 3) in frame pixels -> normalised keypoints
    in the crop that `matrix` (2x3, frame -> crop pixels) cuts."""
    mesh = landmarks[list(MESH_POINTS), :3]
    if irises is not None:
        iris = irises[:, 0, :3]
    else:
        # No iris model: the eye's lid and corner mean stands in for its centre.
        iris = np.stack(
            [
                landmarks[[33, 133, 159, 145], :3].mean(0),
                landmarks[[263, 362, 386, 374], :3].mean(0),
            ]
        )
    pts = np.concatenate([mesh, iris]).astype(np.float64)
    return normalise(apply_affine_3d(matrix, pts), size)


def normalise(points_px: np.ndarray, size: int) -> np.ndarray:
    out = np.asarray(points_px, np.float32).copy()
    out[..., :2] = (out[..., :2] + 0.5) / size * 2 - 1
    out[..., 2] = out[..., 2] / size * 2
    return out


def to_pixels(points: np.ndarray, size: int) -> np.ndarray:
    out = np.asarray(points, np.float32).copy()
    out[..., :2] = (out[..., :2] + 1) / 2 * size - 0.5
    out[..., 2] = out[..., 2] / 2 * size
    return out


def eye_openness(kp: np.ndarray) -> np.ndarray:
    """(..., 2): lid gap over eye width for the subject's right and left eye."""
    corners = ((_rows((33,))[0], _rows((133,))[0]), (_rows((263,))[0], _rows((362,))[0]))
    out = []
    for (upper, lower), (a, b) in zip(LID_ROWS, corners, strict=True):
        gap = np.linalg.norm(kp[..., upper, :2] - kp[..., lower, :2], axis=-1)
        width = np.linalg.norm(kp[..., a, :2] - kp[..., b, :2], axis=-1) + 1e-6
        out.append(gap / width)
    return np.stack(out, axis=-1)


def mouth_shape(kp: np.ndarray) -> np.ndarray:
    """(..., 2): inner-lip gap and mouth width, both over the eye-corner distance."""
    ref = np.linalg.norm(kp[..., AXIS_ROWS[1], :2] - kp[..., AXIS_ROWS[0], :2], axis=-1) + 1e-6
    gap = np.linalg.norm(kp[..., MOUTH_ROWS[0], :2] - kp[..., MOUTH_ROWS[1], :2], axis=-1)
    a, b = MOUTH_CORNER_ROWS
    width = np.linalg.norm(kp[..., a, :2] - kp[..., b, :2], axis=-1)
    return np.stack([gap / ref, width / ref], axis=-1)
