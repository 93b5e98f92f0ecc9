"""Driving video -> keypoints per frame, one continuous motion across shots.

Each driving frame goes through the shot-cut detector (`shots.ShotCuts`), the face
tracker (reset at a cut, so the new shot's faces are detected afresh) and the driver
picker (`driver_face.DriverPicker`: the largest face, or `--driver-face N`, followed
by position; faces down to about 40 px through `small_faces.TiledStack`). A shot's
first frame with the driver is its reference: measured until
its mesh settles, its crop is the one the shot's keypoints are expressed in (so head
translation and roll relative to it carry over), and the shot's motion relative to
it is mapped onto the first shot's reference (`motion.MotionTransfer`), so the
keypoints this module returns read as one driver whose first frame is the whole
video's reference; the animate pipeline's transfer works on them unchanged.
`continuity.EaseToNeutral` then removes every jump: a new shot starts where the last
one ended and eases into its own motion; frames without a face ease back to neutral.
A One Euro filter (restarted with each shot) smooths the keypoints, the lips', jaw's
and lids' expression with a faster one (`kp_smooth.KeypointSmoother`).
"""

from __future__ import annotations

from dataclasses import dataclass
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
from likeness.generator import keypoints as kpt
from likeness.generator.gaze import carry_irises
from likeness.generator.kp_smooth import KeypointSmoother
from likeness.generator.motion import MotionTransfer, TransferConfig
from likeness.pipelines.continuity import EASE_SECONDS, EaseToNeutral
from likeness.pipelines.driver_face import DriverPicker, same_face
from likeness.pipelines.shots import CutConfig, ShotCuts
from likeness.pipelines.small_faces import TiledStack

if TYPE_CHECKING:
    from likeness.generator.model import GeneratorModel
    from likeness.media import Frame
    from likeness.pipelines.animate import AnimateConfig

SETTLE_ROUNDS, SETTLE_PIXELS = 8, 0.25  # see DrivingKeypoints._settle


@dataclass
class _Seen:
    """One driving frame after tracking: its face (or None) and the shot's crop."""

    frame: Frame
    face: Face | None
    anchor: bool  # the first frame of a new reference
    matrix0: np.ndarray | None  # frame -> the shot's reference crop
    after_gap: bool  # the first face after faceless frames


