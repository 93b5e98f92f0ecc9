"""`likeness bench generator`: generator quality on held-out identities, and its speed.

Quality is measured only on the test split of `datasets/split.tsv` (people the model
never saw), always beside two baselines in the same table: "no motion" (the source crop
repeated) and "affine" (the source crop warped by the least-squares affine map between
source and driving keypoints). Speed: the model alone, and `animate` end to end.

Writes into --out: generator.json (figures), generator.mp4 (side by side: source |
ground truth or driving | ours | affine | no motion) and generator.png (a grid of
frames). Both media files carry generated pixels, so they leave only through
`MarkedVideoWriter` and `mark_image` (watermark + signed manifest + store record).

Targets (issue): ours beats both baselines on every metric; self-reenactment PSNR
>= 24 dB and SSIM >= 0.80; end to end >= 5 fps on the 2-core CPU.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from likeness.bench import face_metrics as fm
from likeness.bench.common import corpus_dir, machine_info, write_json
from likeness.errors import InputError, NoFaceError

if TYPE_CHECKING:
    from likeness.faces import Face, FaceStack
    from likeness.generator.model import GeneratorModel

METHODS = ("ours", "affine", "no_motion")
METHOD_LABELS = {"ours": "ours", "affine": "affine warp", "no_motion": "no motion"}
FRAMES = {False: 60, True: 24}  # sampled evenly from each clip (full, --quick)
QUICK_CLIPS, QUICK_PHOTOS = 2, 2
DRIVERS_PER_PHOTO = {False: 2, True: 1}
BATCH = 8  # frames per render call, as `animate` batches them
E2E_FRAMES = {False: 50, True: 12}
SPEED_REPEATS = {False: 3, True: 1}
CELL = 256  # panel size in the MP4 and the grid
LABEL_H = 24
VIDEO_FPS = 10.0  # sampled frames are several source frames apart: play them slower
GRID_ROWS = 8
REPORT_SIZE = 256  # pixel figures are given in pixels of a 256 px crop

# Higher is better for these; lower for every other metric.
HIGHER_BETTER = frozenset({"psnr", "ssim", "face_psnr"})
SELF_METRICS = ("psnr", "ssim", "l1", "face_psnr", "akd", "aed", "apd", "gaze")
CROSS_METRICS = ("pose_error", "expression_error")
TARGET_PSNR, TARGET_SSIM, TARGET_E2E_FPS = 24.0, 0.80, 5.0

METHOD_TEXT = {
    "data": "held-out identities only: the test split of likeness/datasets/split.tsv "
    "(people never used for training or model selection)",
    "self_reenactment": "each test video: frames sampled evenly over the whole clip, "
    "faces tracked (FaceTracker, One Euro smoothing, as the training pack; the first "
    "frame re-measured until its mesh settles, as animate does), every frame cut with "
    "the first frame's aligned crop window (align_face at the model's output size), so "
    "the head moves inside a still window as in animate and training. Source = frame "
    "0's crop with keypoints.from_face in it; for each later frame t the ground truth is "
    "frame t in that window and the driving keypoints are frame t's in the same window. "
    "Ours = render(appearance(source), kp_source, kp_t).",
    "cross_reenactment": "each test photo x one or two test driving clips of another "
    "identity: driving keypoints expressed in the first driving frame's crop, relative "
    "motion transfer onto the photo's keypoints (MotionTransfer, default TransferConfig), "
    "render. Pose error = |(pose_out_t - pose_out_0) - (pose_drv_t - pose_drv_0)| (mean "
    "of yaw, pitch, roll, degrees); expression error = mean 3D distance between the "
    "output's and the driver's mesh change since their own first frame with head pose "
    "removed (similarity fit on rigid mesh points), the output's change carried into "
    "the driver's first frame by the similarity between the two first frames (so "
    "different faces compare), in pixels of the driver's 256 px crop.",
    "baselines": "no_motion: the source crop repeated. affine: cv2.warpAffine of the "
    "source crop by the full 6-parameter affine map fitted by least squares (numpy "
    "lstsq, no RANSAC) from all source keypoints to the driving (self) or transferred "
    "(cross) keypoints, x and y in crop pixels.",
    "image_metrics": "on the aligned crops (whole crop): PSNR (dB, per frame, then "
    "averaged), SSIM (11x11 Gaussian window, sigma 1.5, the training loss's), L1 (mean "
    "absolute error, pixels in [0, 1]); face_psnr: PSNR inside the face oval of the "
    "ground truth's mesh.",
    "face_metrics": "the face stack (detection, 468-point mesh, iris, pose) runs on every "
    "ground-truth, generated and baseline crop independently (still-image mode, no "
    "tracking, so all are measured alike). AKD: mean 2D distance of all 468 mesh points; "
    "AED: mean 3D distance of all mesh points after a similarity fit on rigid points "
    "removes head pose; both in pixels of a 256 px crop. APD: mean of |yaw|, |pitch|, "
    "|roll| differences, degrees. gaze: distance between iris centres expressed in "
    "their eye's corner-to-corner frame (eye widths), mean of both eyes. face_lost: "
    "share of frames where no face was found on the method's output (those frames are "
    "left out of the face metrics).",
    "aggregation": "per clip (or photo x driver pair): mean over frames; overall: mean "
    "over clips (pairs); by_identity: mean over each identity's clips.",
    "speed": "model only: render() at the model's output size in batches of 8, warm-up "
    "excluded, best of several repeats, at 1 torch thread and at torch's default count "
    "(the faster is used for the rest of the run). End to end: likeness.generator."
    "pipeline.animate on a held-out photo and driving clip, written to a temp folder "
    "(decode, face tracking, keypoints, motion transfer, render, paste-back into the "
    "photo, watermark, H.264 encode, C2PA signing); fps = frames / seconds of "
    "Animation.run(), prepare() (model, face stack and key loading) timed apart.",
}


# ---------------------------------------------------------------- inputs


@dataclass
class Clip:
    """One driving or ground-truth clip, already cropped and measured."""

    name: str
    identity: str
    path: Path  # the file the crops came from (an ingredient of the outputs)
    crops: np.ndarray  # (N, S, S, 3) uint8, each frame in its own aligned crop
    matrices: np.ndarray  # (N, 2, 3) frame -> that frame's crop, in crop pixels
    keypoints: np.ndarray  # (N, K, 3) normalised, each frame in its own crop


@dataclass
class Photo:
    name: str
    identity: str
    path: Path
    crop: np.ndarray  # (S, S, 3)
    keypoints: np.ndarray  # (K, 3)


@dataclass(frozen=True)
class Sources:
    """Files to evaluate on (all held out) and where that choice came from."""

    videos: tuple[Path, ...]
    photos: tuple[Path, ...]
    origin: str


@dataclass
class BenchInputs:
    clips: list[Clip]
    photos: list[Photo]
    origin: str
    notes: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return list(dict.fromkeys([c.path for c in self.clips] + [p.path for p in self.photos]))


def held_out_sources(corpus: Path) -> Sources:
    """The corpus files whose identity is in the test split."""
    from likeness.datasets.identities import identity_for, load_split

    split = load_split()
    manifest = corpus / "MANIFEST.tsv"
    with manifest.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    videos, photos = [], []
    for row in rows:
        if split.split_for(identity_for(row["file"])) != "test":
            continue
        path = corpus / row["file"]
        if not path.is_file():
            continue
        (videos if row["kind"] == "video" else photos).append(path)
    if not videos or not photos:
        raise InputError(f"{manifest} lists no test-split videos or photos ({split.path.name})")
    origin = f"{corpus}, test split ({split.path.name} sha256 {split.sha256[:12]})"
    return Sources(tuple(sorted(videos)), tuple(sorted(photos)), origin)


def _quick_pick(paths: list[Path], count: int, pixels: Callable[[Path], int]) -> list[Path]:
    """The `count` smallest files of distinct identities (a quick run should be quick)."""
    from likeness.datasets.identities import identity_for

    chosen: dict[str, Path] = {}
    for path in sorted(paths, key=lambda p: (pixels(p), p.name)):
        chosen.setdefault(identity_for(path), path)
    return list(chosen.values())[:count]


def first_per_identity(items: list[Any]) -> list[Any]:
    """The first item of each identity, in the order given."""
    chosen: dict[str, Any] = {}
    for item in items:
        chosen.setdefault(item.identity, item)
    return list(chosen.values())


def _even(n_total: int, n: int) -> np.ndarray:
    """`n` indices spread evenly over range(n_total), first and last included."""
    if n_total <= n:
        return np.arange(n_total)
    return np.unique(np.round(np.linspace(0, n_total - 1, n)).astype(int))


def load_clip(
    path: Path, stack: FaceStack, size: int, frames: int, settle_rounds: int = 8
) -> Clip | None:
    """Track the largest face over `frames` frames spread over the clip; None if no face."""
    from likeness.datasets.identities import identity_for
    from likeness.faces import AlignConfig, FaceTracker, align_face, warp_crop
    from likeness.generator import keypoints as kpt
    from likeness.media import iter_frames, probe

    total = max(probe(path).frames, 1)
    every = max(1, total // frames)
    tracker = FaceTracker(stack)
    align = AlignConfig(size=size)
    crops, matrices, kps = [], [], []
    first = None
    for frame in iter_frames(path, every=every):
        faces = tracker.update(frame.image, frame.time)
        if faces and not crops:
            faces = _settle(tracker, frame.image, frame.time, faces, settle_rounds)
        if not faces:
            continue
        face = faces[0]
        # Every frame is cut with the first frame's crop window (the background stays,
        # the head moves inside it), as animate and training see driving frames.
        if first is None:
            first = align_face(frame.image, face, align)
        crop = warp_crop(frame.image, first.params, size)
        crops.append(crop.image)
        matrices.append(crop.matrix)
        kps.append(kpt.from_face(face.landmarks, face.irises, crop.matrix, size))
        if len(crops) >= frames:
            break
    if len(crops) < 2:
        return None
    return Clip(
        path.name, identity_for(path), path, np.stack(crops), np.stack(matrices), np.stack(kps)
    )


def _settle(tracker, rgb: np.ndarray, t: float, faces: list[Face], rounds: int) -> list[Face]:
    """Re-measure the first frame until its mesh stops moving. The first mesh is placed
    from the detector's box and later ones from the previous mesh, which lands a few
    pixels apart on a still face; the source frame must be measured like the rest."""
    for _ in range(rounds):
        before = faces[0].landmarks
        again = tracker.update(rgb, t)
        if not again:
            break
        faces = again
        if np.abs(faces[0].landmarks[:, :2] - before[:, :2]).max() < 0.25:
            break
    return faces


def load_photo(path: Path, stack: FaceStack, size: int) -> Photo | None:
    from likeness.datasets.identities import identity_for
    from likeness.faces import AlignConfig, align_face
    from likeness.generator import keypoints as kpt
    from likeness.media import read_image

    image = read_image(path)
    faces = stack.analyze(image)
    if not faces:
        return None
    crop = align_face(image, faces[0], AlignConfig(size=size))
    kp = kpt.from_face(faces[0].landmarks, faces[0].irises, crop.matrix, size)
    return Photo(path.name, identity_for(path), path, crop.image, kp)


def corpus_inputs(
    sources: Sources, stack: FaceStack, size: int, quick: bool, advance: Callable = lambda n=1: None
) -> BenchInputs:
    from likeness.media import probe

    videos, photos = list(sources.videos), list(sources.photos)
    if quick:
        videos = _quick_pick(videos, QUICK_CLIPS, lambda p: probe(p).width * probe(p).height)
        photos = _quick_pick(photos, QUICK_PHOTOS, lambda p: p.stat().st_size)
    inputs = BenchInputs([], [], sources.origin)
    for path in videos:
        clip = load_clip(path, stack, size, FRAMES[quick])
        advance()
        if clip is None:
            inputs.notes.append(f"{path.name}: fewer than 2 frames with a face, left out")
        else:
            inputs.clips.append(clip)
    for path in photos:
        photo = load_photo(path, stack, size)
        advance()
        if photo is None:
            inputs.notes.append(f"{path.name}: no face found, left out")
        else:
            inputs.photos.append(photo)
    return inputs


def pack_inputs(pack_dir: Path, size: int, quick: bool) -> BenchInputs:
    """The test items of a training pack (crops and landmarks already made)."""
    from likeness.datasets.identities import default_split_path
    from likeness.datasets.pack_reader import Pack
    from likeness.faces.align import AlignParams, params_to_matrix
    from likeness.generator import keypoints as kpt

    # A pack split by another file could hold training identities under "test".
    pack = Pack.open(pack_dir, split_file=default_split_path())
    videos = pack.select(split="test", kind="video")
    photos = pack.select(split="test", kind="photo")
    if quick:
        videos = first_per_identity(videos)[:QUICK_CLIPS]
        photos = photos[:QUICK_PHOTOS]
    inputs = BenchInputs(
        [],
        [],
        f"pack {pack.root.name}, test split (crops every "
        f"{pack.manifest['settings'].get('every', '?')} frames, CRF "
        f"{pack.manifest['settings'].get('crf', '?')})",
    )
    factor = size / pack.crop_size
    for item in videos:
        idx = _even(item.frames, FRAMES[quick])
        arrays = pack.arrays(item).scaled(factor).rows(idx)
        if len(idx) < 2:
            continue
        matrices = np.stack(
            [params_to_matrix(AlignParams(*map(float, p)), size) for p in arrays.params]
        )
        crops, kps = rewindow(
            pack.frames(item, size)[idx],
            matrices,
            kpt.from_pack_arrays(arrays.landmarks, arrays.irises, size),
        )
        first = np.repeat(matrices[:1], len(matrices), axis=0)
        inputs.clips.append(
            Clip(Path(item.source).name, item.identity, pack.root / item.file, crops, first, kps)
        )
    for item in photos:
        arrays = pack.arrays(item).scaled(factor)
        kp = kpt.from_pack_arrays(arrays.landmarks[0], arrays.irises[0], size)
        inputs.photos.append(
            Photo(
                Path(item.source).name,
                item.identity,
                pack.root / item.file,
                pack.frames(item, size)[0],
                kp,
            )
        )
    if not inputs.clips or not inputs.photos:
        raise InputError(f"pack {pack.root.name} holds no test-split videos or photos")
    return inputs


# ---------------------------------------------------------------- geometry helpers


def rewindow(
    crops: np.ndarray, matrices: np.ndarray, keypoints: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame aligned crops (a pack's) seen through the first frame's crop window,
    with their keypoints; pixels the window has but a crop lacks are mirrored in."""
    import cv2

    from likeness.faces.geometry import invert_affine
    from likeness.generator import keypoints as kpt

    size = crops.shape[1]
    out_crops, out_kps = [], []
    for crop, kp, matrix in zip(crops, keypoints, matrices, strict=True):
        move = compose(matrices[0], invert_affine(matrix))
        out_crops.append(
            cv2.warpAffine(
                crop, move, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
            )
        )
        out_kps.append(kpt.normalise(reframe(kpt.to_pixels(kp, size), move), size))
    return np.stack(out_crops), np.stack(out_kps)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """2x3 affine maps: outer(inner(p))."""
    return np.hstack(
        [outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]]
    )


