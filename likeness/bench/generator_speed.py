"""`likeness bench generator`, its speed half: render() alone (CPU at each candidate
torch thread count, and the GPU when there is one) and `animate` end to end."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from likeness.bench.generator_inputs import Clip
from likeness.bench.generator_quality import BATCH

if TYPE_CHECKING:
    from likeness.generator.model import GeneratorModel
    from likeness.pipelines.animate import AnimateResult
    from likeness.pipelines.configs import AnimateConfig

SPEED_REPEATS = {False: 3, True: 1}


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


def end_to_end(
    photo: Path,
    driving: Path,
    weights: Path | None,
    device: str,
    frames: int,
    keypoints: str = "mesh",
) -> dict:
    """`animate` (`--keypoints keypoints`) on a held-out photo and driving clip into a
    temp folder."""
    try:
        from likeness.pipelines.animate import AnimateConfig
    except ImportError as err:  # the pipeline is optional in partial builds
        return {"measured": False, "reason": f"likeness.pipelines.animate unavailable ({err})"}
    config = AnimateConfig(weights=weights, device=device, max_frames=frames, keypoints=keypoints)
    with tempfile.TemporaryDirectory(prefix="likeness-bench-") as tmp:
        _, timing = timed_animate(photo, Path(tmp) / "e2e.mp4", driving, config)
    return {
        "measured": True,
        "how": "likeness.pipelines.animate.animate (prepare + run)",
        "device": device,
        "keypoints": keypoints,
        "photo": photo.name,
        "driving": driving.name,
        **timing,
    }


def timed_animate(
    source: Path, out: Path, driving: Path, config: AnimateConfig
) -> tuple[AnimateResult, dict]:
    """`prepare` + `run` of one animate job, and its row's timing fields: frames, fps of
    the run alone, fps with the loading, and the seconds `prepare` took."""
    from likeness.pipelines.animate import prepare

    t0 = time.perf_counter()
    job = prepare(source, out, driving, config)
    t1 = time.perf_counter()
    result = job.run()
    t2 = time.perf_counter()
    return result, {
        "frames": result.frames,
        "fps": round(result.frames / (t2 - t1), 2),
        "fps_including_loading": round(result.frames / (t2 - t0), 2),
        "prepare_seconds": round(t1 - t0, 2),
    }


TARGET_VIDEO_SOURCE_FPS = 4.0  # issue 16: a 512 px video source, end to end on the CPU


def video_source_pair(
    clips: list, driving: Path, more: Sequence[Path] = ()
) -> tuple[Path, Path] | None:
    """A source video of about 512 px a side (the target's size), driven by `driving`:
    a held-out clip when one is that big, else one of `more` (the corpus's videos:
    speed does not care about the identity split, and the held-out clips are mostly
    256 px crops). None when there is none."""
    candidates = [clip.path for clip in clips] + list(more)
    best = _closest_to_512([p for p in candidates if p != driving])
    return (best, driving) if best is not None else None


def _closest_to_512(paths: list[Path]) -> Path | None:
    from likeness.errors import LikenessError
    from likeness.media import probe

    best: tuple[int, Path] | None = None
    for path in paths:
        try:
            info = probe(path)
        except LikenessError:
            continue
        side = min(info.width, info.height)
        if side < 480:
            continue
        if best is None or abs(side - 512) < best[0]:
            best = (abs(side - 512), path)
        if best[0] == 0:
            break
    return best[1] if best is not None else None


def end_to_end_video_source(
    source: Path, driving: Path, weights: Path | None, device: str, frames: int
) -> dict:
    """`animate SOURCE.mp4 DRIVING.mp4`: per frame both videos decoded and tracked, the
    source face cropped and encoded, rendered, pasted back, watermarked, encoded."""
    from likeness.media import probe
    from likeness.pipelines.animate import AnimateConfig

    config = AnimateConfig(weights=weights, device=device, max_frames=frames)
    with tempfile.TemporaryDirectory(prefix="likeness-bench-") as tmp:
        _, timing = timed_animate(source, Path(tmp) / "video-source.mp4", driving, config)
    info = probe(source)
    return {
        "measured": True,
        "how": "likeness.pipelines.animate.prepare + run with a video source (scene path)",
        "device": device,
        "source": source.name,
        "source_size": [info.width, info.height],
        "driving": driving.name,
        **timing,
        "target_fps": TARGET_VIDEO_SOURCE_FPS,
    }
