"""Small faces in large driving frames: detection on overlapping tiles when the whole
frame finds none.

BlazeFace sees the whole frame letterboxed into 128 or 192 px, so a 60 px face in a
1280 x 720 frame is 9 px to it: measured, the astronaut's face (skimage) at 60 px in
a 720p frame is found by neither model, while a 640 px tile around it finds it with
the full-range model down to 40 px. The mesh needs no help: it warps its own 192 px
crop from the frame at any face size, and the tracker follows the mesh once found.
Tiles run only on detection frames (the tracker's first, lost and every 30th) where
the whole frame found no face the mesh accepts (a 720p frame: 6 tiles, 1080p: 15).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from likeness.faces.detect import merge_detections
from likeness.faces.types import Detection

if TYPE_CHECKING:
    from likeness.faces import FaceStack

TILE = 640  # pixels; the full-range model's sweet spot for 40-120 px faces


def tiles(width: int, height: int, side: int = TILE) -> list[tuple[int, int, int]]:
    """(x, y, side) squares, overlapping by half, that cover a frame larger than
    `side`; none for a frame the detector already sees at about that scale."""
    side = min(side, width, height)
    if max(width, height) <= side * 1.25:
        return []

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        steps = int(np.ceil((length - side) / (side / 2)))
        return sorted({round(i * (length - side) / steps) for i in range(steps + 1)})

    return [(x, y, side) for y in starts(height) for x in starts(width)]


class TiledStack:
    """A FaceStack whose `detect` falls back to tiles; everything else is the stack's
    (FaceTracker takes it in the stack's place)."""

    def __init__(self, stack: FaceStack) -> None:
        self.stack = stack

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stack, name)

    def detect(self, rgb: np.ndarray, mode: str | None = None) -> list[Detection]:
        found = self.stack.detect(rgb, mode)
        h, w = rgb.shape[:2]
        if found and not tiles(w, h):
            return found
        # In a large frame a whole-frame box may be no face at all (measured: the
        # astronaut pasted at 60 px into 720p gives a 258 px box around her picture,
        # which the mesh rejects): keep the boxes the mesh accepts, else try tiles.
        found = [d for d in found if self.stack.describe(rgb, d) is not None]
        if found:
            return found
        groups = []
        for x, y, side in tiles(w, h):
            tile = np.ascontiguousarray(rgb[y : y + side, x : x + side])
            offset = np.array([x, y], np.float64)
            groups.append(
                [
                    Detection(d.box + np.tile(offset, 2), d.score, d.keypoints + offset)
                    for d in self.stack.detect(tile, "full")
                ]
            )
        merged = merge_detections(groups, self.stack.config.detection.iou_threshold)
        merged.sort(key=lambda d: -d.area)
        return merged[: self.stack.config.max_faces]