def reframe(points_px: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(K, 3) points in pixels through a 2x3 map; depth scales with the map's scale."""
    out = np.array(points_px, np.float64, copy=True)
    out[:, :2] = points_px[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    out[:, 2] = points_px[:, 2] * float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    return out


def to_first_crop(clip: Clip) -> np.ndarray:
    """The clip's keypoints (N, K, 3), all expressed in its first frame's crop (so head
    translation and roll since that frame show), normalised."""
    from likeness.faces.geometry import invert_affine
    from likeness.generator import keypoints as kpt

    size = clip.crops.shape[1]
    out = []
    for kp, matrix in zip(clip.keypoints, clip.matrices, strict=True):
        move = compose(clip.matrices[0], invert_affine(matrix))
        out.append(kpt.normalise(reframe(kpt.to_pixels(kp, size), move), size))
    return np.stack(out)


# ---------------------------------------------------------------- measuring faces


@dataclass(frozen=True)
class FaceMeasure:
    landmarks: np.ndarray  # (468, 3) pixels of the image measured
    irises: np.ndarray  # (2, 2) iris centres
    pose: np.ndarray  # (3,) yaw, pitch, roll


def measure(stack: FaceStack, image: np.ndarray) -> FaceMeasure | None:
    """The largest face of a crop, measured as a still image (no tracking)."""
    faces = [f for f in stack.analyze(image) if f.landmarks is not None]
    if not faces:
        return None
    face = faces[0]
    return FaceMeasure(
        face.landmarks.astype(np.float64),
        face.eye_centres(),
        np.asarray(face.pose.as_tuple(), np.float64),
    )


def moved(m: FaceMeasure, matrix: np.ndarray) -> FaceMeasure:
    """A measurement carried into another crop (pose re-read from the moved mesh)."""
    from likeness.faces.pose import head_pose

    landmarks = reframe(m.landmarks, matrix)
    irises = m.irises @ matrix[:, :2].T + matrix[:, 2]
    return FaceMeasure(landmarks, irises, np.asarray(head_pose(landmarks).as_tuple()))


# ---------------------------------------------------------------- evaluation


class Scores:
    """Per-frame values by method and metric; summaries are NaN-aware means."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, list[float]]] = {m: {} for m in METHODS}

    def add(self, method: str, metric: str, values) -> None:
        self.values[method].setdefault(metric, []).extend(np.atleast_1d(values).tolist())

    def summary(self) -> dict[str, dict[str, float | None]]:
        return {m: {k: _mean(v) for k, v in metrics.items()} for m, metrics in self.values.items()}


def _mean(values: list[float]) -> float | None:
    arr = np.asarray(values, np.float64)
    arr = arr[np.isfinite(arr)]
    return round(float(arr.mean()), 4) if len(arr) else None


def render_all(
    model: GeneratorModel, appearance: dict, kp_source: np.ndarray, kps: np.ndarray
) -> np.ndarray:
    parts = [
        model.render(appearance, kp_source, kps[i : i + BATCH]) for i in range(0, len(kps), BATCH)
    ]
    return np.concatenate(parts)


def affine_baseline(source: np.ndarray, kp_source: np.ndarray, kps: np.ndarray) -> np.ndarray:
    from likeness.generator import keypoints as kpt

    size = source.shape[0]
    src = kpt.to_pixels(kp_source, size)
    return np.stack(
        [fm.affine_warp(source, fm.affine_fit(src, kpt.to_pixels(k, size))) for k in kps]
    )


@dataclass
class Panel:
    """One evaluated frame for the MP4 and the grid: source, reference, then METHODS."""

    images: list[np.ndarray]
    motion: float  # how far the driving keypoints moved (picks grid frames)


@dataclass
class ItemResult:
    row: dict[str, Any]
    panels: list[Panel]


def self_reenact(model: GeneratorModel, stack: FaceStack, clip: Clip) -> ItemResult:
    size = clip.crops.shape[1]
    unit = REPORT_SIZE / size
    source, truth = clip.crops[0], clip.crops[1:]
    kp_source, kps = clip.keypoints[0], clip.keypoints[1:]
    outputs = {
        "ours": render_all(model, model.extract_appearance(source), kp_source, kps),
        "affine": affine_baseline(source, kp_source, kps),
        "no_motion": np.repeat(source[None], len(kps), axis=0),
    }
    truth_faces = [measure(stack, t) for t in truth]
    masks = [fm.face_mask(t.landmarks, size) if t else None for t in truth_faces]
    source_face = measure(stack, source)
    scores = Scores()
    for method, frames in outputs.items():
        img = fm.image_scores(frames, truth, masks)
        for name in ("psnr", "ssim", "l1", "face_psnr"):
            scores.add(method, name, getattr(img, name))
        if method == "no_motion":
            faces = [source_face] * len(frames)
        else:
            faces = [measure(stack, f) for f in frames]
        lost = 0
        for got, want in zip(faces, truth_faces, strict=True):
            if want is None:
                continue
            if got is None:
                lost += 1
                continue
            scores.add(method, "akd", fm.akd(got.landmarks, want.landmarks) * unit)
            scores.add(method, "aed", fm.aed(got.landmarks, want.landmarks) * unit)
            scores.add(method, "apd", float(fm.apd(got.pose, want.pose).mean()))
            scores.add(
                method,
                "gaze",
                fm.gaze_error(
                    fm.gaze_coords(got.landmarks, got.irises),
                    fm.gaze_coords(want.landmarks, want.irises),
                ),
            )
        measured = sum(t is not None for t in truth_faces)
        scores.add(method, "face_lost", lost / measured if measured else float("nan"))
    motion = np.abs(kps[:, :, :2] - kp_source[None, :, :2]).mean(axis=(1, 2))
    panels = [
        Panel([source, truth[t], *(outputs[m][t] for m in METHODS)], float(motion[t]))
        for t in range(len(kps))
    ]
    row = {
        "clip": clip.name,
        "identity": clip.identity,
        "frames": len(kps),
        "truth_faces_missing": len(truth_faces) - measured,
        **scores.summary(),
    }
    return ItemResult(row, panels)


def cross_reenact(
    model: GeneratorModel, stack: FaceStack, photo: Photo, clip: Clip
) -> ItemResult | None:
    from likeness.faces.geometry import invert_affine
    from likeness.generator.motion import MotionTransfer

    size = photo.crop.shape[0]
    unit = REPORT_SIZE / size
    driving = to_first_crop(clip)
    transfer = MotionTransfer(photo.keypoints, driving[0])
    targets = np.stack([transfer(k) for k in driving])
    outputs = {
        "ours": render_all(model, model.extract_appearance(photo.crop), photo.keypoints, targets),
        "affine": affine_baseline(photo.crop, photo.keypoints, targets),
        "no_motion": np.repeat(photo.crop[None], len(targets), axis=0),
    }
    # The driver is measured in each frame's own crop (as the outputs are, one still
    # image each) and carried into its first frame's crop, where its motion is read.
    drv: list[FaceMeasure | None] = []
    for crop, matrix in zip(clip.crops, clip.matrices, strict=True):
        m = measure(stack, crop)
        drv.append(moved(m, compose(clip.matrices[0], invert_affine(matrix))) if m else None)
    if drv[0] is None:
        return None
    photo_face = measure(stack, photo.crop)
    scores = Scores()
    for method, frames in outputs.items():
        if method == "no_motion":
            faces = [photo_face] * len(frames)
        else:
            faces = [measure(stack, f) for f in frames]
        ref = faces[0] or photo_face  # the output's own first frame, else the photo
        lost = 0
        for got, want in zip(faces[1:], drv[1:], strict=True):
            if want is None:
                continue
            if got is None or ref is None:
                lost += 1
                continue
            pose = fm.relative_pose_error(got.pose, ref.pose, want.pose, drv[0].pose)
            scores.add(method, "pose_error", float(pose.mean()))
            expr = fm.cross_expression_error(
                got.landmarks, ref.landmarks, want.landmarks, drv[0].landmarks
            )
            scores.add(method, "expression_error", expr * unit)
        measured = sum(d is not None for d in drv[1:])
        scores.add(method, "face_lost", lost / measured if measured else float("nan"))
    motion = np.abs(driving[:, :, :2] - driving[:1, :, :2]).mean(axis=(1, 2))
    panels = [
        Panel([photo.crop, clip.crops[t], *(outputs[m][t] for m in METHODS)], float(motion[t]))
        for t in range(1, len(targets))
    ]
    row = {
        "photo": photo.name,
        "driving": clip.name,
        "frames": len(targets) - 1,
        "driving_faces_missing": len(drv) - 1 - measured,
        **scores.summary(),
    }
    return ItemResult(row, panels)


def cross_pairs(inputs: BenchInputs, per_photo: int) -> list[tuple[Photo, Clip]]:
    """Each photo with `per_photo` driving clips of other identities, one clip per
    identity, handed out in turn so the drivers spread over all identities."""
    drivers = first_per_identity(inputs.clips)
    pairs = []
    turn = 0
    for photo in inputs.photos:
        others = [c for c in drivers if c.identity != photo.identity]
        for k in range(min(per_photo, len(others))):
            pairs.append((photo, others[(turn + k) % len(others)]))
        turn += per_photo
    return pairs


def overall(rows: list[dict], group: str | None = None) -> dict:
    """Mean of the rows' per-item means, per method and metric (optionally per group)."""
    if group is not None:
        keys = dict.fromkeys(r[group] for r in rows)
        return {k: overall([r for r in rows if r[group] == k]) for k in keys}
    out: dict[str, dict] = {}
    for method in METHODS:
        metrics = dict.fromkeys(k for r in rows for k in r[method])
        out[method] = {
            k: _mean([v for r in rows if (v := r[method].get(k)) is not None]) for k in metrics
        }
    return out


def beats_baselines(table: dict, metrics: tuple[str, ...]) -> dict[str, bool | None]:
    """Per metric: ours strictly better than both baselines (None: not measured)."""
    out: dict[str, bool | None] = {}
    for metric in metrics:
        ours = table["ours"].get(metric)
        base = [table[m].get(metric) for m in ("affine", "no_motion")]
        if ours is None or any(b is None for b in base):
            out[metric] = None
        elif metric in HIGHER_BETTER:
            out[metric] = all(ours > b for b in base)
        else:
            out[metric] = all(ours < b for b in base)
    return out


# ---------------------------------------------------------------- speed


def _time_render(model, appearance, kp_source, kps, repeats: int) -> float:
    model.render(appearance, kp_source, kps[:BATCH])  # warm-up: first calls allocate
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, len(kps), BATCH):
            model.render(appearance, kp_source, kps[i : i + BATCH])
        best = min(best, time.perf_counter() - t0)
    return len(kps) / best


def model_speed(model: GeneratorModel, clip: Clip, quick: bool) -> dict:
    """render() fps on real driving keypoints at each candidate torch thread count."""
    import torch

    kps = clip.keypoints[1:]
    kps = np.concatenate([kps] * (-(-3 * BATCH // len(kps))))[: 3 * BATCH]
    appearance = model.extract_appearance(clip.crops[0])
    default = torch.get_num_threads()
    by_threads = {}
    try:
        for threads in sorted({1, default}):
            torch.set_num_threads(threads)
            by_threads[threads] = round(
                _time_render(model, appearance, clip.keypoints[0], kps, SPEED_REPEATS[quick]), 2
            )
    finally:
        torch.set_num_threads(default)
    best = max(by_threads, key=by_threads.get)
    return {
        "device": str(model.device),
        "size": model.config.output_size,
        "batch": BATCH,
        "frames": len(kps),
        "fps": by_threads[best],
        "fps_by_torch_threads": by_threads,
        "torch_threads": best,
    }


def gpu_model_speed(model: GeneratorModel, clip: Clip, quick: bool) -> dict | None:
    """render() fps on the GPU, when the quality run used one."""
    import torch

    if model.device.type != "cuda":
        return None
    kps = np.concatenate([clip.keypoints[1:]] * 8)[: 8 * BATCH]
    appearance = model.extract_appearance(clip.crops[0])

    def timed() -> float:
        model.render(appearance, clip.keypoints[0], kps[:BATCH])
        torch.cuda.synchronize()
        return _time_render(model, appearance, clip.keypoints[0], kps, SPEED_REPEATS[quick])

    return {
        "device": torch.cuda.get_device_name(0),
        "size": model.config.output_size,
        "batch": BATCH,
        "fps": round(timed(), 2),
    }


def end_to_end(photo: Path, driving: Path, weights: Path | None, device: str, frames: int) -> dict:
    """`animate` on a held-out photo and driving clip into a temp folder."""
    try:
        from likeness.pipelines.animate import AnimateConfig, prepare
    except ImportError as err:  # the pipeline is optional in partial builds
        return {"measured": False, "reason": f"likeness.pipelines.animate unavailable ({err})"}
    config = AnimateConfig(weights=weights, device=device, max_frames=frames)
    with tempfile.TemporaryDirectory(prefix="likeness-bench-") as tmp:
        t0 = time.perf_counter()
        job = prepare(photo, Path(tmp) / "e2e.mp4", driving, config)
        t1 = time.perf_counter()
        result = job.run()
        t2 = time.perf_counter()
    return {
        "measured": True,
        "how": "likeness.pipelines.animate.animate (prepare + run)",
        "device": device,
        "photo": photo.name,
        "driving": driving.name,
        "frames": result.frames,
        "fps": round(result.frames / (t2 - t1), 2),
        "fps_including_loading": round(result.frames / (t2 - t0), 2),
        "prepare_seconds": round(t1 - t0, 2),
    }


# ---------------------------------------------------------------- pictures


def _label_row(labels: list[str], width: int = CELL) -> np.ndarray:
    row = np.full((LABEL_H, width * len(labels), 3), 255, np.uint8)
    for i, text in enumerate(labels):
        cv2.putText(
            row,
            text[:34],
            (i * width + 6, 17),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return row


def _cells(panel: Panel, caption: str | None = None) -> np.ndarray:
    cells = [
        cv2.resize(im, (CELL, CELL), interpolation=cv2.INTER_LINEAR) if im.shape[0] != CELL else im
        for im in panel.images
    ]
    strip = np.concatenate(cells, axis=1)
    if caption:
        cv2.putText(
            strip,
            caption[:40],
            (6, CELL - 8),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return strip


def column_labels(kind: str) -> list[str]:
    reference = "ground truth" if kind == "self" else "driving"
    return ["source", reference, *(METHOD_LABELS[m] for m in METHODS)]


def video_frames(kind: str, name: str, panels: list[Panel]) -> Iterator[np.ndarray]:
    labels = _label_row(column_labels(kind))
    for panel in panels:
        yield np.concatenate([labels, _cells(panel, f"{kind}: {name}")], axis=0)


def grid(rows: list[tuple[str, str, Panel]]) -> np.ndarray:
    """One row per (kind, name, panel), a label row above each kind's first row."""
    parts = []
    last_kind = None
    for kind, name, panel in rows:
        if kind != last_kind:
            parts.append(_label_row(column_labels(kind)))
            last_kind = kind
        parts.append(_cells(panel, f"{kind}: {name}"))
    return np.concatenate(parts, axis=0)


def grid_picks(items: list[tuple[str, str, ItemResult]], rows: int) -> list[tuple[str, str, Panel]]:
    """The frame with the most driving motion of up to `rows` items, alternating self
    and cross items so both show."""
    selfs = [i for i in items if i[0] == "self"]
    cross = [i for i in items if i[0] == "cross"]
    order = [x for pair in zip(selfs, cross, strict=False) for x in pair]
    longer = selfs if len(selfs) > len(cross) else cross
    order += longer[min(len(selfs), len(cross)) :]
    picks = []
    for kind, name, result in order[:rows]:
        if result.panels:
            picks.append((kind, name, max(result.panels, key=lambda p: p.motion)))
    picks.sort(key=lambda p: p[0] != "self")
    return picks


# ---------------------------------------------------------------- run


def run(
    out_dir: Path,
    quick: bool = False,
    weights: Path | None = None,
    pack: Path | None = None,
    sources: Sources | None = None,
) -> Path:
    """Evaluate the generator in `weights` (default: the shipped model) and write
    generator.json, generator.mp4 and generator.png into `out_dir`."""
    from likeness.config import choose_device
    from likeness.faces import FaceStack
    from likeness.generator.model import DEFAULT_WEIGHTS, GeneratorModel, config_digest
    from likeness.provenance.keys import load_signing
    from likeness.provenance.mark import MarkedVideoWriter, mark_image
    from likeness.ui import progress_bar

    started = time.perf_counter()
    load_before = _load_average()  # other work on the machine slows every figure here
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = choose_device("auto")
    model = GeneratorModel.from_pretrained(weights, device)  # ModelError when missing
    load_signing()  # SetupError naming `likeness keys init` now, not after the work
    size = model.config.output_size
    stack = FaceStack()
    if pack is not None:
        inputs = pack_inputs(Path(pack), size, quick)
    else:
        if sources is None:
            corpus = corpus_dir()
            if corpus is None:
                raise InputError(
                    "the generator benchmark needs ../shared/corpus beside the checkout "
                    "(or LIKENESS_CORPUS) or a pack (--pack DIR)"
                )
            sources = held_out_sources(corpus)
        with progress_bar("faces in test clips", None) as advance:
            inputs = corpus_inputs(sources, stack, size, quick, advance)
    if not inputs.clips or not inputs.photos:
        raise NoFaceError("no held-out clip or photo with a face to evaluate on")
    pairs = cross_pairs(inputs, DRIVERS_PER_PHOTO[quick])

    # Keys load here, before the long part: a missing key fails in seconds.
    writer = MarkedVideoWriter(
        out_dir / "generator.mp4",
        VIDEO_FPS,
        ingredients=inputs.files,
        model_name=model.config.name,
        model_hash=model.weights_hash,
    )

    import torch

    default_threads = torch.get_num_threads()
    cpu_model = model if device == "cpu" else GeneratorModel.from_pretrained(weights, "cpu")
    speed_cpu = model_speed(cpu_model, inputs.clips[0], quick)
    if device == "cpu":
        # On a shared 2-core CPU one thread can be far faster than two (threads wait on
        # each other when the other core is busy): run everything at the faster count.
        torch.set_num_threads(speed_cpu["torch_threads"])
    items: list[tuple[str, str, ItemResult]] = []
    self_rows, cross_rows = [], []
    try:
        with writer:
            total = sum(len(c.crops) - 1 for c in inputs.clips)
            with progress_bar("self-reenactment", total) as advance:
                for clip in inputs.clips:
                    result = self_reenact(model, stack, clip)
                    self_rows.append(result.row)
                    items.append(("self", clip.name, result))
                    for frame in video_frames("self", clip.name, result.panels):
                        writer.write(frame)
                    advance(len(clip.crops) - 1)
                    result.panels = _keep_best(result.panels)
            total = sum(len(c.crops) - 1 for _, c in pairs)
            with progress_bar("cross-reenactment", total) as advance:
                for photo, clip in pairs:
                    name = f"{photo.name} x {clip.name}"
                    result = cross_reenact(model, stack, photo, clip)
                    advance(len(clip.crops) - 1)
                    if result is None:
                        inputs.notes.append(f"{name}: no face on the first driving crop, left out")
                        continue
                    cross_rows.append(result.row)
                    items.append(("cross", name, result))
                    for frame in video_frames("cross", name, result.panels):
                        writer.write(frame)
                    result.panels = _keep_best(result.panels)
        video = writer.result
        picture = mark_image(
            grid(grid_picks(items, GRID_ROWS)),
            out_dir / "generator.png",
            ingredients=inputs.files,
            model_name=model.config.name,
            model_hash=model.weights_hash,
        )

        e2e_photo, e2e_driving = pairs[0] if pairs else (inputs.photos[0], inputs.clips[0])
        speed = {
            "model_only_cpu": speed_cpu,
            "model_only_gpu": gpu_model_speed(model, inputs.clips[0], quick)
            or "not measured: no CUDA device in this run",
            "end_to_end_cpu": end_to_end(
                e2e_photo.path, e2e_driving.path, weights, "cpu", E2E_FRAMES[quick]
            ),
        }
        if device == "cuda":
            speed["end_to_end_gpu"] = end_to_end(
                e2e_photo.path, e2e_driving.path, weights, "cuda", E2E_FRAMES[quick]
            )
    finally:
        torch.set_num_threads(default_threads)

    self_table = overall(self_rows)
    cross_table = overall(cross_rows) if cross_rows else None
    result = {
        "benchmark": "generator",
        "machine": {
            **machine_info(),
            "load_average_at_start": load_before,
            "load_average_at_end": _load_average(),
        },
        "model": {
            "name": model.config.name,
            "weights": str(weights or DEFAULT_WEIGHTS),
            "weights_sha256": model.weights_hash,
            "config_digest": config_digest(model.config),
            "image_size": model.config.image_size,
            "output_size": size,
            "device": device,
        },
        "inputs": {
            "origin": inputs.origin,
            "quick": quick,
            "frames_per_clip": FRAMES[quick],
            "clips": [c.name for c in inputs.clips],
            "photos": [p.name for p in inputs.photos],
            "cross_pairs": [f"{p.name} x {c.name}" for p, c in pairs],
            "notes": inputs.notes,
        },
        "method": METHOD_TEXT,
        "self_reenactment": {
            "overall": self_table,
            "by_identity": overall(self_rows, "identity"),
            "clips": self_rows,
        },
        "cross_reenactment": {"overall": cross_table, "pairs": cross_rows},
        "speed": speed,
        "targets": targets(self_table, cross_table, speed),
        "outputs": {
            "video": {"file": video.target.name, "frames": writer.frames, **_sign_info(video)},
            "grid": {"file": picture.target.name, **_sign_info(picture)},
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    return write_json(out_dir, "generator", result)


def _keep_best(panels: list[Panel]) -> list[Panel]:
    """Only the panel the grid may use stays in memory (the MP4 has the rest)."""
    return [max(panels, key=lambda p: p.motion)] if panels else []


def _sign_info(result) -> dict:
    return {
        "sha256": result.sha256,
        "watermark_payload": result.payload_hex,
        "manifest": result.manifest_label,
    }


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def targets(self_table: dict, cross_table: dict | None, speed: dict) -> dict:
    beats = {f"self.{k}": v for k, v in beats_baselines(self_table, SELF_METRICS).items()}
    if cross_table is not None:
        beats.update(
            {f"cross.{k}": v for k, v in beats_baselines(cross_table, CROSS_METRICS).items()}
        )
    psnr, ssim = self_table["ours"].get("psnr"), self_table["ours"].get("ssim")
    e2e = speed.get("end_to_end_cpu") or {}
    fps = e2e.get("fps")
    return {
        "beats_both_baselines": {
            "per_metric": beats,
            "met": all(v is True for v in beats.values()),
        },
        "self_psnr": {
            "target": TARGET_PSNR,
            "value": psnr,
            "met": psnr is not None and psnr >= TARGET_PSNR,
        },
        "self_ssim": {
            "target": TARGET_SSIM,
            "value": ssim,
            "met": ssim is not None and ssim >= TARGET_SSIM,
        },
        "end_to_end_cpu_fps": {
            "target": TARGET_E2E_FPS,
            "value": fps,
            "met": fps is not None and fps >= TARGET_E2E_FPS,
        },
    }
