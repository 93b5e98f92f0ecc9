"""`likeness bench faces`: decode, detection, mesh+iris and crop speed on a 512x512 clip.

Targets (issue 3): decode >= 300 fps, full face stack >= 60 fps with one face per frame.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from likeness.bench.common import corpus_dir, machine_info, write_json

CLIP = "videos/lp-d0.mp4"  # 512x512, 78 frames, one frontal face


def _synthetic_clip(path: Path, frames: int = 60) -> Path:
    """A 512x512 clip of scikit-image's astronaut drifting, for machines without the corpus."""
    import cv2
    from skimage import data

    from likeness.media import VideoWriter

    base = cv2.resize(data.astronaut(), (512, 512))
    with VideoWriter(path, 25.0, crf=18, preset="veryfast") as writer:
        for i in range(frames):
            shift = np.float32([[1, 0, 6 * np.sin(i / 8)], [0, 1, 4 * np.cos(i / 10)]])
            writer.write(cv2.warpAffine(base, shift, (512, 512), borderMode=cv2.BORDER_REFLECT))
    return path


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def run(out_dir: Path, quick: bool = False) -> Path:
    from likeness.faces import FaceStack, FaceTracker, align_face
    from likeness.media import iter_frames, probe

    corpus = corpus_dir()
    clip = corpus / CLIP if corpus else _synthetic_clip(out_dir / "bench-faces-clip.mp4")
    info = probe(clip)
    repeats = 1 if quick else 3

    decode_s = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        frames = [f.image for f in iter_frames(clip)]
        decode_s.append(time.perf_counter() - t0)
    n = len(frames)

    stack = FaceStack()
    stack.analyze(frames[0])  # warm-up: first inference allocates

    def timed(fn) -> float:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best

    detect_s = timed(lambda: [stack.detect(f) for f in frames])
    per_frame_s = timed(lambda: [stack.analyze(f) for f in frames])

    found = []

    def tracked() -> None:
        tracker = FaceTracker(stack)
        found.clear()
        found.extend(tracker.update(f, i / info.fps) for i, f in enumerate(frames))

    track_s = timed(tracked)
    faces = [fs[0] for fs in found if fs]
    crop_s = timed(lambda: [align_face(f, face) for f, face in zip(frames, faces, strict=False)])

    result = {
        "benchmark": "faces",
        "machine": machine_info(),
        "clip": {"file": clip.name, "width": info.width, "height": info.height, "frames": n},
        "fps": {
            "decode": _rate(n, min(decode_s)),
            "detect": _rate(n, detect_s),
            "detect_mesh_iris_every_frame": _rate(n, per_frame_s),
            "face_stack_tracked": _rate(n, track_s),
            "crop_256": _rate(len(faces), crop_s),
        },
        "frames_with_face": len(faces),
        "targets": {"decode": 300, "face_stack_tracked": 60},
        "notes": "best of repeats; face_stack_tracked = mesh+iris+pose every frame, detector "
        "only when a track is lost or every 30 frames (MediaPipe's scheme)",
    }
    return write_json(out_dir, "faces", result)
