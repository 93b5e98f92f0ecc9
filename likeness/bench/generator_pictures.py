"""`likeness bench generator`, its pictures: labelled side-by-side panels (source |
reference | ours | affine | no motion) for the MP4 and the grid PNG."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from likeness.bench.generator_quality import METHOD_LABELS, METHODS, ItemResult, Panel

CELL = 256  # panel size in the MP4 and the grid
LABEL_H = 24


def _label_row(labels: list[str], width: int = CELL) -> np.ndarray:
    row = np.full((LABEL_H, width * len(labels), 3), 255, np.uint8)
    for i, text in enumerate(labels):
        cv2.putText(
            row,
            text[:34],
            (i * width + 6, 17),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return row


def _cells(panel: Panel, caption: str | None = None) -> np.ndarray:
    cells = [
        cv2.resize(im, (CELL, CELL), interpolation=cv2.INTER_LINEAR) if im.shape[0] != CELL else im
        for im in panel.images
    ]
    strip = np.concatenate(cells, axis=1)
    if caption:
        cv2.putText(
            strip,
            caption[:40],
            (6, CELL - 8),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return strip


def column_labels(kind: str) -> list[str]:
    reference = "ground truth" if kind == "self" else "driving"
    return ["source", reference, *(METHOD_LABELS[m] for m in METHODS)]


def video_frames(kind: str, name: str, panels: list[Panel]) -> Iterator[np.ndarray]:
    labels = _label_row(column_labels(kind))
    for panel in panels:
        yield np.concatenate([labels, _cells(panel, f"{kind}: {name}")], axis=0)


def grid(rows: list[tuple[str, str, Panel]]) -> np.ndarray:
    """One row per (kind, name, panel), a label row above each kind's first row."""
    parts = []
    last_kind = None
    for kind, name, panel in rows:
        if kind != last_kind:
            parts.append(_label_row(column_labels(kind)))
            last_kind = kind
        parts.append(_cells(panel, f"{kind}: {name}"))
    return np.concatenate(parts, axis=0)


def grid_picks(items: list[tuple[str, str, ItemResult]], rows: int) -> list[tuple[str, str, Panel]]:
    """The frame with the most driving motion of up to `rows` items, alternating self
    and cross items so both show."""
    selfs = [i for i in items if i[0] == "self"]
    cross = [i for i in items if i[0] == "cross"]
    order = [x for pair in zip(selfs, cross, strict=False) for x in pair]
    longer = selfs if len(selfs) > len(cross) else cross
    order += longer[min(len(selfs), len(cross)) :]
    picks = []
    for kind, name, result in order[:rows]:
        if result.panels:
            picks.append((kind, name, max(result.panels, key=lambda p: p.motion)))
    picks.sort(key=lambda p: p[0] != "self")
    return picks
