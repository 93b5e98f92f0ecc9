"""The streams a scene is made of, one output frame at a time, in constant memory.

- `SourceStream`: the photo (the same frame forever) or the source video (decoded
  frame by frame, restarted with --loop), and its faces by stable number
  (`faces_plan.FaceIds` over the face tracker);
- `ClipDriver`: a driving clip -> the driver's keypoints at each output frame, picked
  by time (a 30 fps driver under a 25 fps source skips a frame in six), fed in order
  through `driving.DrivingKeypoints` (shot cuts, lost faces, smoothing) and restarted
  with --loop; its first keypoints are the reference its motion is measured against;
- `ScriptDriver`: `--motion` as a driver: scripted keypoints made on the face's own
  first keypoints, which are also its reference.

Motion reaches the source through `target_keypoints`: the source's keypoints in this
frame, plus the driver's change since its reference (`generator.motion.MotionTransfer`).
For a photo the source's keypoints never change; for a video they are measured in each
frame's own crop, so the source's own motion stays and the driver's rides on top.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from likeness.generator import keypoints as kpt
from likeness.generator.motion import MotionTransfer, TransferConfig
from likeness.pipelines.driving import DrivingKeypoints
from likeness.pipelines.faces_plan import FaceIds

if TYPE_CHECKING:
    from likeness.faces import AlignedCrop, Face, FaceStack
    from likeness.generator.model import GeneratorModel
    from likeness.media import Frame, MediaInfo
    from likeness.pipelines.configs import AnimateConfig

SCAN_EVERY = 5  # prepare() looks for a face in every 5th source frame until it finds one


@dataclass
class FaceView:
    """One source face in one frame, cropped for the model."""

    crop: AlignedCrop
    keypoints: np.ndarray  # (K, 3) in the crop


def face_view(image: np.ndarray, face: Face, size: int, crop_scale: float) -> FaceView:
    from likeness.faces import AlignConfig, align_face

    crop = align_face(image, face, AlignConfig(size=size, scale=crop_scale))
    return FaceView(crop, kpt.from_face(face.landmarks, face.irises, crop.matrix, size))


def looped_frames(path, loop: bool, max_frames: int | None = None) -> Iterator[Frame]:
    """A video's frames; with `loop`, again from the start each time it ends (indices
    and times keep counting up, so trackers and filters see time move on)."""
    from likeness.media import Frame, iter_frames

    offset, shift = 0, 0.0
    while True:
        count, last_t = 0, 0.0
        for frame in iter_frames(path, max_frames=max_frames):
            count, last_t = count + 1, frame.time
            yield Frame(frame.index + offset, frame.time + shift, frame.image)
        if not loop or count == 0:
            return
        offset += count
        shift += last_t + (last_t / max(count - 1, 1) if count > 1 else 0.04)


def first_faces(stack: FaceStack, info: MediaInfo) -> tuple[int, list[Face]] | None:
    """The first source frame (every SCAN_EVERY-th) with a face, and its faces largest
    first: how `--face N` and `--drive N=` number a video's faces. None: no face."""
    from likeness.media import iter_frames

    for frame in iter_frames(info.path, every=SCAN_EVERY):
        if stack.detect(frame.image):
            faces = stack.analyze(frame.image)
            if faces:
                return frame.index, faces
    return None


