"""`likeness faces`: run the face stack over an image or video and draw what it sees."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from likeness.errors import InputError, NoFaceError
from likeness.faces.draw import draw_faces
from likeness.faces.stack import FaceStack, FaceStackConfig, FaceTracker, TrackerConfig
from likeness.faces.types import Face
from likeness.media.suffixes import IMAGE_SUFFIXES


@dataclass
class AnnotateReport:
    output: Path
    kind: str
    frames: int = 0
    frames_with_face: int = 0
    max_faces: int = 0
    records: list[dict] = field(default_factory=list)


def face_record(face: Face, index: int) -> dict:
    """JSON-ready summary of one face (no 468-point mesh: that is what the drawing shows)."""
    rec = {
        "face": index,
        "box": [round(float(v), 1) for v in face.box],
        "score": round(face.detection.score, 3),
        "eyes": [[round(float(v), 1) for v in p] for p in face.eye_centres()],
    }
    if face.pose is not None:
        rec["pose"] = {
            k: round(v, 1)
            for k, v in zip(("yaw", "pitch", "roll"), face.pose.as_tuple(), strict=True)
        }
    return rec


def annotate_file(
    src: Path,
    dst: Path,
    *,
    stack_config: FaceStackConfig | None = None,
    smooth: bool = True,
    every: int = 1,
    max_frames: int | None = None,
    json_out: Path | None = None,
    on_frame: Callable[[], None] | None = None,
) -> AnnotateReport:
    from likeness import media

    src = media.check_input_file(src)
    info = media.probe(src)
    stack = FaceStack(stack_config)
    if info.kind == "image":
        if dst.suffix.lower() not in IMAGE_SUFFIXES:
            got = dst.suffix or "no suffix"
            raise InputError(
                f"{src.name} is an image: write the annotation to .png or .jpg, not {got}"
            )
        rgb = media.read_image(src)
        faces = stack.analyze(rgb)
        if not faces:
            raise NoFaceError(f"no face found in {src.name}")
        media.write_image(dst, draw_faces(rgb, faces), inputs=[src])
        report = AnnotateReport(
            dst,
            "image",
            1,
            1,
            len(faces),
            [{"frame": 0, "faces": [face_record(f, i) for i, f in enumerate(faces)]}],
        )
    else:
        if dst.suffix.lower() != ".mp4":
            raise InputError(f"{src.name} is a video: write the annotation to an .mp4 file")
        tracker = FaceTracker(stack, TrackerConfig(smooth=smooth))
        report = AnnotateReport(dst, "video")
        fps = info.fps / max(every, 1)
        with media.VideoWriter(dst, fps, crf=20, preset="veryfast", inputs=[src]) as writer:
            for frame in media.iter_frames(src, every=every, max_frames=max_frames):
                faces = tracker.update(frame.image, frame.time)
                writer.write(draw_faces(frame.image, faces))
                report.frames += 1
                report.frames_with_face += bool(faces)
                report.max_faces = max(report.max_faces, len(faces))
                records = [face_record(f, i) for i, f in enumerate(faces)]
                report.records.append(
                    {"frame": frame.index, "time": round(frame.time, 3), "faces": records}
                )
                if on_frame:
                    on_frame()
    if json_out is not None:
        _write_json(json_out, report, src)
    return report


def _write_json(path: Path, report: AnnotateReport, src: Path) -> None:
    from likeness.fsio import atomic_output

    payload = {"input": src.name, "kind": report.kind, "frames": report.records}
    with atomic_output(path, inputs=[src]) as tmp:
        tmp.write_text(json.dumps(payload, indent=1, default=_np_default))


def _np_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)
