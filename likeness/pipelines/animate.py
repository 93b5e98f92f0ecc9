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

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from likeness.errors import InputError
from likeness.generator import scripted
from likeness.generator.motion import MotionTransfer, TransferConfig
from likeness.pipelines.compositing import Composer
from likeness.pipelines.configs import DEFAULT_FPS, AnimateConfig
from likeness.pipelines.driving import DrivingKeypoints
from likeness.ui import Progress, no_progress

if TYPE_CHECKING:
    from likeness.faces import AlignedCrop, Face, FaceStack
    from likeness.generator.model import GeneratorModel
    from likeness.generator.refiner.model import RefinerModel
    from likeness.media import MediaInfo
    from likeness.pipelines.scene import Scene
    from likeness.provenance.mark import MarkedVideoWriter, SignResult


@dataclass(frozen=True)
class AnimateResult:
    output: Path
    frames: int
    fps: float
    faces_missing: int  # driving frames without a face (eased to neutral)
    driving_frames: int  # 0 for scripted motion
    sign: SignResult
    seconds: float  # end to end: loading the model and faces included
    notes: tuple[str, ...] = ()
    preview: SignResult | None = None  # the side-by-side preview, when one was asked for

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
    """Animate `photo` with a driving video or scripted `motion` into `out`: an H.264
    MP4, watermarked, signed (C2PA) and recorded in the local store.

    Args:
        photo: the portrait to animate (its largest face, or `config.face`).
        out: the MP4 to write (replaced only when complete).
        driving: a video whose head motion and expressions the photo follows.
        config: the options of `likeness animate`.
        motion: scripted motion instead of a driving video ("nod,blink,smile").
        progress: a `likeness.ui.Progress`, advanced once per frame written.

    Returns:
        the `AnimateResult`: output, frame count, fps, signing result, notes.

    Raises:
        InputError: a bad option or input (both or neither of driving and motion).
        NoFaceError: no face in the photo. MediaError: an unreadable driving video.
        ModelError: no generator weights. ProvenanceError: no signing keys.
    """
    return prepare(photo, out, driving, config, motion).run(progress)


def prepare(
    photo: Path,
    out: Path,
    driving: Path | None = None,
    config: AnimateConfig = AnimateConfig(),
    motion: str | None = None,
) -> Animation | Scene:
    """Check everything and load what is needed; nothing is written yet.

    Args: as `animate`. `photo` may be a video (the source's own motion is kept and
    the driver's expression goes on top); several faces (`config.face="all"`,
    `config.drive`) and `config.preview` go through `scene.Scene` too.

    Returns:
        the prepared `Animation` or `Scene` (`total` frames, `notes` to show); `run()`
        writes it.

    Raises:
        as `animate`, before any frame is made.
    """
    from likeness.config import choose_device
    from likeness.faces import FaceStack, pick_face
    from likeness.media import read_image, require_video
    from likeness.pipelines.generator_cache import load_generator
    from likeness.pipelines.refine import load_refiner

    started = time.perf_counter()
    photo, out = Path(photo), Path(out)
    if needs_scene(photo, config):
        from likeness.pipelines.scene import prepare_scene

        return prepare_scene(photo, out, driving, config, motion, started)
    names = _check_mode(driving, config, motion)
    image = read_image(photo)
    info = require_video(driving) if driving is not None else None
    stack = FaceStack()
    # Faces before weights: a photo without a face is the likelier mistake, and the
    # cheaper one to report.
    faces = stack.analyze(image)
    pick_face(faces, config.face, what=photo.name)
    # The refiner first: its weights are the likelier to be missing, and cheap to check.
    refiner = load_refiner(config, choose_device(config.device))
    model = load_generator(config.weights, choose_device(config.device))
    source = crop_source(image, faces, model.config.output_size, config, photo.name)
    if info is not None:
        fps = info.fps or DEFAULT_FPS
        total = min(info.frames, config.max_frames or info.frames)
        plan = None
    else:
        fps = config.fps or DEFAULT_FPS
        plan = scripted.script(names, fps, config.multiplier)
        total = min(len(plan), config.max_frames or len(plan))
    writer = _writer(out, fps, photo, info, config, model, refiner)
    return Animation(
        photo, out, info, config, model, stack, source, writer, fps, total, plan, started,
        refiner=refiner,
    )  # fmt: skip


