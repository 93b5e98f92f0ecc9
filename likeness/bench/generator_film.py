"""`likeness bench generator`, its film-scene row: `animate` end to end on a cut-and-pan
driving clip, and how far the output jumps at the cut.

The clip is made from two held-out clips of different people: shot 1 pans (a 256 px
window sliding 64 px across the first clip's frames scaled to 320 px, so the face
crosses the frame), then a hard cut to shot 2, the second clip framed wider and to
the right (a close-up cut to another person's medium shot). The cut jump ratio is the
output's mean absolute frame-to-frame change across the cut over the median change of
the whole output: 1 is an ordinary frame; the issue's bound is 3.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from likeness.bench.generator_inputs import Clip

SHOT_FRAMES = {False: 40, True: 8}
SIZE, PAN = 256, 64  # window and pan, pixels
TARGET_RATIO = 3.0


def _shots(first: Path, second: Path, n: int) -> tuple[list[np.ndarray], int]:
    """The clip's frames and the index of shot 2's first frame."""
    from likeness.media import iter_frames

    wide = SIZE + PAN
    shot1 = [
        cv2.resize(f.image, (wide, wide), interpolation=cv2.INTER_AREA)
        for f in iter_frames(first, max_frames=n)
    ]
    frames = []
    for i, rgb in enumerate(shot1):
        x = round(PAN * i / max(len(shot1) - 1, 1))
        frames.append(np.ascontiguousarray(rgb[PAN // 2 : PAN // 2 + SIZE, x : x + SIZE]))
    inner = SIZE * 2 // 3
    for f in iter_frames(second, max_frames=n):
        small = cv2.resize(f.image, (inner, inner), interpolation=cv2.INTER_AREA)
        top = SIZE // 12
        frames.append(
            cv2.copyMakeBorder(
                small, top, SIZE - top - inner, SIZE - inner, 0, cv2.BORDER_REPLICATE
            )
        )
    return frames, len(shot1)


def _two_people(clips: list[Clip]) -> tuple[Clip, Clip] | None:
    for a in clips:
        for b in clips:
            if a.identity != b.identity:
                return a, b
    return None


def film_scene(photo: Path, clips: list[Clip], weights: Path | None, quick: bool) -> dict:
    """The film-scene row: fps end to end (CPU) and the cut jump ratio."""
    from likeness.bench.generator_speed import timed_animate
    from likeness.media import VideoWriter, iter_frames
    from likeness.pipelines.animate import AnimateConfig

    pair = _two_people(clips)
    if pair is None:
        return {"measured": False, "reason": "needs held-out clips of two people"}
    n = SHOT_FRAMES[quick]
    frames, cut = _shots(pair[0].path, pair[1].path, n)
    if cut < 4 or len(frames) - cut < 4:
        return {"measured": False, "reason": "held-out clips too short for two shots"}
    with tempfile.TemporaryDirectory(prefix="likeness-bench-film-") as tmp:
        driving = Path(tmp) / "film-scene.mp4"
        with VideoWriter(driving, 25, crf=16, preset="veryfast") as writer:
            for rgb in frames:
                writer.write(rgb)
        config = AnimateConfig(weights=weights, device="cpu")
        result, timing = timed_animate(photo, Path(tmp) / "out.mp4", driving, config)
        change, before = [], None
        for f in iter_frames(result.output):  # one frame at a time: any length
            now = f.image.astype(np.float32)
            if before is not None:
                change.append(float(np.abs(now - before).mean()))
            before = now
    change = np.array(change)
    median = float(np.median(change))
    ratio = float(change[cut - 1] / median) if median > 0 else None
    return {
        "measured": True,
        "how": "likeness.pipelines.animate (prepare + run) on a cut-and-pan clip "
        f"(shot 1: {pair[0].name} panned {PAN} px; shot 2: {pair[1].name} framed wider)",
        "device": "cpu",
        "photo": photo.name,
        **timing,
        "cut_after_frame": cut - 1,
        "cut_jump_ratio": round(ratio, 3) if ratio is not None else None,
        "median_change": round(median, 3),
        "target_ratio": TARGET_RATIO,
        "met": ratio is not None and ratio <= TARGET_RATIO,
        "notes": list(result.notes),
    }
