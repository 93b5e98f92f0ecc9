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

The parts: generator_inputs (held-out clips and photos), generator_quality (the
reenactments, baselines and tables), generator_speed, generator_pictures; this module
runs them and writes the figures.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from likeness.bench.common import corpus_dir, machine_info, write_json
from likeness.bench.eyes_mouth import consecutive_self_reenactment
from likeness.bench.generator_film import film_scene
from likeness.bench.generator_inputs import (
    FRAMES,
    Sources,
    corpus_inputs,
    held_out_sources,
    pack_inputs,
)
from likeness.bench.generator_pictures import grid, grid_picks, video_frames
from likeness.bench.generator_quality import (
    ItemResult,
    Panel,
    beats_baselines,
    cross_pairs,
    cross_reenact,
    learned_vs_mesh,
    overall,
    self_reenact,
)
from likeness.bench.generator_speed import (
    TARGET_VIDEO_SOURCE_FPS,
    end_to_end,
    end_to_end_video_source,
    gpu_model_speed,
    model_speed,
    video_source_pair,
)
from likeness.errors import InputError, NoFaceError

DRIVERS_PER_PHOTO = {False: 2, True: 1}
E2E_FRAMES = {False: 50, True: 12}
# Frames in a row per clip for the consecutive row (40: 1.6 s at 25 fps, enough for the
# smoothing's lag to show; the 12-07 smoothing measurements used the same).
CONSECUTIVE_FRAMES = {False: 40, True: 12}
VIDEO_FPS = 10.0  # sampled frames are several source frames apart: play them slower
GRID_ROWS = 8
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
    "learned": "self-reenactment row 'learned': as 'ours' but the driving keypoints come "
    "from the model's motion extractor (`animate --keypoints learned`): the extractor on "
    "each frame's own aligned crop (align_face on that frame's tracked face), carried "
    "into frame 0's window, relative motion (MotionTransfer, default TransferConfig) "
    "onto frame 0's mesh keypoints; 'ours' is the mesh row. learned_vs_mesh: the learnt "
    "row at least as good as the mesh row on every self-reenactment metric.",
    "self_reenactment_consecutive": "each test video's first frames in a row (40; quick "
    "12), tracked unsmoothed, then the driving keypoints smoothed as animate smooths them "
    "(kp_smooth: head and expression filters); self-reenactment from the first frame "
    "(bench.eyes_mouth.measure_clip): mouth-open correlation and gain against the real "
    "frames', gaze error, PSNR/SSIM/L1, and motion_error: the mean |frame-to-frame change "
    "of the output - that of the truth| (lag and jitter both count). The 60 frames "
    "spread over each clip above cannot show what smoothing does.",
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
    "ground truth's mesh; eye_l1: L1 inside both eyes' boxes (the generator loss's "
    "boxes around the truth's eye keypoints); eye_sharpness: Laplacian variance in those "
    "boxes over the truth's (1.0: as sharp as the real frame).",
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
    "speed": "end_to_end_cpu_learned: the end-to-end run with --keypoints learned. "
    "Model only: render() at the model's output size in batches of 8, warm-up "
    "excluded, best of several repeats, at 1 torch thread and at torch's default count "
    "(the faster is used for the rest of the run). End to end: likeness.generator."
    "pipeline.animate on a held-out photo and driving clip, written to a temp folder "
    "(decode, face tracking, keypoints, motion transfer, render, paste-back into the "
    "photo, watermark, H.264 encode, C2PA signing); fps = frames / seconds of "
    "Animation.run(), prepare() (model, face stack and key loading) timed apart. "
    "Video source: the biggest held-out clip of 480 px or more as the source video "
    "(its own face tracked, cropped and encoded every frame), driven by the same "
    "driving clip, timed the same way (target 4 fps for a 512 px source).",
}


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
    corpus_videos: list[Path] = []  # the video-source row's fallback source
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
            corpus_videos = sorted((corpus / "videos").glob("*.mp4"))
        inputs = corpus_inputs(sources, stack, size, quick, progress_bar)
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
            "end_to_end_cpu_learned": end_to_end(
                e2e_photo.path, e2e_driving.path, weights, "cpu", E2E_FRAMES[quick], "learned"
            ),
        }
        if device == "cuda":
            speed["end_to_end_gpu"] = end_to_end(
                e2e_photo.path, e2e_driving.path, weights, "cuda", E2E_FRAMES[quick]
            )
        video_pair = video_source_pair(inputs.clips, e2e_driving.path, corpus_videos)
        speed["end_to_end_video_source_cpu"] = (
            end_to_end_video_source(*video_pair, weights, "cpu", E2E_FRAMES[quick])
            if video_pair is not None
            else {"measured": False, "reason": "no held-out clip of 480 px or more"}
        )
        # A cut-and-pan driving clip: fps and the output's jump at the cut.
        speed["film_scene_cpu"] = film_scene(e2e_photo.path, inputs.clips, weights, quick)
        if pack is None:
            with progress_bar("self-reenactment, consecutive frames", len(inputs.clips)) as step:
                consecutive = consecutive_self_reenactment(
                    model, stack, [c.path for c in inputs.clips], CONSECUTIVE_FRAMES[quick], step
                )
        else:
            consecutive = {"measured": False, "reason": "a pack holds sampled frames, not clips"}
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
        "self_reenactment_consecutive": consecutive,
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


def _video_source_target(speed: dict) -> dict:
    row = speed.get("end_to_end_video_source_cpu") or {}
    fps = row.get("fps")
    return {
        "target": TARGET_VIDEO_SOURCE_FPS,
        "value": fps,
        "met": fps is not None and fps >= TARGET_VIDEO_SOURCE_FPS,
    }


def targets(self_table: dict, cross_table: dict | None, speed: dict) -> dict:
    beats = {f"self.{k}": v for k, v in beats_baselines(self_table, SELF_METRICS).items()}
    learned = learned_vs_mesh(self_table, (*SELF_METRICS, "mouth_corr"))
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
        "learned_at_least_mesh": {
            "per_metric": learned,
            "met": bool(learned) and all(v is True for v in learned.values()),
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
        "end_to_end_video_source_cpu_fps": _video_source_target(speed),
    }
