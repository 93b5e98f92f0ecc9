"""`likeness bench generator`, its quality half: self- and cross-reenactment of held-out
clips and photos by the model and by the two baselines (affine warp, no motion), each
output measured by the face stack, and the tables that compare them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from likeness.bench import face_metrics as fm
from likeness.bench.generator_inputs import (
    BenchInputs,
    Clip,
    Photo,
    first_per_identity,
    to_first_crop,
)

if TYPE_CHECKING:
    from likeness.faces import FaceStack
    from likeness.generator.model import GeneratorModel

METHODS = ("ours", "affine", "no_motion")
# Self-reenactment only, beside METHODS: the model driven by its own motion extractor
# (`--keypoints learned`) instead of the face mesh ("ours"). Not in the MP4's panels.
LEARNED = "learned"
METHOD_LABELS = {
    "ours": "ours",
    "affine": "affine warp",
    "no_motion": "no motion",
    LEARNED: "ours, learnt keypoints",
}
BATCH = 8  # frames per render call, as `animate` batches them
REPORT_SIZE = 256  # pixel figures are given in pixels of a 256 px crop
# Higher is better for these; lower for every other metric.
HIGHER_BETTER = frozenset({"psnr", "ssim", "face_psnr", "mouth_corr"})

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
    from likeness.faces.geometry import apply_affine, apply_affine_3d
    from likeness.faces.pose import head_pose

    landmarks = apply_affine_3d(matrix, m.landmarks)
    irises = apply_affine(matrix, m.irises)
    return FaceMeasure(landmarks, irises, np.asarray(head_pose(landmarks).as_tuple()))


# ---------------------------------------------------------------- evaluation


class Scores:
    """Per-frame values by method and metric; summaries are NaN-aware means."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, list[float]]] = {m: {} for m in METHODS}

    def add(self, method: str, metric: str, values) -> None:
        metrics = self.values.setdefault(method, {})
        metrics.setdefault(metric, []).extend(np.atleast_1d(values).tolist())

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


def eye_scores(frames: np.ndarray, truth: np.ndarray, kps: np.ndarray) -> dict[str, list]:
    """Per frame, in both eyes' boxes of the truth's keypoints: eye_l1 (mean absolute
    error, [0, 1]) and eye_sharpness (Laplacian variance over the truth's: 1.0 is as
    sharp as the real frame, a blurry render scores below it)."""
    from likeness.generator.refiner.mask import region_boxes
    from likeness.generator.refiner.metrics import sharpness_ratio

    l1, sharp = [], []
    for frame, want, kp in zip(frames, truth, kps, strict=True):
        boxes = region_boxes(kp, frame.shape[0])
        errors = [
            np.abs(frame[y0:y1, x0:x1].astype(np.float32) - want[y0:y1, x0:x1]).mean() / 255
            for name, (x0, y0, x1, y1) in boxes.items()
            if name.endswith("eye") and x1 > x0 and y1 > y0
        ]
        l1.append(float(np.mean(errors)) if errors else float("nan"))
        sharp.append(sharpness_ratio(frame, want, kp)["eyes"])
    return {"eye_l1": l1, "eye_sharpness": sharp}


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
    appearance = model.extract_appearance(source)
    outputs = {
        "ours": render_all(model, appearance, kp_source, kps),
        "affine": affine_baseline(source, kp_source, kps),
        "no_motion": np.repeat(source[None], len(kps), axis=0),
    }
    if clip.aligned is not None:
        learned = learned_keypoints(model, clip, kp_source)
        outputs[LEARNED] = render_all(model, appearance, kp_source, learned[1:])
    truth_faces = [measure(stack, t) for t in truth]
    masks = [fm.face_mask(t.landmarks, size) if t else None for t in truth_faces]
    source_face = measure(stack, source)
    scores = Scores()
    for method, frames in outputs.items():
        img = fm.image_scores(frames, truth, masks)
        for name in ("psnr", "ssim", "l1", "face_psnr"):
            scores.add(method, name, getattr(img, name))
        for name, values in eye_scores(frames, truth, kps).items():
            scores.add(method, name, values)
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
        scores.add(method, "mouth_corr", mouth_correlation(faces, truth_faces))
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


