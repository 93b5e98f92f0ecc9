"""Named groups of MediaPipe face-mesh indices, and the subset that packs keep.

A pack stores `KEY_LANDMARKS` per frame instead of all 468 points: enough for the
generator's keypoints, eye and mouth regions, the face outline (self-blended masks)
and head pose, at under a third of the size.
"""

from __future__ import annotations

import numpy as np

from likeness.faces.types import (
    CHIN,
    FACE_OVAL,
    FOREHEAD,
    LEFT_EYE_RING,
    NOSE_TIP,
    RIGHT_EYE_RING,
)

LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375,
              291, 409, 270, 269, 267, 0, 37, 39, 40, 185)  # fmt: skip
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324,
              308, 415, 310, 311, 312, 13, 82, 81, 80, 191)  # fmt: skip
RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
NOSE = (NOSE_TIP, 2, 4, 5, 6, 168, 197, 195, 98, 327, 129, 358)
# Eyelid midpoints (upper, lower) for eye-opening ratios.
RIGHT_EYE_LIDS = (159, 145)
LEFT_EYE_LIDS = (386, 374)
# Inner lip midpoints (upper, lower) for mouth-opening ratios.
MOUTH_LIDS = (13, 14)


def _unique(*groups: tuple[int, ...]) -> tuple[int, ...]:
    seen: dict[int, None] = {}
    for group in groups:
        for idx in group:
            seen.setdefault(idx, None)
    return tuple(seen)


KEY_LANDMARKS: tuple[int, ...] = _unique(
    FACE_OVAL, RIGHT_EYE_RING, LEFT_EYE_RING, RIGHT_BROW, LEFT_BROW,
    NOSE, LIPS_OUTER, LIPS_INNER, (FOREHEAD, CHIN),
)  # fmt: skip


def positions(indices: tuple[int, ...], within: tuple[int, ...] = KEY_LANDMARKS) -> list[int]:
    """Rows of `indices` inside an array that holds the mesh points `within`, in order."""
    where = {idx: row for row, idx in enumerate(within)}
    missing = [i for i in indices if i not in where]
    if missing:
        raise KeyError(f"mesh points {missing} are not in the landmark subset")
    return [where[i] for i in indices]


def mesh_from_key_landmarks(
    key: np.ndarray, indices: tuple[int, ...] = KEY_LANDMARKS
) -> np.ndarray:
    """A (468, 3) face mesh from a pack's landmark subset: the kept points in their
    mesh rows, every other row at the kept points' mean (which leaves their extent and
    centre, all that `self_blend` reads besides the kept rows, unchanged)."""
    mesh = np.empty((468, 3), np.float32)
    mesh[:] = np.asarray(key, np.float32).mean(0)
    mesh[list(indices)] = key
    return mesh
