"""The animate pipeline: files, faces, batching, paste-back and writing.

    result = animate(Path("photo.jpg"), Path("out.mp4"), driving=Path("driving.mp4"))

The photo's face is cropped and encoded once. The driving video streams through the
face tracker in batches of `batch_size` frames (memory stays constant in its length);
each frame's keypoints are expressed in the crop of the first frame with a face, so
head translation and roll relative to that frame carry over; `MotionTransfer` maps
them onto the source, the model renders, and the crop is pasted back into the photo.
Scripted motion (`motion="nod,blink"`) replaces the driving video with curves from
`generator.scripted`.

Every frame leaves through `MarkedVideoWriter` (watermark, signed C2PA manifest with
the photo and driving video as ingredients and the weights hash, store record). All
checks that can fail on the user's input (files, faces in the photo, weights, keys,
output path) run in `prepare()`, before a single frame is written; an error later
aborts the writer, which leaves nothing at the output path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from likeness.errors import InputError, NoFaceError
from likeness.generator import keypoints as kpt
from likeness.generator import scripted
from likeness.generator.motion import REGIONS, MotionTransfer, TransferConfig

if TYPE_CHECKING:
    from likeness.faces import AlignedCrop, Face, FaceStack
    from likeness.generator.model import GeneratorModel
    from likeness.media import Frame, MediaInfo
    from likeness.provenance.mark import MarkedVideoWriter, SignResult

KEYPOINT_SOURCES = ("mesh", "learned")
DEFAULT_FPS = 25.0
SETTLE_ROUNDS, SETTLE_PIXELS = 8, 0.25  # see DrivingKeypoints._settle
Progress = Callable[[int], Any]


@dataclass(frozen=True)
class AnimateConfig:
    """Options of `likeness animate`; the CLI flags map one to one onto these."""

    relative: bool = True  # driving motion measured against its first frame (--absolute)
    region: str = "all"  # all | pose | expression | eyes | lips
    multiplier: float = 1.0  # scales the expression change (and scripted amplitudes)
    smooth: bool = True  # One Euro filter on the driving keypoints
    keypoints: str = "mesh"  # mesh (face mesh) | learned (the model's motion extractor)
    paste_back: bool = True  # False: write the model's crop (--crop-only)
    crop_scale: float = 1.0  # source crop framing (AlignConfig.scale)
    audio: bool = True  # copy the driving video's audio
    device: str = "auto"
    weights: Path | None = None  # None: the shipped model
    batch_size: int = 8
    max_frames: int | None = None
    face: int = 0  # which face of the photo, largest first
    fps: float | None = None  # scripted motion only (default 25)

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise InputError(f"unknown region {self.region!r}: use {', '.join(REGIONS)}")
        if self.keypoints not in KEYPOINT_SOURCES:
            raise InputError(
                f"unknown keypoints {self.keypoints!r}: use {', '.join(KEYPOINT_SOURCES)}"
            )
        if not (math.isfinite(self.multiplier) and 0 <= self.multiplier <= 5):
            raise InputError(f"--multiplier must be between 0 and 5, got {self.multiplier}")
        if not (math.isfinite(self.crop_scale) and 0.5 <= self.crop_scale <= 2.0):
            raise InputError(f"--crop-scale must be between 0.5 and 2, got {self.crop_scale}")
        if not 1 <= self.batch_size <= 256:
            raise InputError(f"--batch-size must be between 1 and 256, got {self.batch_size}")
        if self.max_frames is not None and self.max_frames < 1:
            raise InputError(f"--max-frames must be 1 or more, got {self.max_frames}")
        if self.face < 0:
            raise InputError(f"--face must be 0 or more, got {self.face}")
        if self.fps is not None and not (math.isfinite(self.fps) and 1 <= self.fps <= 120):
            raise InputError(f"--fps must be between 1 and 120, got {self.fps}")


@dataclass(frozen=True)
class AnimateResult:
    output: Path
    frames: int
    fps: float
    faces_missing: int  # driving frames without a face (their motion was held)
    driving_frames: int  # 0 for scripted motion
    sign: SignResult
    seconds: float  # end to end: loading the model and faces included
    notes: tuple[str, ...] = ()

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Source:
    """The photo and its chosen face, cropped for the model."""

    image: np.ndarray  # the whole photo, RGB
    crop: AlignedCrop
    keypoints: np.ndarray  # (K, 3) in the crop
    faces: int  # faces found in the photo


# ---------------------------------------------------------------- entry points


def animate(
    photo: Path,
    out: Path,
    driving: Path | None = None,
    config: AnimateConfig = AnimateConfig(),
    motion: str | None = None,
    progress: Progress | None = None,
) -> AnimateResult:
    """Animate `photo` with a driving video or scripted `motion` into `out` (MP4)."""
    return prepare(photo, out, driving, config, motion).run(progress)


def prepare(
    photo: Path,
    out: Path,
    driving: Path | None = None,
    config: AnimateConfig = AnimateConfig(),
    motion: str | None = None,
) -> Animation:
    """Check everything and load what is needed; nothing is written yet."""
    from likeness.config import choose_device
    from likeness.faces import FaceStack, pick_face
    from likeness.generator.model import GeneratorModel
    from likeness.media import read_image, require_video

    started = time.perf_counter()
    photo, out = Path(photo), Path(out)
    names = _check_mode(driving, config, motion)
    image = read_image(photo)
    info = require_video(driving) if driving is not None else None
    stack = FaceStack()
    # Faces before weights: a photo without a face is the likelier mistake, and the
    # cheaper one to report.
    faces = stack.analyze(image)
    pick_face(faces, config.face, what=photo.name)
    model = GeneratorModel.from_pretrained(config.weights, choose_device(config.device))
    source = crop_source(image, faces, model.config.output_size, config, photo.name)
    if info is not None:
        fps = info.fps or DEFAULT_FPS
        total = min(info.frames, config.max_frames or info.frames)
        plan = None
    else:
        fps = config.fps or DEFAULT_FPS
        plan = scripted.script(names, fps, config.multiplier)
        total = min(len(plan), config.max_frames or len(plan))
    writer = _writer(out, fps, photo, info, config, model)
    return Animation(
        photo, out, info, config, model, stack, source, writer, fps, total, plan, started
    )


def _check_mode(driving: Path | None, config: AnimateConfig, motion: str | None) -> tuple[str, ...]:
    if driving is not None and motion:
        raise InputError("give a driving video or --motion, not both")
    if driving is None and not motion:
        raise InputError(
            "give a driving video (likeness animate PHOTO DRIVING.mp4 -o OUT.mp4) or "
            f"scripted motion (--motion {','.join(scripted.MOTIONS[:3])})"
        )
    if driving is not None:
        if config.fps is not None:
            raise InputError("--fps is for --motion; the output keeps the driving video's rate")
        return ()
    if not config.relative or config.region != "all":
        raise InputError("--absolute and --region apply to a driving video, not to --motion")
    return scripted.parse_motions(motion or "")


def load_source(
    image: np.ndarray, stack: FaceStack, size: int, config: AnimateConfig, name: str
) -> Source:
    """The chosen face of the photo, cropped at the model's size, and its keypoints."""
    return crop_source(image, stack.analyze(image), size, config, name)