def needs_scene(source: Path, config: AnimateConfig) -> bool:
    """A video source, several faces or a preview: the per-frame scene path. One face of
    a photo keeps the batched path below."""
    from likeness.pipelines.scene import is_video_source

    if config.face == "all" or config.drive or config.preview is not None:
        return True
    return is_video_source(source)


def _check_mode(driving: Path | None, config: AnimateConfig, motion: str | None) -> tuple[str, ...]:
    if config.transfer_pose:
        raise InputError("--transfer-pose is for a video source (a photo takes the pose)")
    if config.source_audio:
        raise InputError("--source-audio is for a video source (a photo has no audio)")
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


def crop_source(
    image: np.ndarray, faces: list[Face], size: int, config: AnimateConfig, name: str
) -> Source:
    from likeness.faces import pick_face
    from likeness.pipelines.video_source import face_view

    view = face_view(image, pick_face(faces, config.face, what=name), size, config.crop_scale)
    return Source(image, view.crop, view.keypoints, len(faces))


def _writer(
    out: Path,
    fps: float,
    photo: Path,
    info: MediaInfo | None,
    config: AnimateConfig,
    model: GeneratorModel,
    refiner: RefinerModel | None = None,
) -> MarkedVideoWriter:
    """Checks the output path and loads the signing keys; writes nothing yet."""
    from likeness.pipelines.refine import model_record
    from likeness.provenance.mark import MarkedVideoWriter

    driving = info.path if info is not None else None
    audio = driving if (driving is not None and info.has_audio and config.audio) else None
    return MarkedVideoWriter(
        out,
        fps,
        ingredients=[photo, *([driving] if driving is not None else [])],
        visible_label=_label_record(config),
        audio_from=audio,
        **model_record(model, refiner),
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
    refiner: RefinerModel | None = None  # --refine: applied to each render, face only

    def __post_init__(self) -> None:
        n = self.source.faces
        if n > 1:
            which = "the largest" if self.config.face == 0 else f"face {self.config.face}"
            self.notes.append(
                f"{n} faces in {self.photo.name}; animating {which} (--face N picks another)"
            )

    def run(self, progress: Progress | None = None) -> AnimateResult:
        """Render, mark and write every frame; `progress` is a `likeness.ui.Progress`."""
        with (progress or no_progress)(f"animate {self.photo.name}", self.total) as advance:
            return self._run(advance)

    def _run(self, advance) -> AnimateResult:
        appearance = self.model.extract_appearance(self.source.crop.image)
        tracker = None
        if self.driving is not None:
            tracker = DrivingKeypoints(self.stack, self.model, self.config, self.fps)
            targets = self._driving_targets(tracker)
        else:
            targets = self._scripted_targets()
        compose = Composer(self.source, self.config.paste_back)
        label = _labeller(self.config)
        with self.writer as writer:
            for batch in targets:
                for part in _chunks(batch, self.config.batch_size):
                    rendered = self.model.render(appearance, self.source.keypoints, part)
                    if self.refiner is not None:
                        rendered = self.refiner.refine(rendered, part)
                    for frame in rendered:
                        writer.write(label(compose(frame)))
                    advance(len(part))
        notes = list(self.notes)
        missing = tracker.missing if tracker is not None else 0
        if tracker is not None:
            notes += tracker.notes()  # faceless frames (eased to neutral), shot cuts
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


# ---------------------------------------------------------------- the visible label


def _label_record(config: AnimateConfig) -> dict | None:
    if not config.label:
        return None
    from likeness.media.label import LabelStyle, label_record

    return label_record(LabelStyle(config.label_text, config.label_position))


def _labeller(config: AnimateConfig):
    """frame -> frame with the visible label burnt in (before the watermark goes on)."""
    if not config.label:
        return lambda frame: frame
    from likeness.media.label import LabelStyle, burn_label

    style = LabelStyle(config.label_text, config.label_position)
    return lambda frame: burn_label(frame, style)


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