class SourceStream:
    """The source, one frame per output frame: (image, {face number: Face})."""

    def __init__(
        self,
        stack: FaceStack,
        image: np.ndarray | None = None,
        faces: list[Face] | None = None,
        video: MediaInfo | None = None,
        loop: bool = False,
    ) -> None:
        from likeness.faces import FaceTracker

        self.still = video is None
        self.image = image
        self.faces = {n: f for n, f in enumerate(faces or [])}
        self.frames = None if video is None else looped_frames(video.path, loop)
        self.tracker = FaceTracker(stack) if video is not None else None
        self.ids = FaceIds()
        self.missing: dict[int, int] = {}  # face number -> frames it was not found in
        self.count = 0

    def next(self) -> tuple[np.ndarray, dict[int, Face]] | None:
        """The next frame and its faces; None when the source video has ended."""
        self.count += 1
        if self.frames is None:
            return self.image, self.faces
        frame = next(self.frames, None)
        if frame is None:
            return None
        assert self.tracker is not None
        return frame.image, self.ids(self.tracker.update(frame.image, frame.time))

    def note_missing(self, wanted: list[int], found: dict[int, Face]) -> None:
        for n in wanted:
            if n not in found:
                self.missing[n] = self.missing.get(n, 0) + 1


def frame_index(i: int, fps_in: float, fps_out: float) -> int:
    """The driver frame shown at output frame `i`: the last one that started by then."""
    if fps_in <= 0 or fps_out <= 0 or abs(fps_in - fps_out) < 1e-6:
        return i
    return int(i * fps_in / fps_out + 1e-6)


class ClipDriver:
    """A driving clip -> (keypoints, frame image) at each output frame, in order."""

    def __init__(
        self,
        info: MediaInfo,
        stack: FaceStack,
        model: GeneratorModel,
        config: AnimateConfig,
        out_fps: float,
        loop: bool,
        keep_images: bool = False,
    ) -> None:
        self.info = info
        self.fps = info.fps or out_fps
        self.out_fps = out_fps
        self.batch = config.batch_size
        self.tracker = DrivingKeypoints(stack, model, config, self.fps)
        self.frames = looped_frames(info.path, loop)
        self.keep_images = keep_images
        self.images: deque[np.ndarray] = deque()  # fed, keypoints not out yet
        self.ready: deque[tuple[int, np.ndarray, np.ndarray | None]] = deque()
        self.made = 0  # keypoint sets out of the tracker so far (= their frame index)
        self.reference: np.ndarray | None = None
        self.ended = False

    def at(self, i: int) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The driver's keypoints (and frame, when kept) for output frame `i`; None when
        the clip has ended. Output frames must be asked for in order."""
        want = frame_index(i, self.fps, self.out_fps)
        while True:
            while self.ready and self.ready[0][0] < want:
                self.ready.popleft()
            if self.ready:  # indices run on one by one: this is frame `want`
                _, kp, image = self.ready[0]
                return kp, image
            if self.ended:
                return None
            self._pull()

    def _pull(self) -> None:
        chunk: list[Frame] = []
        for frame in self.frames:
            chunk.append(frame)
            if len(chunk) == self.batch:
                break
        if not chunk:
            self.ended = True
            self.tracker.finish(self.info.path.name)  # NoFaceError: no face in any frame
            return
        if self.keep_images:
            self.images.extend(f.image for f in chunk)
        for kp in self.tracker.feed(chunk):
            if self.reference is None:
                self.reference = kp
            image = self.images.popleft() if self.keep_images else None
            self.ready.append((self.made, kp, image))
            self.made += 1

    def notes(self) -> list[str]:
        return self.tracker.notes()


class ScriptDriver:
    """`--motion` for one face: keypoints scripted on its first keypoints."""

    def __init__(self, base: np.ndarray, plan, retarget, loop: bool) -> None:
        from likeness.generator import scripted

        self.reference = np.asarray(base, np.float32)
        self.kps = scripted.script_keypoints(self.reference, plan, retarget)
        self.loop = loop

    def at(self, i: int) -> tuple[np.ndarray, None] | None:
        if i >= len(self.kps):
            if not self.loop:
                return None
            i %= len(self.kps)
        return self.kps[i], None


def target_keypoints(
    source: np.ndarray, reference: np.ndarray, driving: np.ndarray, config: TransferConfig
) -> np.ndarray:
    """The source's keypoints in this frame moved by the driver's change since its
    reference frame (expression; head pose too where `config.region` says so)."""
    return MotionTransfer(source, reference, config)(driving)
