"""The face stack: detection, mesh, iris and pose for still images and video.

Video follows MediaPipe's tracking scheme: after a face is found, the next frame's mesh
rectangle comes from this frame's mesh, and the detector runs again only when a track is
lost or every `redetect_every` frames (to pick up faces that enter).
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

    def update(self, rgb: np.ndarray, t: float) -> list[Face]:
        stack = self.stack
        alive: list[_Track] = []
        for track in self.tracks:
            if track.face.landmarks is None:
                continue
            rect = roi_from_landmarks(track.face.landmarks)
            face = stack.describe(rgb, track.face.detection, rect)
            if face is None:
                continue
            face.detection = detection_from_landmarks(face.landmarks, face.mesh_score)
            track.face = self._smooth(track, face, t)
            alive.append(track)
        need_detect = not alive or self._frames % self.config.redetect_every == 0
        if need_detect and len(alive) < stack.config.max_faces:
            boxes = np.stack([tr.face.box for tr in alive]) if alive else None
            for det in stack.detect(rgb):
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
