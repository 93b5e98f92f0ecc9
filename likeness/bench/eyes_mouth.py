"""Eyes and mouth of reenactment, per frame: does the output's gaze and mouth opening
follow the driver's? (issue 15, items 2 and 3)

For each held-out clip, self-reenactment from its first frame (as `bench generator`):
every frame's output and ground truth are measured by the face stack as still images,
and per frame we keep

- the mouth-open ratio (inner-lip gap over the outer eye-corner distance) of the
  output, of the truth, and of the driving keypoints themselves;
- gaze coordinates (`face_metrics.gaze_coords`) of the output, the truth, the source
  and the keypoints' own iris rows;

so a loss can be placed: the keypoints carry the motion but the render drops it (the
model), or the keypoints already lack it (tracking, transfer, smoothing).

    python -m likeness.bench.eyes_mouth --clips lp-d12.mp4 ls-demo2.mp4 --frames 24

Only test-split files are accepted (`likeness/datasets/split.tsv`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from likeness.bench import face_metrics as fm


@dataclass
class FrameSeries:
    """Per-frame measurements of one clip (frames 1..N; NaN where no face was found)."""

    clip: str
    mouth_out: np.ndarray
    mouth_truth: np.ndarray
    mouth_kp: np.ndarray
    gaze_out: np.ndarray  # (N, 2, 2)
    gaze_truth: np.ndarray
    gaze_kp: np.ndarray
    gaze_source: np.ndarray  # (2, 2)
    psnr: np.ndarray
    ssim: np.ndarray
    l1: np.ndarray
    # Mean |frame-to-frame change of the output - that of the truth| (pixels in [0, 1]):
    # lag and jitter both count; read it on --consecutive frames.
    motion_error: float = float("nan")
    motion_out: float = float("nan")  # mean |frame-to-frame change| of the output
    motion_truth: float = float("nan")  # ... and of the truth

    def summary(self) -> dict:
        def err(a: np.ndarray) -> float:
            ok = np.isfinite(a).all(axis=(1, 2)) & np.isfinite(self.gaze_truth).all(axis=(1, 2))
            return float(np.linalg.norm(a[ok] - self.gaze_truth[ok], axis=2).mean())

        still = np.repeat(self.gaze_source[None], len(self.gaze_truth), axis=0)
        return {
            "clip": self.clip,
            "frames": len(self.mouth_truth),
            "mouth_corr_out": fm.correlation(self.mouth_out, self.mouth_truth),
            "mouth_corr_kp": fm.correlation(self.mouth_kp, self.mouth_truth),
            "mouth_gain_out": fm.gain(self.mouth_out, self.mouth_truth),
            "mouth_gain_kp": fm.gain(self.mouth_kp, self.mouth_truth),
            "mouth_truth_range": float(np.nanmax(self.mouth_truth) - np.nanmin(self.mouth_truth)),
            "gaze_out": err(self.gaze_out),
            "gaze_kp": err(self.gaze_kp),
            "gaze_still": err(still),
            "gaze_corr_out": fm.correlation(
                self.gaze_out[:, :, 0].mean(1), self.gaze_truth[:, :, 0].mean(1)
            ),
            "gaze_corr_kp": fm.correlation(
                self.gaze_kp[:, :, 0].mean(1), self.gaze_truth[:, :, 0].mean(1)
            ),
            "psnr": float(np.nanmean(self.psnr)),
            "ssim": float(np.nanmean(self.ssim)),
            "l1": float(np.nanmean(self.l1)),
            "motion_error": self.motion_error,
            "motion_out": self.motion_out,
            "motion_truth": self.motion_truth,
        }


def _nan_gaze() -> np.ndarray:
    return np.full((2, 2), np.nan)


def measure_clip(model, stack, clip, lip_gain: float = 1.0) -> FrameSeries:
    """Self-reenactment of `clip` from its first frame with its own tracked keypoints
    (frames 1..N), the lips' and jaw's expression change scaled by `lip_gain`."""
    from likeness.bench.generator_quality import measure, render_all
    from likeness.generator import keypoints as kpt
    from likeness.generator.motion import amplify_rows

    size = clip.crops.shape[1]
    source, truth = clip.crops[0], clip.crops[1:]
    kp_source = clip.keypoints[0]
    rows = (*kpt.LIP_ROWS, *kpt.JAW_ROWS)
    kps = np.stack([amplify_rows(kp_source, k, rows, lip_gain) for k in clip.keypoints[1:]])
    frames = render_all(model, model.extract_appearance(source), kp_source, kps)
    img = fm.image_scores(frames, truth)
    src_face = measure(stack, source)
    series = {k: [] for k in ("mo", "mt", "go", "gt")}
    for out, want in zip(frames, truth, strict=True):
        for tag, image in (("o", out), ("t", want)):
            m = measure(stack, image)
            series["m" + tag].append(fm.mouth_open(m.landmarks) if m else np.nan)
            series["g" + tag].append(fm.gaze_coords(m.landmarks, m.irises) if m else _nan_gaze())
    d_out = np.diff(frames.astype(np.float32) / 255, axis=0)
    d_truth = np.diff(truth.astype(np.float32) / 255, axis=0)
    px = kpt.to_pixels(kps, size)
    gaze_kp = np.stack([fm.gaze_coords_kp(k) for k in px])
    return FrameSeries(
        clip.name,
        np.array(series["mo"]),
        np.array(series["mt"]),
        # mouth_shape's gap is over the same outer eye-corner distance as mouth_open's
        kpt.mouth_shape(kps)[:, 0],
        np.stack(series["go"]),
        np.stack(series["gt"]),
        gaze_kp,
        fm.gaze_coords(src_face.landmarks, src_face.irises) if src_face else _nan_gaze(),
        img.psnr,
        img.ssim,
        img.l1,
        float(np.abs(d_out - d_truth).mean()),
        float(np.abs(d_out).mean()),
        float(np.abs(d_truth).mean()),
    )


def smooth_driving(
    clip, how: str, head_cutoff: float | None = None, expression_cutoff: float | None = None
) -> np.ndarray:
    """The clip's (unsmoothed, consecutive) keypoints smoothed as `animate` did before
    (`head`: one One Euro filter) or does now (`split`: kp_smooth, its head and
    expression filters' still cut-offs `head_cutoff` and `expression_cutoff` Hz where
    given), or not at all."""
    from likeness.faces.smooth import OneEuroFilter
    from likeness.generator.kp_smooth import EXPRESSION, HEAD, KeypointSmoother
    from likeness.media import probe
    from likeness.pipelines.driving import _interocular

    if how == "none":
        return clip.keypoints
    fps = probe(clip.path).fps or 25.0
    if how == "head":
        smoother = OneEuroFilter()
    else:
        head = HEAD if head_cutoff is None else replace(HEAD, min_cutoff=head_cutoff)
        expression = (
            EXPRESSION
            if expression_cutoff is None
            else replace(EXPRESSION, min_cutoff=expression_cutoff)
        )
        smoother = KeypointSmoother(head=head, expression=expression)
    scale = _interocular(clip.keypoints[0])
    return np.stack(
        [smoother(k, i / fps, scale=scale) for i, k in enumerate(clip.keypoints)]
    ).astype(np.float32)


def load_clips(names: list[str], frames: int, stack, size: int, smooth: bool = True, every=None):
    from likeness.bench.common import corpus_dir
    from likeness.bench.generator_inputs import held_out_sources, load_clip
    from likeness.errors import InputError

    corpus = corpus_dir()
    if corpus is None:
        raise InputError("../shared/corpus not found beside the checkout (set LIKENESS_CORPUS)")
    held = {p.name: p for p in held_out_sources(corpus).videos}
    clips = []
    for name in names:
        if name not in held:
            raise InputError(f"{name} is not a test-split video (see likeness/datasets/split.tsv)")
        clip = load_clip(held[name], stack, size, frames, smooth=smooth, every=every)
        if clip is not None:
            clips.append(clip)
    return clips


def consecutive_self_reenactment(
    model, stack, paths: list[Path], frames: int, advance: Callable[[int], None] | None = None
) -> dict:
    """Self-reenactment on each clip's first `frames` frames in a row, the driving
    keypoints smoothed as `animate` smooths them (`kp_smooth`): per clip `measure_clip`'s
    summary, and their mean. What sparse frames cannot show: the smoothing's lag and
    jitter (`motion_error`) and the mouth and gaze at the rate a driver moves them."""
    from likeness.bench.generator_inputs import load_clip

    rows = []
    for path in paths:
        clip = load_clip(path, stack, model.config.output_size, frames, smooth=False, every=1)
        if clip is not None and len(clip.crops) >= 3:  # else no face, or too few frames
            clip.keypoints = smooth_driving(clip, "split")
            rows.append(measure_clip(model, stack, clip).summary())
        if advance is not None:
            advance(1)
    keys = [k for k in (rows[0] if rows else {}) if k not in ("clip", "frames")]
    mean = {k: round(float(np.nanmean([r[k] for r in rows])), 5) for k in keys}
    return {"frames": frames, "clips": rows, "overall": mean}


def main(argv: list[str] | None = None) -> None:
    from likeness.faces import FaceStack
    from likeness.generator.model import GeneratorModel

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", nargs="+", default=["lp-d12.mp4", "ls-demo2.mp4"])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--json", type=Path, help="write per-clip summaries here")
    ap.add_argument("--unsmoothed", action="store_true", help="tracker without One Euro")
    ap.add_argument("--lip-gain", type=float, default=1.0, help="lip/jaw expression gain")
    ap.add_argument(
        "--consecutive",
        action="store_true",
        help="the first --frames frames in a row, unsmoothed, then --driving-smooth as animate",
    )
    ap.add_argument("--driving-smooth", choices=("none", "head", "split"), default="split")
    ap.add_argument("--head-cutoff", type=float, help="split: the head filter's still cut-off (Hz)")
    ap.add_argument(
        "--expression-cutoff", type=float, help="split: the lips' and lids' still cut-off (Hz)"
    )
    ap.add_argument("--weights", type=Path, help="model folder (default: the shipped model)")
    args = ap.parse_args(argv)
    model = GeneratorModel.from_pretrained(args.weights)
    stack = FaceStack()
    size = model.config.output_size
    if args.consecutive:
        clips = load_clips(args.clips, args.frames, stack, size, False, every=1)
        for clip in clips:
            clip.keypoints = smooth_driving(
                clip, args.driving_smooth, args.head_cutoff, args.expression_cutoff
            )
    else:
        clips = load_clips(args.clips, args.frames, stack, size, not args.unsmoothed)
    rows = [measure_clip(model, stack, c, lip_gain=args.lip_gain).summary() for c in clips]
    keys = [k for k in rows[0] if k not in ("clip", "frames")]
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
    for r in [*rows, {"clip": "MEAN", "frames": "", **mean}]:
        print(r["clip"], " ".join(f"{k}={r[k]:.4f}" for k in keys))
    if args.json:
        args.json.write_text(json.dumps({"clips": rows, "mean": mean}, indent=1))


if __name__ == "__main__":
    main()