def crop_source(
    image: np.ndarray, faces: list[Face], size: int, config: AnimateConfig, name: str
) -> Source:
    from likeness.faces import AlignConfig, align_face, pick_face

    face = pick_face(faces, config.face, what=name)
    crop = align_face(image, face, AlignConfig(size=size, scale=config.crop_scale))
    keypoints = kpt.from_face(face.landmarks, face.irises, crop.matrix, size)
    return Source(image, crop, keypoints, len(faces))


def _writer(
    out: Path,
    fps: float,
    photo: Path,
    info: MediaInfo | None,
    config: AnimateConfig,
    model: GeneratorModel,
) -> MarkedVideoWriter:
    """Checks the output path and loads the signing keys; writes nothing yet."""
    from likeness.provenance.mark import MarkedVideoWriter

    driving = info.path if info is not None else None
    audio = driving if (driving is not None and info.has_audio and config.audio) else None
    return MarkedVideoWriter(
        out,
        fps,
        ingredients=[photo, *([driving] if driving is not None else [])],
        audio_from=audio,
        model_name=model.config.name,
        model_hash=model.weights_hash,
    )


# ---------------------------------------------------------------- the run


@dataclass
class Animation:
    """A prepared job: `total` frames at `fps` into `out`. `run()` does the work, once
    (the writer it holds is single-use)."""

    photo: Path
    out: Path
    driving: MediaInfo | None
    config: AnimateConfig
    model: GeneratorModel
    stack: FaceStack
    source: Source
    writer: MarkedVideoWriter
    fps: float
    total: int
    plan: scripted.Script | None = None
    started: float = field(default_factory=time.perf_counter)  # seconds count from here
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = self.source.faces
        if n > 1:
            which = "the largest" if self.config.face == 0 else f"face {self.config.face}"
            self.notes.append(
                f"{n} faces in {self.photo.name}; animating {which} (--face N picks another)"
            )

    def run(self, progress: Progress | None = None) -> AnimateResult:
        advance = progress or (lambda n=1: None)
        appearance = self.model.extract_appearance(self.source.crop.image)
        tracker = None
        if self.driving is not None:
            tracker = DrivingKeypoints(self.stack, self.model, self.config, self.fps)
            targets = self._driving_targets(tracker)
        else:
            targets = self._scripted_targets()
        compose = Composer(self.source, self.config.paste_back)
        with self.writer as writer:
            for batch in targets:
                for part in _chunks(batch, self.config.batch_size):
                    rendered = self.model.render(appearance, self.source.keypoints, part)
                    for frame in rendered:
                        writer.write(compose(frame))
                    advance(len(part))
        notes = list(self.notes)
        missing = tracker.missing if tracker is not None else 0
        if missing:
            notes.append(
                f"{missing} of {tracker.seen} driving frames had no face; held the last motion"
            )
        assert writer.result is not None
        return AnimateResult(
            output=self.out,
            frames=writer.frames,
            fps=self.fps,
            faces_missing=missing,
            driving_frames=tracker.seen if tracker is not None else 0,
            sign=writer.result,
            seconds=time.perf_counter() - self.started,
            notes=tuple(notes),
        )

    def _driving_targets(self, tracker: DrivingKeypoints) -> Iterator[np.ndarray]:
        from likeness.media import iter_frames

        cfg = self.config
        transfer_config = TransferConfig(cfg.relative, cfg.region, cfg.multiplier)
        transfer: MotionTransfer | None = None
        frames = iter_frames(self.driving.path, max_frames=cfg.max_frames)
        for chunk in _batched(frames, cfg.batch_size):
            kps = tracker.feed(chunk)
            if not len(kps):
                continue
            if transfer is None:
                transfer = MotionTransfer(self.source.keypoints, kps[0], transfer_config)
            yield np.stack([transfer(k) for k in kps])
        tracker.finish(self.driving.path.name)

    def _scripted_targets(self) -> Iterator[np.ndarray]:
        assert self.plan is not None
        kps = scripted.script_keypoints(self.source.keypoints, self.plan, self.model.retarget)
        yield from _chunks(kps[: self.total], self.config.batch_size)


