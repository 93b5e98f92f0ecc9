"""Driving video -> keypoints per frame, in the crop of its first frame with a face.

The face tracker follows the driver; the first frame is measured until its mesh
settles; frames without a face hold the last motion; a One Euro filter smooths the
keypoints (mesh or learned alike).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from likeness.errors import NoFaceError
from likeness.faces import (
    AlignConfig,
    AlignedCrop,
    Face,
    FaceStack,
    FaceTracker,
    TrackerConfig,
    align_face,
)
from likeness.faces.geometry import affine_scale, invert_affine
from likeness.faces.smooth import OneEuroFilter
from likeness.generator import keypoints as kpt

if TYPE_CHECKING:
    from likeness.generator.model import GeneratorModel
    from likeness.media import Frame
    from likeness.pipelines.animate import AnimateConfig

SETTLE_ROUNDS, SETTLE_PIXELS = 8, 0.25  # see DrivingKeypoints._settle


class HoldMotion:
    """One keypoint set per frame whether or not it had a face: a faceless frame holds
    the last good keypoints, and frames before the first face wait for it and take
    its keypoints (the output keeps one frame per driving frame)."""

    def __init__(self) -> None:
        self.last: np.ndarray | None = None
        self.pending = 0  # frames before the first face
        self.missing = 0
        self.seen = 0

    def __call__(self, measured: list[np.ndarray | None]) -> list[np.ndarray]:
        """Keypoints or None per frame -> the keypoints ready so far, in order."""
        out: list[np.ndarray] = []
        for kp in measured:
            self.seen += 1
            if kp is None:
                self.missing += 1
                if self.last is None:
                    self.pending += 1
                    continue
                kp = self.last
            elif self.last is None:
                out += [kp] * self.pending
                self.pending = 0
            self.last = kp
            out.append(kp)
        return out


class DrivingKeypoints:
    """Driving frames -> keypoints (K, 3), one per frame, in the crop of the first frame
    that has a face (so head translation and roll relative to it carry over), held
    through faceless frames (`HoldMotion`) and smoothed over time. `feed()` returns
    what is ready, in order; `finish()` raises NoFaceError when no frame had a face.
    """

    def __init__(
        self, stack: FaceStack, model: GeneratorModel, config: AnimateConfig, fps: float
    ) -> None:

        # Smoothing happens once, on the keypoints (below), for mesh and learned alike.
        self.tracker = FaceTracker(stack, TrackerConfig(smooth=False))
        self.model = model
        self.learned = config.keypoints == "learned"
        self.size = model.config.output_size
        # Driving crops keep the training framing whatever --crop-scale says about the
        # source: the motion extractor saw only that framing.
        self.align = AlignConfig(size=self.size)
        self.filter = OneEuroFilter() if config.smooth else None
        self.fps = fps
        self.hold = HoldMotion()
        self.matrix0: np.ndarray | None = None
        self.emitted = 0
        self._settled = False
        self._scale: float | None = None  # interocular distance in crop units

    @property
    def missing(self) -> int:
        return self.hold.missing

    @property
    def seen(self) -> int:
        return self.hold.seen

    def feed(self, frames: list[Frame]) -> list[np.ndarray]:
        faces = [self._face(f) for f in frames]
        ready = self.hold(self._measure(frames, faces))
        return [self._smooth(kp) for kp in ready]

    def finish(self, name: str) -> None:
        if self.hold.last is None:
            raise NoFaceError(f"no face found in any of the {self.seen} frames of {name}")

    def _face(self, frame: Frame) -> Face | None:
        faces = self.tracker.update(frame.image, frame.time)
        if faces and not self._settled:
            faces = self._settle(frame, faces)
            self._settled = True
        return faces[0] if faces else None

    def _settle(self, frame: Frame, faces: list[Face]) -> list[Face]:
        """Measure the reference frame as every later frame is measured. The tracker
        places its first mesh from the detector's box and later ones from the previous
        mesh, and the mesh depends on its box: on a still video frame 1 lands up to 5 px
        (256 px crop) from frame 0, which relative motion would play as a movement. So
        the first frame is re-run until its mesh stops moving."""
        return settle(self.tracker, frame.image, frame.time, faces)

    def _measure(self, frames: list[Frame], faces: list[Face | None]) -> list[np.ndarray | None]:

        found = [i for i, face in enumerate(faces) if face is not None]
        kps: list[np.ndarray | None] = [None] * len(frames)
        if not found:
            return kps
        if self.matrix0 is None:
            first = found[0]
            self.matrix0 = align_face(frames[first].image, faces[first], self.align).matrix
        if not self.learned:
            for i in found:
                face = faces[i]
                kps[i] = kpt.from_face(face.landmarks, face.irises, self.matrix0, self.size)
            return kps
        crops = [align_face(frames[i].image, faces[i], self.align) for i in found]
        learned = self.model.extract_motion(np.stack([c.image for c in crops]))
        for i, crop, kp in zip(found, crops, learned, strict=True):
            kps[i] = to_crop0(kp, crop, self.matrix0, self.size)
        return kps

    def _smooth(self, kp: np.ndarray) -> np.ndarray:
        t = self.emitted / self.fps
        self.emitted += 1
        if self.filter is None:
            return kp
        if self._scale is None:
            # The filter's speed is in face sizes per second, as the face tracker's.
            self._scale = _interocular(kp)
        return self.filter(kp, t, scale=self._scale).astype(np.float32)


def settle(
    tracker: FaceTracker,
    rgb: np.ndarray,
    t: float,
    faces: list[Face],
    rounds: int = SETTLE_ROUNDS,
    pixels: float = SETTLE_PIXELS,
) -> list[Face]:
    """Re-run the tracker on one frame until its mesh moves less than `pixels` (at most
    `rounds` times); see DrivingKeypoints._settle."""
    for _ in range(rounds):
        before = faces[0].landmarks
        again = tracker.update(rgb, t)
        if not again:
            break
        faces = again
        if np.abs(faces[0].landmarks[:, :2] - before[:, :2]).max() < pixels:
            break
    return faces


def to_crop0(kp: np.ndarray, crop: AlignedCrop, matrix0: np.ndarray, size: int) -> np.ndarray:
    """Keypoints normalised to `crop` -> normalised to the crop that `matrix0` cuts."""
    return keypoints_between(kp, crop.matrix, matrix0, size, inverse=crop.inverse)


def keypoints_between(
    kp: np.ndarray,
    matrix: np.ndarray,
    matrix0: np.ndarray,
    size: int,
    inverse: np.ndarray | None = None,
) -> np.ndarray:
    """Keypoints normalised to the crop `matrix` cuts (2x3, frame -> crop pixels) ->
    normalised to the crop `matrix0` cuts: crop pixels -> frame -> crop 0; depth by the
    ratio of the two crops' scales."""
    inverse = invert_affine(matrix) if inverse is None else inverse
    px = kpt.to_pixels(kp, size).astype(np.float64)
    frame = px[:, :2] @ inverse[:, :2].T + inverse[:, 2]
    xy0 = frame @ matrix0[:, :2].T + matrix0[:, 2]
    ratio = affine_scale(matrix0) / affine_scale(matrix)
    return kpt.normalise(np.concatenate([xy0, px[:, 2:3] * ratio], axis=1), size)


def _interocular(kp: np.ndarray) -> float:
    right, left = kpt.IRIS_ROWS
    return max(float(np.linalg.norm(kp[left, :2] - kp[right, :2])), 1e-3)