def learned_keypoints(model: GeneratorModel, clip: Clip, kp_source: np.ndarray) -> np.ndarray:
    """Driving keypoints (N, K, 3) as `animate --keypoints learned` makes them: the
    extractor on each frame's own aligned crop, carried into the first frame's window,
    then relative motion (default TransferConfig) onto the source's mesh keypoints, so
    the extractor's offset from the mesh on frame 0 cancels out as it does in animate.
    (The mesh row needs no transfer: relative motion of the mesh onto its own frame 0
    gives back the mesh keypoints exactly.) No temporal smoothing on either row beyond
    the tracker's."""
    from likeness.generator.gaze import carry_irises
    from likeness.generator.motion import MotionTransfer
    from likeness.pipelines.driving import keypoints_between

    size = clip.crops.shape[1]
    raw = np.concatenate(
        [
            model.extract_motion(clip.aligned[i : i + BATCH])
            for i in range(0, len(clip.aligned), BATCH)
        ]
    )
    first = clip.matrices[0]
    in_first = np.stack(
        [
            keypoints_between(kp, m, first, size)
            for kp, m in zip(raw, clip.aligned_matrices, strict=True)
        ]
    )
    # As DrivingKeypoints does: the tracked irises on the learnt eye corners.
    in_first = np.stack(
        [carry_irises(k, mesh) for k, mesh in zip(in_first, clip.keypoints, strict=True)]
    )
    transfer = MotionTransfer(kp_source, in_first[0])
    return np.stack([transfer(k) for k in in_first])


def cross_reenact(
    model: GeneratorModel, stack: FaceStack, photo: Photo, clip: Clip
) -> ItemResult | None:
    from likeness.faces.geometry import compose_affine, invert_affine
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
        drv.append(moved(m, compose_affine(clip.matrices[0], invert_affine(matrix))) if m else None)
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
        scores.add(method, "mouth_corr", mouth_correlation(faces[1:], drv[1:]))
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


def mouth_correlation(got: list, want: list) -> float:
    """Per-frame correlation of the output's mouth-open ratio with the reference's (the
    truth, or the driver), over frames where both have a face; NaN when either does not
    vary (no motion) or fewer than 3 frames were measured."""
    pairs = [(g, w) for g, w in zip(got, want, strict=True) if g is not None and w is not None]
    return fm.correlation(
        [fm.mouth_open(g.landmarks) for g, _ in pairs],
        [fm.mouth_open(w.landmarks) for _, w in pairs],
    )


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
    for method in [m for m in (*METHODS, LEARNED) if any(m in r for r in rows)]:
        metrics = dict.fromkeys(k for r in rows for k in r[method])
        out[method] = {
            k: _mean([v for r in rows if (v := r[method].get(k)) is not None]) for k in metrics
        }
    return out


def _goodness(metric: str, value: float) -> float:
    """`value` oriented so that more is better (HIGHER_BETTER as is, the rest negated)."""
    return value if metric in HIGHER_BETTER else -value


def learned_vs_mesh(table: dict, metrics: tuple[str, ...]) -> dict[str, bool | None]:
    """Per metric: the learnt keypoints' row at least as good as the mesh's ("ours";
    None: not measured), the issue's bar for making `--keypoints learned` the default."""
    out: dict[str, bool | None] = {}
    for metric in metrics:
        got, mesh = table.get(LEARNED, {}).get(metric), table["ours"].get(metric)
        if got is None or mesh is None:
            out[metric] = None
        else:
            out[metric] = _goodness(metric, got) >= _goodness(metric, mesh)
    return out


def beats_baselines(table: dict, metrics: tuple[str, ...]) -> dict[str, bool | None]:
    """Per metric: ours strictly better than both baselines (None: not measured)."""
    out: dict[str, bool | None] = {}
    for metric in metrics:
        ours = table["ours"].get(metric)
        base = [table[m].get(metric) for m in ("affine", "no_motion")]
        if ours is None or any(b is None for b in base):
            out[metric] = None
        else:
            out[metric] = all(_goodness(metric, ours) > _goodness(metric, b) for b in base)
    return out