class Composer:
    """Rendered crop -> output frame: pasted into the photo, or the crop itself."""

    def __init__(self, source: Source, paste_back: bool) -> None:
        from likeness.faces.paste import PasteConfig, crop_mask

        self.paste_back = paste_back
        self.config = PasteConfig()
        self.photo = source.image
        crop = source.crop
        size = crop.image.shape[0]
        # Only the crop's footprint changes: paste into that window of the photo, not
        # the whole frame (a 4000 px photo would otherwise cost two full warps a frame).
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], float)
        xy = corners @ crop.inverse.T
        h, w = self.photo.shape[:2]
        x0, y0 = (max(0, math.floor(v) - 2) for v in xy.min(0))
        x1, y1 = min(w, math.ceil(xy[:, 0].max()) + 2), min(h, math.ceil(xy[:, 1].max()) + 2)
        self.window = (slice(y0, y1), slice(x0, x1))
        shift = np.array([[0, 0, x0], [0, 0, y0]], float)
        self.crop = _shifted(crop, shift)
        self.mask = crop_mask(size, self.config)

    def __call__(self, rendered: np.ndarray) -> np.ndarray:
        from likeness.faces.paste import paste_back

        if not self.paste_back:
            return rendered
        frame = self.photo.copy()
        part = frame[self.window]
        frame[self.window] = paste_back(part, rendered, self.crop, self.config, self.mask)
        return frame


def _shifted(crop: AlignedCrop, shift: np.ndarray) -> AlignedCrop:
    """The same crop, for a frame whose origin moved by shift[:, 2]."""
    from likeness.faces import AlignedCrop

    matrix = crop.matrix.copy()
    matrix[:, 2] += crop.matrix[:, :2] @ shift[:, 2]
    inverse = crop.inverse - shift
    return AlignedCrop(crop.image, matrix, inverse, crop.params, crop.frame_size)


# ---------------------------------------------------------------- driving keypoints


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
        from likeness.faces import AlignConfig, FaceTracker, TrackerConfig
        from likeness.faces.smooth import OneEuroFilter

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
        for _ in range(SETTLE_ROUNDS):
            before = faces[0].landmarks
            again = self.tracker.update(frame.image, frame.time)
            if not again:
                break
            faces = again
            if np.abs(faces[0].landmarks[:, :2] - before[:, :2]).max() < SETTLE_PIXELS:
                break
        return faces

    def _measure(self, frames: list[Frame], faces: list[Face | None]) -> list[np.ndarray | None]:
        from likeness.faces import align_face

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


def to_crop0(kp: np.ndarray, crop: AlignedCrop, matrix0: np.ndarray, size: int) -> np.ndarray:
    """Keypoints normalised to `crop` -> normalised to the crop that `matrix0` cuts:
    crop pixels -> frame (crop.inverse) -> crop 0 (matrix0); depth by the scale ratio."""
    px = kpt.to_pixels(kp, size).astype(np.float64)
    frame = px[:, :2] @ crop.inverse[:, :2].T + crop.inverse[:, 2]
    xy0 = frame @ matrix0[:, :2].T + matrix0[:, 2]
    ratio = _affine_scale(matrix0) / _affine_scale(crop.matrix)
    return kpt.normalise(np.concatenate([xy0, px[:, 2:3] * ratio], axis=1), size)


def _affine_scale(matrix: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def _interocular(kp: np.ndarray) -> float:
    right, left = kpt.IRIS_ROWS
    return max(float(np.linalg.norm(kp[left, :2] - kp[right, :2])), 1e-3)


# ---------------------------------------------------------------- batching


def _batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def _chunks(array: np.ndarray, n: int) -> Iterator[np.ndarray]:
    for start in range(0, len(array), n):
        yield array[start : start + n]
