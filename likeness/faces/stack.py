"""The face stack: detection, mesh, iris and pose for still images and video.

Video: a face found once is followed frame to frame (its track keeps its place in the
list and its smoothing). Each frame's mesh is cut from that frame's detection of the
face, as a still image's is (`TrackerConfig.mesh_from_detection`); where the detector
misses it, from the rectangle the last frame's mesh gives (MediaPipe's tracking scheme).
New faces are looked for when a track is lost or every `redetect_every` frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from likeness.errors import InputError, NoFaceError
from likeness.faces.detect import (
    FULL_RANGE,
    SHORT_RANGE,
    BlazeFace,
    DetectorConfig,
    merge_detections,
)
from likeness.faces.geometry import RotatedRect, box_iou
from likeness.faces.landmarks import (
    FaceMeshModel,
    IrisModel,
    detection_from_landmarks,
    roi_from_detection,
    roi_from_landmarks,
)
from likeness.faces.models import model_path
from likeness.faces.pose import head_pose
from likeness.faces.smooth import OneEuroConfig, OneEuroFilter
from likeness.faces.types import Detection, Face

DETECTOR_RANGES = ("auto", "short", "full", "both")


@dataclass(frozen=True)
class FaceStackConfig:
    # auto: short range first, full range when it finds nothing; both: always merge both.
    detector: str = "auto"
    mesh: bool = True
    iris: bool = True
    max_faces: int = 8
    min_mesh_score: float = 0.5
    detection: DetectorConfig = field(default_factory=DetectorConfig)

    def __post_init__(self) -> None:
        if self.detector not in DETECTOR_RANGES:
            raise InputError(
                f"unknown detector {self.detector!r}: use {', '.join(DETECTOR_RANGES)}"
            )


class FaceStack:
    """Loads the models once; `analyze(rgb)` finds and describes every face."""

    def __init__(self, config: FaceStackConfig | None = None, models_root: Path | None = None):
        self.config = config or FaceStackConfig()
        cfg = self.config
        self.short = BlazeFace(
            model_path("detector_short", models_root), SHORT_RANGE, cfg.detection
        )
        self.full = BlazeFace(model_path("detector_full", models_root), FULL_RANGE, cfg.detection)
        self.mesh = FaceMeshModel(model_path("face_mesh", models_root)) if cfg.mesh else None
        self.iris = IrisModel(model_path("iris", models_root)) if cfg.mesh and cfg.iris else None

    def detect(self, rgb: np.ndarray, mode: str | None = None) -> list[Detection]:
        mode = mode or self.config.detector
        iou = self.config.detection.iou_threshold
        if mode == "short":
            found = self.short(rgb)
        elif mode == "full":
            found = self.full(rgb)
        elif mode == "both":
            found = merge_detections([self.short(rgb), self.full(rgb)], iou)
        else:
            found = self.short(rgb) or self.full(rgb)
        found.sort(key=lambda d: -d.area)
        return found[: self.config.max_faces]

    def describe(
        self, rgb: np.ndarray, detection: Detection, rect: RotatedRect | None = None
    ) -> Face | None:
        """Mesh, iris and pose for one face; None when the mesh says there is no face."""
        face = Face(detection=detection)
        if self.mesh is None:
            return face
        landmarks, score = self.mesh(rgb, rect or roi_from_detection(detection))
        if score < self.config.min_mesh_score:
            return None
        face.landmarks, face.mesh_score = landmarks, score
        face.pose = head_pose(landmarks)
        if self.iris is not None:
            face.eye_contours, face.irises = self.iris(rgb, landmarks)
        return face

    def analyze(self, rgb: np.ndarray, mode: str | None = None) -> list[Face]:
        """All faces in a still image, largest first."""
        faces = [f for d in self.detect(rgb, mode) if (f := self.describe(rgb, d)) is not None]
        faces.sort(key=lambda f: -f.area)
        return faces


def pick_face(faces: list[Face], index: int = 0, what: str = "the image") -> Face:
    """The `index`-th largest face, with the errors a user can act on."""
    if not faces:
        raise NoFaceError(f"no face found in {what}")
    if index < 0 or index >= len(faces):
        raise InputError(
            f"--face {index} asked for, but {what} has {len(faces)} face(s) (0-{len(faces) - 1})"
        )
    return faces[index]


@dataclass
class _Track:
    face: Face
    filter: OneEuroFilter
    iris_filter: OneEuroFilter


@dataclass(frozen=True)
class TrackerConfig:
    redetect_every: int = 30
    smoothing: OneEuroConfig = field(default_factory=OneEuroConfig)
    smooth: bool = True
    # Each frame's mesh (and so its eye corners and irises) is cut from that frame's own
    # detection, as a still image's is; the rectangle carried from the last frame's mesh
    # only where the detector misses the face. The carried rectangle sits higher and 6 %
    # larger than a detection's, and the mesh it gives puts the eye corners elsewhere:
    # gaze (iris in its eye's frame) against the still-image measure of the same crop,
    # 12 held-out clips x 24 frames, erred 0.045 eye widths carried against 0.026 from
    # the frame's detection (no motion: 0.042); mouth opening 0.030 against 0.022.
    # Costs one detector run a frame (8 ms of a 30 ms frame at 512 px on this CPU).
    mesh_from_detection: bool = True


class FaceTracker:
    """Frame-to-frame faces for a video; `update(rgb, t)` returns faces, largest first at
    the start and in stable track order afterwards (so `--face N` follows one person)."""

    def __init__(self, stack: FaceStack, config: TrackerConfig | None = None) -> None:
        self.stack = stack
        self.config = config or TrackerConfig()
        self.tracks: list[_Track] = []
        self._frames = 0

    def _smooth(self, track: _Track, face: Face, t: float) -> Face:
        if not self.config.smooth or face.landmarks is None:
            return face
        scale = max(face.interocular(), 1.0)
        face.landmarks = track.filter(face.landmarks, t, scale=scale)
        if face.irises is not None:
            face.irises = track.iris_filter(face.irises, t, scale=scale)
        face.pose = head_pose(face.landmarks)
        return face

    def _claim(self, track: _Track, found: list[Detection]) -> Detection | None:
        """This frame's detection of `track`'s face (taken out of `found`), if any."""
        if not found:
            return None
        overlap = box_iou(track.face.box, np.stack([d.box for d in found]))
        best = int(np.argmax(overlap))
        return found.pop(best) if overlap[best] > 0.3 else None

    def _describe_track(self, rgb: np.ndarray, track: _Track, found: list[Detection]):
        det = self._claim(track, found) if self.config.mesh_from_detection else None
        if det is not None and (face := self.stack.describe(rgb, det)) is not None:
            return face
        return self.stack.describe(
            rgb, track.face.detection, roi_from_landmarks(track.face.landmarks)
        )

    def update(self, rgb: np.ndarray, t: float) -> list[Face]:
        stack = self.stack
        alive: list[_Track] = []
        tracked = [tr for tr in self.tracks if tr.face.landmarks is not None]
        found = stack.detect(rgb) if tracked and self.config.mesh_from_detection else None
        unclaimed = list(found or [])
        for track in tracked:
            face = self._describe_track(rgb, track, unclaimed)
            if face is None:
                continue
            face.detection = detection_from_landmarks(face.landmarks, face.mesh_score)
            track.face = self._smooth(track, face, t)
            alive.append(track)
        need_detect = not alive or self._frames % self.config.redetect_every == 0
        if need_detect and len(alive) < stack.config.max_faces:
            boxes = np.stack([tr.face.box for tr in alive]) if alive else None
            for det in found if found is not None else stack.detect(rgb):
                if boxes is not None and (box_iou(det.box, boxes) > 0.3).any():
                    continue
                face = stack.describe(rgb, det)
                if face is not None:
                    track = _Track(
                        face,
                        OneEuroFilter(self.config.smoothing),
                        OneEuroFilter(self.config.smoothing),
                    )
                    track.face = self._smooth(track, face, t)
                    alive.append(track)
        self.tracks = alive[: stack.config.max_faces]
        self._frames += 1
        return [tr.face for tr in self.tracks]
