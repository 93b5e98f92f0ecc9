"""A scene: every chosen face of a photo or a source video, each moved by its driver.

    job = prepare_scene(Path("source.mp4"), Path("out.mp4"), Path("driving.mp4"), config)
    job.run()

What `likeness animate` does when the source is a video, when several faces move
(`--face all`, `--drive N=clip`), or when a side-by-side `--preview` is asked for (a
single face of a photo takes `animate.Animation`'s batched path). Per output frame:
the source frame and its faces by number (`video_source.SourceStream`); for each
animated face its crop, keypoints and appearance (once for a photo, every frame for a
video: the face's light, hair and background move with it), its driver's keypoints
(`ClipDriver` or `ScriptDriver`), the target (`target_keypoints`), a render; all
faces pasted into the frame (`compositing.paste_faces`), the optional visible label,
and out through `MarkedVideoWriter` (watermark, signed manifest naming the source and
every driving clip, store record); the preview through a second one.

Length: output frames follow the source video's rate (the photo's: the main clip's);
the shorter input decides the length, or the longer with `loop` (the shorter ones
start over). A face the source video loses for a few frames is left as the source
shows it there.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from likeness.errors import InputError, NoFaceError
from likeness.generator import keypoints as kpt
from likeness.generator import scripted
from likeness.generator.motion import TransferConfig
from likeness.pipelines.compositing import paste_faces, side_by_side
from likeness.pipelines.configs import DEFAULT_FPS, AnimateConfig
from likeness.pipelines.faces_plan import MAIN, FacePlan, plan_faces
from likeness.pipelines.video_source import (
    ClipDriver,
    FaceView,
    ScriptDriver,
    SourceStream,
    face_view,
    first_faces,
    frame_index,
    target_keypoints,
)
from likeness.ui import Progress, no_progress

RIGID = list(kpt.RIGID_ROWS)
# A keyframe serves while the head's rigid points stay within 0.05 crop widths (0.1 in
# the crop's [-1, 1] units) of where they were in it; beyond, a new keyframe is cut.
KEYFRAME_DRIFT = 0.1

if TYPE_CHECKING:
    from likeness.faces import Face, FaceStack
    from likeness.generator.model import GeneratorModel
    from likeness.generator.refiner.model import RefinerModel
    from likeness.media import MediaInfo
    from likeness.pipelines.animate import AnimateResult
    from likeness.provenance.mark import MarkedVideoWriter


def is_video_source(path: Path) -> bool:
    from likeness.media.inputs import check_input_file, read_head, sniff_image_format

    return sniff_image_format(read_head(check_input_file(path))) is None


def transfer_config(config: AnimateConfig, video: bool, scripted_motion: bool) -> TransferConfig:
    """A video source keeps its own head pose: only the driver's expression moves it,
    unless --transfer-pose (scripted motion is chosen on purpose: it moves the head)."""
    region = config.region
    if video and not (config.transfer_pose or scripted_motion):
        if region == "pose":
            raise InputError("--region pose on a video source needs --transfer-pose")
        region = "expression" if region == "all" else region
    return TransferConfig(config.relative, region, config.multiplier)


def _check_options(config: AnimateConfig, video: bool, motion: str | None, n_clips: int) -> None:
    if video:
        if not config.relative:
            raise InputError(
                "--absolute is for a photo source: a video source keeps its own motion"
            )
        if not config.paste_back:
            raise InputError("--crop-only is for a photo source with one face")
        if config.fps is not None:
            raise InputError("--fps does not apply to a video source: the output keeps its rate")
    else:
        if config.transfer_pose:
            raise InputError("--transfer-pose is for a video source (a photo takes the pose)")
        if config.source_audio:
            raise InputError("--source-audio is for a video source (a photo has no audio)")
    if config.fps is not None and n_clips:
        raise InputError("--fps is for --motion; the output keeps the driving video's rate")
    if motion and (not config.relative or config.region != "all"):
        raise InputError("--absolute and --region apply to a driving video, not to --motion")


@dataclass
class Scene:
    """A prepared scene; `run()` writes it, once. Same face as `animate.Animation`:
    `total`, `fps`, `notes`, `run(progress)`."""

    source_path: Path
    out: Path
    config: AnimateConfig
    model: GeneratorModel
    stack: FaceStack
    source: SourceStream
    plan: FacePlan
    main: Path | None
    script: scripted.Script | None
    infos: dict[Path, MediaInfo]
    writer: MarkedVideoWriter
    preview: MarkedVideoWriter | None
    fps: float
    total: int
    transfer: TransferConfig
    started: float = field(default_factory=time.perf_counter)
    notes: list[str] = field(default_factory=list)
    refiner: RefinerModel | None = None  # --refine: applied to each render, face only

    def run(self, progress: Progress | None = None) -> AnimateResult:
        with (progress or no_progress)(f"animate {self.source_path.name}", self.total) as advance:
            return self._run(advance)

    def _drivers(self) -> dict[Path | None, Any]:
        """One ClipDriver per clip (shared by the faces it drives); scripts per face."""
        cfg = self.config
        drivers: dict[Path | None, Any] = {}
        for clip in self.plan.clips(self.main):
            keep = self.preview is not None and clip == self._preview_clip
            drivers[clip] = ClipDriver(
                self.infos[clip], self.stack, self.model, cfg, self.fps, cfg.loop, keep
            )
        return drivers

    @property
    def _preview_clip(self) -> Path | None:
        """The clip the preview shows on the left: the main one, else the first --drive
        (with none, scripted motion, the source itself)."""
        clips = self.plan.clips(self.main)
        return clips[0] if clips else None

    def _run(self, advance) -> AnimateResult:
        from likeness.faces.paste import PasteConfig, crop_mask
        from likeness.media.label import LabelStyle, burn_label, label_record

        cfg = self.config
        size = self.model.config.output_size
        paste = PasteConfig()
        mask = crop_mask(size, paste)
        style = LabelStyle(cfg.label_text, cfg.label_position) if cfg.label else None
        self.writer.visible_label = label_record(style) if style else None
        if self.preview is not None:
            self.preview.visible_label = self.writer.visible_label
        clips = self._drivers()
        scripts: dict[int, ScriptDriver] = {}
        still: dict[int, tuple[FaceView, Any]] = {}  # a photo's faces: cropped, encoded once
        keys: dict[int, tuple[FaceView, Any, int]] = {}  # a video's faces: last keyframe
        wanted = self.plan.faces
        with contextlib.ExitStack() as stack:
            # The preview first, so it closes last: an output that fails to sign takes
            # its preview with it (both or neither).
            preview = stack.enter_context(self.preview) if self.preview is not None else None
            writer = stack.enter_context(self.writer)
            for i in range(self.total):
                got = self.source.next()
                if got is None:
                    break
                image, faces = got
                self.source.note_missing(wanted, faces)
                parts, left, ended = [], None, False
                for n in wanted:
                    key = self.plan.drivers[n]
                    clip = self.main if key is MAIN else key
                    if clip is None:  # --motion
                        face = faces.get(n)
                        if n not in scripts:
                            if face is None:
                                continue
                            base = self._view(image, face, size).keypoints
                            scripts[n] = ScriptDriver(
                                base, self.script, self.model.retarget, cfg.loop
                            )
                        step = scripts[n].at(i)
                        reference = scripts[n].reference
                    else:
                        step = clips[clip].at(i)
                        reference = clips[clip].reference
                        if step is not None and clip == self._preview_clip:
                            left = step[1]
                    if step is None:
                        ended = True
                        break
                    face = faces.get(n)
                    if face is None:
                        continue  # the source lost this face here: leave it as it is
                    if self.source.still:
                        if n not in still:
                            view = self._view(image, face, size)
                            still[n] = (view, self.model.extract_appearance(view.crop.image))
                        view, appearance = still[n]
                        here = view.keypoints
                    else:
                        view, appearance, here = self._keyframe(keys, n, i, image, face, size)
                    target = target_keypoints(here, reference, step[0], self.transfer)
                    rendered = self.model.render(appearance, view.keypoints, target[None])[0]
                    if self.refiner is not None:
                        rendered = self.refiner.refine(rendered[None], target[None])[0]
                    parts.append((rendered, view.crop))
                if ended:
                    break
                if cfg.paste_back:
                    frame = paste_faces(image, parts, paste, mask)
                else:  # one face of a photo (checked in prepare)
                    frame = parts[0][0] if parts else still[wanted[0]][0].crop.image
                if style is not None:
                    frame = burn_label(frame, style)
                writer.write(frame)
                if preview is not None:
                    preview.write(side_by_side(left if left is not None else image, frame))
                advance(1)
        return self._result(writer, clips)

    def _keyframe(
        self, keys: dict, n: int, i: int, image: np.ndarray, face: Face, size: int
    ) -> tuple[FaceView, Any, np.ndarray]:
        """Face `n` of video frame `i`: the crop and appearance to render from, and the
        face's keypoints in that crop. Every frame is its own keyframe by default; with
        `keyframe_every` K > 1 the appearance is encoded every K frames and the frames
        between are rendered from it (their own keypoints measured in its crop, pasted
        with it), unless the head moved more than KEYFRAME_DRIFT since."""
        held = keys.get(n)
        if held is not None and i - held[2] < self.config.keyframe_every:
            view, appearance, _ = held
            here = kpt.from_face(face.landmarks, face.irises, view.crop.matrix, size)
            if np.abs(here[RIGID] - view.keypoints[RIGID]).max() <= KEYFRAME_DRIFT:
                return view, appearance, here
        view = self._view(image, face, size)
        appearance = self.model.extract_appearance(view.crop.image)
        keys[n] = (view, appearance, i)
        return view, appearance, view.keypoints

    def _view(self, image: np.ndarray, face: Face, size: int) -> FaceView:
        return face_view(image, face, size, self.config.crop_scale)

    def _result(self, writer: MarkedVideoWriter, clips: dict) -> AnimateResult:
        from likeness.pipelines.animate import AnimateResult

        notes = list(self.notes)
        for clip, driver in clips.items():
            prefix = f"{clip.name}: " if len(clips) > 1 else ""
            notes += [prefix + note for note in driver.notes()]
        for n, count in sorted(self.source.missing.items()):
            if count:
                notes.append(
                    f"face {n} not found in {count} of {self.source.count} source frames; "
                    "left as the source shows it there"
                )
        first = next(iter(clips.values()), None)
        assert writer.result is not None
        return AnimateResult(
            output=self.out,
            frames=writer.frames,
            fps=self.fps,
            faces_missing=sum(d.tracker.missing for d in clips.values()),
            driving_frames=first.tracker.seen if first is not None else 0,
            sign=writer.result,
            seconds=time.perf_counter() - self.started,
            notes=tuple(notes),
            preview=self.preview.result if self.preview is not None else None,
        )


# ---------------------------------------------------------------- prepare


def prepare_scene(
    source_path: Path,
    out: Path,
    driving: Path | None,
    config: AnimateConfig,
    motion: str | None,
    started: float,
) -> Scene:
    """Check everything and load what is needed for a scene; nothing is written yet."""
    from likeness.config import choose_device
    from likeness.faces import FaceStack
    from likeness.media import read_image, require_video
    from likeness.pipelines.generator_cache import load_generator
    from likeness.pipelines.refine import load_refiner

    video = is_video_source(source_path)
    clips_given = [driving] if driving is not None else []
    clips_given += [clip for _, clip in config.drive]
    if driving is not None and motion:
        raise InputError("give a driving video or --motion, not both")
    if not clips_given and not motion:
        raise InputError(
            "give a driving video (likeness animate SOURCE DRIVING.mp4 -o OUT.mp4), "
            f"--drive FACE=CLIP, or scripted motion (--motion {','.join(scripted.MOTIONS[:3])})"
        )
    names = scripted.parse_motions(motion) if motion else ()
    _check_options(config, video, motion, len(clips_given))
    if config.preview is not None and Path(config.preview).resolve() == Path(out).resolve():
        raise InputError("--preview must name another file than the output")
    infos = {clip: require_video(clip) for clip in dict.fromkeys(clips_given)}
    stack = FaceStack()
    if video:
        source_info = require_video(source_path)
        found = first_faces(stack, source_info)
        if found is None:
            raise NoFaceError(f"no face found in the source video {source_path.name}")
        faces = found[1]
        source = SourceStream(stack, video=source_info, loop=config.loop)
    else:
        source_info = None
        image = read_image(source_path)
        faces = stack.analyze(image)
        if not faces:
            raise NoFaceError(f"no face found in {source_path.name}")
        source = SourceStream(stack, image=image, faces=faces)
    plan = plan_faces(
        len(faces), config.face, config.drive, driving is not None or bool(motion),
        source_path.name,
    )  # fmt: skip
    if not config.paste_back and len(plan.faces) > 1:
        raise InputError("--crop-only writes one face's crop: pick one face (--face N)")
    # The refiner first: its weights are the likelier to be missing, and cheap to check.
    refiner = load_refiner(config, choose_device(config.device))
    model = load_generator(config.weights, choose_device(config.device))
    fps, lengths = _timing(config, source_info, infos, driving, names)
    total = max(lengths) if config.loop else min(lengths)
    total = min(total, config.max_frames or total)
    script = scripted.script(names, fps, config.multiplier) if names else None
    ingredients = [source_path, *plan.clips(driving)]
    writer, preview = _writers(
        out, fps, ingredients, source_info, infos, driving, config, model, refiner
    )
    scene = Scene(
        source_path, out, config, model, stack, source, plan, driving, script, infos, writer,
        preview, fps, total, transfer_config(config, video, bool(names)), started,
    )  # fmt: skip
    scene.notes += _plan_notes(plan, len(faces), source_path.name, driving)
    scene.refiner = refiner
    return scene


def _timing(
    config: AnimateConfig,
    source: MediaInfo | None,
    infos: dict[Path, MediaInfo],
    main: Path | None,
    names: tuple[str, ...],
) -> tuple[float, list[int]]:
    """The output's rate, and each input's length in output frames."""
    if source is not None:
        fps = source.fps or DEFAULT_FPS
    elif main is not None:
        fps = infos[main].fps or DEFAULT_FPS
    elif infos:
        fps = next(iter(infos.values())).fps or DEFAULT_FPS
    else:
        fps = config.fps or DEFAULT_FPS
    lengths = [] if source is None else [source.frames]
    for info in infos.values():
        # Output frames whose driver frame (by time) exists.
        clip_fps = info.fps or fps
        n = 0 if info.frames < 1 else int((info.frames - 1) * fps / clip_fps + 1e-6) + 1
        while n > 0 and frame_index(n - 1, clip_fps, fps) >= info.frames:
            n -= 1
        lengths.append(n)
    if names:
        lengths.append(len(scripted.script(names, fps, config.multiplier)))
    return fps, [max(n, 1) for n in lengths]


def _writers(
    out: Path,
    fps: float,
    ingredients: list[Path],
    source: MediaInfo | None,
    infos: dict[Path, MediaInfo],
    main: Path | None,
    config: AnimateConfig,
    model: GeneratorModel,
    refiner: RefinerModel | None = None,
) -> tuple[MarkedVideoWriter, MarkedVideoWriter | None]:
    """Check the output paths and load the signing keys; nothing is written yet."""
    from likeness.pipelines.refine import model_record
    from likeness.provenance.mark import MarkedVideoWriter

    audio = None
    if config.audio:
        if config.source_audio:
            audio = source.path if source is not None and source.has_audio else None
        elif main is not None and infos[main].has_audio:
            audio = main

    def make(target: Path) -> MarkedVideoWriter:
        return MarkedVideoWriter(
            target,
            fps,
            ingredients=ingredients,
            audio_from=audio,
            **model_record(model, refiner),
        )

    writer = make(out)
    preview = make(Path(config.preview)) if config.preview is not None else None
    return writer, preview


def _plan_notes(plan: FacePlan, n_faces: int, name: str, main: Path | None) -> list[str]:
    moved = plan.faces
    if n_faces == 1 and len(moved) == 1:
        return []
    parts = []
    for n in moved:
        clip = plan.drivers[n]
        by = clip.name if clip is not None else (main.name if main is not None else "--motion")
        parts.append(f"face {n} by {by}")
    return [f"{n_faces} faces in {name}; animating " + ", ".join(parts)]
