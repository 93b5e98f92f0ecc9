"""BlazeFace face detection (MediaPipe short- and full-range models) with our own decoding.

Pre-processing letterboxes the frame into the model's square input; post-processing
decodes the SSD anchors, applies a sigmoid, and merges overlapping boxes with MediaPipe's
weighted non-maximum suppression.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from likeness.faces.geometry import box_iou
from likeness.faces.litert import TFLiteModel
from likeness.faces.types import Detection


@dataclass(frozen=True)
class AnchorSpec:
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int  # two for the short-range model, one for full range


SHORT_RANGE = AnchorSpec(128, (8, 16, 16, 16), 2)
FULL_RANGE = AnchorSpec(192, (4,), 1)


def make_anchors(spec: AnchorSpec) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1]; consecutive layers of one stride share a grid."""
    centres = []
    i = 0
    while i < len(spec.strides):
        stride = spec.strides[i]
        repeats = 0
        while i < len(spec.strides) and spec.strides[i] == stride:
            repeats += spec.anchors_per_layer
            i += 1
        cells = int(np.ceil(spec.input_size / stride))
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(grid, repeats, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, input_size: int) -> np.ndarray:
    """raw (N, 16) -> (N, 8, 2): row 0 = box min corner, row 1 = max corner, 2.. keypoints."""
    pts = raw.reshape(-1, 8, 2) / input_size
    centre = pts[:, 0] + anchors
    half = pts[:, 1] / 2
    out = np.empty_like(pts)
    out[:, 0] = centre - half
    out[:, 1] = centre + half
    out[:, 2:] = pts[:, 2:] + anchors[:, None, :]
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's WEIGHTED suppression: overlapping candidates are averaged by score.

    boxes: (N, 8, 2) decoded candidates. Returns (merged (8, 2), best score) per face.
    """
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    flat = boxes[:, :2].reshape(-1, 4)
    alive = np.ones(len(scores), dtype=bool)
    merged = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        group = alive & (box_iou(flat[i], flat) > iou_threshold)
        group[i] = True
        weights = scores[group][:, None, None]
        merged.append(((boxes[group] * weights).sum(0) / weights.sum(), float(scores[i])))
        alive &= ~group
    return merged


@dataclass(frozen=True)
class DetectorConfig:
    min_score: float = 0.5
    iou_threshold: float = 0.3
    min_size: int = 12  # pixels; smaller boxes are noise at the models' resolutions


class BlazeFace:
    """One BlazeFace model. `__call__(rgb)` returns detections in frame pixels."""

    def __init__(
        self, model_file: Path, spec: AnchorSpec, config: DetectorConfig | None = None
    ) -> None:
        self.model = TFLiteModel(model_file)
        self.spec = spec
        self.config = config or DetectorConfig()
        self.anchors = make_anchors(spec)

    def _letterbox(self, rgb: np.ndarray) -> tuple[np.ndarray, float, int, int]:
        h, w = rgb.shape[:2]
        size = self.spec.input_size
        scale = size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        # INTER_AREA: a 2048 px photo shrunk to 128 px must not alias.
        small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        px, py = (size - nw) // 2, (size - nh) // 2
        canvas = np.zeros((size, size, 3), dtype=np.uint8)
        canvas[py : py + nh, px : px + nw] = small
        return canvas, scale, px, py

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        canvas, scale, px, py = self._letterbox(rgb)
        tensor = canvas.astype(np.float32) / 127.5 - 1.0
        raw_boxes, raw_scores = self.model(tensor)
        scores = sigmoid(raw_scores.reshape(-1))
        keep = scores >= self.config.min_score
        if not keep.any():
            return []
        size = self.spec.input_size
        boxes = decode_boxes(raw_boxes.reshape(-1, 16)[keep], self.anchors[keep], size)
        results = []
        for pts, score in weighted_nms(boxes, scores[keep], self.config.iou_threshold):
            pix = (pts * size - np.array([px, py])) / scale
            box = pix[:2].reshape(4)
            if min(box[2] - box[0], box[3] - box[1]) < self.config.min_size:
                continue
            results.append(Detection(box=box, score=score, keypoints=pix[2:].copy()))
        return results


def merge_detections(groups: list[list[Detection]], iou_threshold: float) -> list[Detection]:
    """Union of detections from several models, dropping duplicates of the same face."""
    pool = sorted((d for g in groups for d in g), key=lambda d: -d.score)
    kept: list[Detection] = []
    for det in pool:
        if kept and (box_iou(det.box, np.stack([k.box for k in kept])) > iou_threshold).any():
            continue
        kept.append(det)
    return kept
