"""Which faces of the source move, and which clip drives each; faces followed by identity.

    plan = plan_faces(n_faces=2, face="all", drive=((1, Path("b.mp4")),), main="a.mp4")
    plan.drivers  # {0: Path("a.mp4"), 1: Path("b.mp4")}

`--face N` (default 0) or `--face all` chooses the faces the main driving clip (or
`--motion`) moves; `--drive N=clip.mp4` gives face N its own clip. With `--drive` and
no main clip, only the named faces move. Faces are numbered largest first, as
`likeness faces` shows them.

`FaceIds` keeps a face's number across the frames of a source video: each frame's faces
are matched to the last box of each known face by overlap (IoU), then by centre
distance for a face that moved fast or shrank; a face not seen in a frame keeps its
last box, so it gets its own number back when it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from likeness.errors import InputError

if TYPE_CHECKING:
    from likeness.faces import Face

MAIN = None  # the driver key of faces moved by the main clip or --motion
IOU_MATCH = 0.2  # boxes of one face in consecutive frames overlap far more (> 0.7 at 25 fps)
CENTRE_MATCH = 0.6  # else: centres within this share of the last box's side


def parse_face(value: str | int) -> int | str:
    """`--face` text -> an index or "all"."""
    text = str(value).strip().lower()
    if text == "all":
        return "all"
    if not text.isdigit():
        raise InputError(f"--face must be a face number (0 = the largest) or all, got {value!r}")
    return int(text)


def parse_drive(values: list[str] | tuple[str, ...]) -> tuple[tuple[int, Path], ...]:
    """`--drive N=clip.mp4` texts -> ((N, Path), ...)."""
    out = []
    for value in values:
        index, sep, clip = str(value).partition("=")
        if not sep or not index.strip().isdigit() or not clip.strip():
            raise InputError(f"--drive takes FACE=CLIP (e.g. --drive 1=b.mp4), got {value!r}")
        out.append((int(index), Path(clip.strip())))
    return tuple(out)


@dataclass(frozen=True)
class FacePlan:
    """Face index -> its driver: a clip Path, or MAIN (the main clip or --motion)."""

    drivers: dict[int, Path | None]

    @property
    def faces(self) -> list[int]:
        return sorted(self.drivers)

    def clips(self, main: Path | None) -> list[Path]:
        """Every driving clip, each once, the main one first (the manifest's order)."""
        out: list[Path] = []
        for clip in [main, *(self.drivers[i] for i in self.faces)]:
            if clip is not None and clip not in out:
                out.append(clip)
        return out


def plan_faces(
    n_faces: int,
    face: int | str,
    drive: tuple[tuple[int, Path], ...],
    has_main: bool,
    what: str,
) -> FacePlan:
    """The plan for a source with `n_faces` faces; errors name the face that is not there."""
    for index, clip in drive:
        if index >= n_faces:
            raise InputError(
                f"--drive {index}={clip.name}: {what} has {n_faces} face(s) (0-{n_faces - 1})"
            )
    drivers: dict[int, Path | None] = {}
    if has_main:
        chosen = range(n_faces) if face == "all" else [int(face)]
        for index in chosen:
            if index >= n_faces:
                raise InputError(
                    f"--face {index} asked for, but {what} has {n_faces} face(s) (0-{n_faces - 1})"
                )
            drivers[index] = MAIN
    elif face == "all":
        raise InputError("--face all needs a driving video or --motion to move the faces with")
    for index, clip in drive:
        drivers[index] = clip
    return FacePlan(drivers)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _centre_close(a: np.ndarray, b: np.ndarray) -> float:
    """Centre distance over the side of box a (smaller is closer)."""
    side = max(float(np.sqrt(max((a[2] - a[0]) * (a[3] - a[1]), 1.0))), 1.0)
    ca, cb = (a[:2] + a[2:]) / 2, (b[:2] + b[2:]) / 2
    return float(np.linalg.norm(ca - cb) / side)


class FaceIds:
    """Stable numbers for the faces of a video, frame after frame. The first frame with
    faces numbers them largest first (as `pick_face` does on a still); later faces get
    the next free number."""

    def __init__(self) -> None:
        self.boxes: dict[int, np.ndarray] = {}

    def __call__(self, faces: list[Face]) -> dict[int, Face]:
        boxes = [np.asarray(f.box, np.float64) for f in faces]
        if not self.boxes:
            order = sorted(range(len(faces)), key=lambda i: -faces[i].area)
            out = {n: faces[i] for n, i in enumerate(order)}
            self.boxes = {n: boxes[i] for n, i in enumerate(order)}
            return out
        pairs = []  # (score, id, face), best first: overlap, then nearness
        for i, box in enumerate(boxes):
            for n, last in self.boxes.items():
                iou = _iou(last, box)
                if iou >= IOU_MATCH:
                    pairs.append((2.0 + iou, n, i))
                else:
                    near = _centre_close(last, box)
                    if near <= CENTRE_MATCH:
                        pairs.append((1.0 - near, n, i))
        pairs.sort(key=lambda p: -p[0])
        out: dict[int, Face] = {}
        used: set[int] = set()
        for _, n, i in pairs:
            if n in out or i in used:
                continue
            out[n] = faces[i]
            used.add(i)
        for i in range(len(faces)):
            if i not in used:
                n = max(self.boxes, default=-1) + 1
                self.boxes[n] = boxes[i]
                out[n] = faces[i]
        for n, face in out.items():
            self.boxes[n] = np.asarray(face.box, np.float64)
        return out