class DrivingKeypoints:
    """Driving frames -> keypoints (K, 3), one per frame, as one driver in the crop of
    the first frame with a face: shots re-anchored at their cuts, faceless frames eased
    to neutral, smoothed over time. `feed()` returns what is ready, in order;
    `finish()` raises NoFaceError when no frame had a face; `notes()` says what was
    done about lost faces and cuts.
    """

    def __init__(
        self,
        stack: FaceStack,
        model: GeneratorModel,
        config: AnimateConfig,
        fps: float,
        cuts: CutConfig | None = None,
    ) -> None:
        # Smoothing happens once, on the keypoints (below), for mesh and learned alike.
        # Tiles find faces down to about 40 px in large frames (small_faces).
        self.tracker = FaceTracker(TiledStack(stack), TrackerConfig(smooth=False))
        self.model = model
        self.learned = config.keypoints == "learned"
        self.size = model.config.output_size
        # Driving crops keep the training framing whatever --crop-scale says about the
        # source: the motion extractor saw only that framing.
        self.align = AlignConfig(size=self.size)
        self.smooth = config.smooth
        self.fps = fps
        self.driver_face = getattr(config, "driver_face", 0)
        self.cuts = ShotCuts(cuts)
        self.picker = DriverPicker(self.driver_face)
        self.ease = EaseToNeutral(fps)
        # Shots are mapped onto the first one with the video's own relative/absolute
        # choice; region and multiplier apply later, once, in the animate transfer.
        self.shot_transfer = TransferConfig(relative=config.relative)
        self.filter: KeypointSmoother | None = None
        self.matrix0: np.ndarray | None = None  # the current shot's reference crop
        self.reference: np.ndarray | None = None  # the first shot's first keypoints
        self.to_first: MotionTransfer | None = None  # this shot -> the first shot
        self.anchors = 0
        self.emitted = 0
        self._gap = False
        self._scale: float | None = None  # interocular distance in crop units

    @property
    def missing(self) -> int:
        return self.ease.missing

    @property
    def seen(self) -> int:
        return self.ease.seen

    @property
    def reanchored(self) -> int:
        """Shots after the first that started a new reference (cuts, jumps)."""
        return max(self.anchors - 1, 0)

    def feed(self, frames: list[Frame]) -> list[np.ndarray]:
        seen = [self._track(f) for f in frames]
        measured = self._measure(seen)
        items = [
            None if kp is None else self._continuous(s, kp)
            for s, kp in zip(seen, measured, strict=True)
        ]
        return self.ease(items)

    def finish(self, name: str) -> None:
        if self.ease.neutral is None:
            which = f"face {self.driver_face} (--driver-face)" if self.driver_face else "face"
            raise NoFaceError(f"no {which} found in any of the {self.seen} frames of {name}")

    def notes(self) -> list[str]:
        """What the user should know about the driving video's faces and shots."""
        out = []
        if self.missing:
            out.append(
                f"{self.missing} of {self.seen} driving frames had no face; eased back to "
                f"neutral over {EASE_SECONDS:g} s"
            )
        if self.reanchored:
            out.append(
                f"{self.reanchored} shot cut(s) in the driving video; the motion re-anchored "
                "at each (no jump in the output)"
            )
        return out

    # ------------------------------------------------------------ per frame

    def _track(self, frame: Frame) -> _Seen:
        cut = self.cuts(frame.image)
        if cut:
            # The old shot's tracks would cling to whatever sits where the face was.
            self.tracker.tracks = []
        faces = self.tracker.update(frame.image, frame.time)
        pick = self.picker(faces, new_shot=cut)
        face = pick.face
        if face is None:
            self._gap = self.matrix0 is not None or self._gap
            return _Seen(frame, None, False, None, False)
        if pick.anchor:
            face = self._settle(frame, face)
            self.picker.box = face.box
            self.matrix0 = align_face(frame.image, face, self.align).matrix
            self.anchors += 1
        after_gap, self._gap = self._gap, False
        return _Seen(frame, face, pick.anchor, self.matrix0, after_gap)

    def _settle(self, frame: Frame, face: Face) -> Face:
        """Measure the reference frame as every later frame is measured. The tracker
        places its first mesh from the detector's box and later ones from the previous
        mesh, and the mesh depends on its box: on a still video frame 1 lands up to 5 px
        (256 px crop) from frame 0, which relative motion would play as a movement. So
        the first frame is re-run until its mesh stops moving."""
        return settle_face(self.tracker, frame.image, frame.time, face)

    def _measure(self, seen: list[_Seen]) -> list[np.ndarray | None]:
        kps: list[np.ndarray | None] = [None] * len(seen)
        found = [i for i, s in enumerate(seen) if s.face is not None]
        if not found:
            return kps
        if not self.learned:
            for i in found:
                face = seen[i].face
                kps[i] = kpt.from_face(face.landmarks, face.irises, seen[i].matrix0, self.size)
            return kps
        crops = [align_face(seen[i].frame.image, seen[i].face, self.align) for i in found]
        learned = self.model.extract_motion(np.stack([c.image for c in crops]))
        for i, crop, kp in zip(found, crops, learned, strict=True):
            kps[i] = to_crop0(kp, crop, seen[i].matrix0, self.size)
            face = seen[i].face
            if face.irises is not None:
                # The tracker's irises on the learnt eye corners (gaze.carry_irises).
                tracked = kpt.from_face(face.landmarks, face.irises, seen[i].matrix0, self.size)
                kps[i] = carry_irises(kps[i], tracked)
        return kps

    def _continuous(self, s: _Seen, kp: np.ndarray) -> tuple[np.ndarray, bool]:
        """The shot's keypoints -> smoothed, in the first shot's terms, and whether the
        ease should carry the last played set into them."""
        if s.anchor or s.after_gap:
            # A new shot (or a face back after a gap) must not be smoothed towards the
            # old one: the ease joins them instead.
            # The head as steady as before; lips, jaw and lids keep their speed (kp_smooth).
            self.filter = KeypointSmoother() if self.smooth else None
        kp = self._smooth(kp, s.frame.time)
        if s.anchor:
            if self.reference is None:
                self.reference = kp
            else:
                self.to_first = MotionTransfer(self.reference, kp, self.shot_transfer)
        if self.to_first is not None:
            kp = self.to_first(kp)
        return kp, s.anchor

    def _smooth(self, kp: np.ndarray, t: float) -> np.ndarray:
        if self.filter is None:
            return kp
        if self._scale is None:
            # The filter's speed is in face sizes per second, as the face tracker's.
            self._scale = _interocular(kp)
        return self.filter(kp, t, scale=self._scale).astype(np.float32)


def settle_face(tracker: FaceTracker, rgb: np.ndarray, t: float, face: Face) -> Face:
    """`settle` for one chosen face among several: each round follows the face nearest
    the last one (the tracker keeps its order, but a face may come or go)."""
    for _ in range(SETTLE_ROUNDS):
        again = [f for f in tracker.update(rgb, t) if same_face(face.box, f.box)]
        if not again:
            break
        before, face = face.landmarks, min(again, key=lambda f: _box_distance(face, f))
        if np.abs(face.landmarks[:, :2] - before[:, :2]).max() < SETTLE_PIXELS:
            break
    return face


def _box_distance(a: Face, b: Face) -> float:
    ca = (a.box[:2] + a.box[2:]) / 2
    cb = (b.box[:2] + b.box[2:]) / 2
    return float(np.linalg.norm(ca - cb))


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
