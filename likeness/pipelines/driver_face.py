"""Which face of a driving video drives: the `index`-th largest when a shot starts
(`--driver-face N`, 0 the largest), then the same face, followed by position, until
the shot ends. A face that jumps (its centre moves more than half its size, or its
size changes by half, in one frame) is another face, or the same one after a cut the
pixels did not show (a reverse shot in the same set): the driver is picked afresh and
the motion re-anchored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from likeness.faces import Face

# A head turning fast at 25 fps moves its box centre about 0.1 of its size a frame
# and changes its size by a few percent; a cut to another face moves it by more.
JUMP_CENTRE = 0.5  # of the face's size (the square root of its box area)
JUMP_SIZE = 1.5  # ratio of sizes, either way


@dataclass(frozen=True)
class Pick:
    face: Face | None
    anchor: bool  # the motion starts a new reference on this face


def _centre_size(box: np.ndarray) -> tuple[np.ndarray, float]:
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    size = float(np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)))
    return centre, size


def same_face(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether box `after` is plausibly box `before` one frame later."""
    c0, s0 = _centre_size(before)
    c1, s1 = _centre_size(after)
    ratio = max(s0, s1) / max(min(s0, s1), 1e-6)
    return float(np.linalg.norm(c1 - c0)) <= JUMP_CENTRE * s0 and ratio <= JUMP_SIZE


class DriverPicker:
    """`pick(faces, new_shot)` -> the driving face of this frame and whether the motion
    re-anchors on it. The last box is kept through faceless frames, so a face that
    comes back where it was is the same driver (no re-anchor)."""

    def __init__(self, index: int = 0) -> None:
        self.index = index
        self.box: np.ndarray | None = None
        self.jumps = 0  # re-anchors caused by a jump, not by a pixel cut
        self._fresh = True  # the next face found starts a shot

    def __call__(self, faces: list[Face], new_shot: bool = False) -> Pick:
        if new_shot:
            self._fresh = True
        if not faces:
            return Pick(None, False)
        if not self._fresh and self.box is not None:
            near = [f for f in faces if same_face(self.box, f.box)]
            if near:
                face = min(near, key=lambda f: _distance(self.box, f.box))
                self.box = face.box
                return Pick(face, False)
            self.jumps += 1
        ranked = sorted(faces, key=lambda f: -f.area)
        if self.index >= len(ranked):
            return Pick(None, False)
        face = ranked[self.index]
        self.box, self._fresh = face.box, False
        return Pick(face, True)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(_centre_size(a)[0] - _centre_size(b)[0]))
