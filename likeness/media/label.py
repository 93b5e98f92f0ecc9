"""A visible disclosure burnt into a frame: small white text on a dark box in a corner.

    labelled = burn_label(rgb, LabelStyle(text="AI-generated", position="bottom-right"))

The invisible watermark and the C2PA manifest are for machines; this is for people
(Article 50 of the EU AI Act asks that deepfakes be disclosed as such). It is a pure
image function: the pipeline burns it in before the watermark goes on, and the manifest
says that it is there.

Size scales with the frame's shorter side (`height` of it, never below `min_px`):
Hershey's plain font needs about 11 px of cap height to read at 1:1 (checked by eye at
256 px, where 3.5 % would give 9 px); at 1080p the 3.5 % gives 38 px, about the size of
a broadcast caption's small print.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from likeness.errors import InputError

POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left")
DEFAULT_TEXT = "AI-generated"
MAX_TEXT = 64
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class LabelStyle:
    text: str = DEFAULT_TEXT
    position: str = "bottom-right"  # one of POSITIONS
    height: float = 0.035  # cap height as a share of the frame's shorter side
    min_px: int = 11  # ... and never smaller than this
    margin: float = 0.5  # gap to the frame's edge, in cap heights
    opacity: float = 0.65  # of the dark box behind the text (the text is opaque)

    def __post_init__(self) -> None:
        check_label(self.text, self.position)


def check_label(text: str, position: str) -> None:
    """The one-line errors for a label a user asked for."""
    if position not in POSITIONS:
        raise InputError(f"unknown label position {position!r}: use {', '.join(POSITIONS)}")
    if not text.strip():
        raise InputError("--label-text is empty: give the words to show (e.g. AI-generated)")
    if len(text) > MAX_TEXT:
        raise InputError(f"--label-text is {len(text)} characters long: keep it to {MAX_TEXT}")
    if not text.isascii() or not text.isprintable():
        # Hershey fonts draw ASCII only: anything else would come out as question marks.
        raise InputError("--label-text must be plain printable ASCII (the label font has no more)")


@dataclass(frozen=True)
class LabelBox:
    """Where the label sits in a frame of a given size (x0, y0, x1, y1), exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int
    scale: float  # cv2 font scale
    thickness: int
    baseline: tuple[int, int]  # where putText starts


def label_box(width: int, height: int, style: LabelStyle = LabelStyle()) -> LabelBox:
    """The label's rectangle and font settings for a `width` x `height` frame; the text
    shrinks (down to 6 px) when it would not fit across the frame."""
    cap = max(float(style.min_px), style.height * min(width, height))
    # getTextSize at scale 1 gives the cap height of the font; scale to the cap we want.
    (_, unit_h), _ = cv2.getTextSize("H", _FONT, 1.0, 1)
    scale = cap / unit_h
    thickness = max(1, round(cap / 11))
    (tw, th), base = cv2.getTextSize(style.text, _FONT, scale, thickness)
    pad = max(2, round(cap * 0.4))
    margin = max(1, round(cap * style.margin))
    room = width - 2 * margin - 2 * pad
    if tw > room > 0:
        shrink = max(6 / cap, room / tw)
        scale, cap = scale * shrink, cap * shrink
        thickness = max(1, round(cap / 11))
        (tw, th), base = cv2.getTextSize(style.text, _FONT, scale, thickness)
        pad = max(2, round(cap * 0.4))
    box_w, box_h = tw + 2 * pad, th + base + 2 * pad
    left = style.position.endswith("left")
    top = style.position.startswith("top")
    x0 = margin if left else width - margin - box_w
    y0 = margin if top else height - margin - box_h
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(width, x0 + box_w), min(height, y0 + box_h)
    return LabelBox(x0, y0, x1, y1, scale, thickness, (x0 + pad, y0 + pad + th))


def burn_label(rgb: np.ndarray, style: LabelStyle = LabelStyle()) -> np.ndarray:
    """A copy of `rgb` (H x W x 3 uint8) with the label drawn in."""
    h, w = rgb.shape[:2]
    box = label_box(w, h, style)
    out = np.array(rgb, np.uint8, copy=True)
    region = out[box.y0 : box.y1, box.x0 : box.x1].astype(np.float32)
    out[box.y0 : box.y1, box.x0 : box.x1] = np.clip(
        region * (1 - style.opacity) + 0.5, 0, 255
    ).astype(np.uint8)
    cv2.putText(
        out,
        style.text,
        box.baseline,
        _FONT,
        box.scale,
        (255, 255, 255),
        box.thickness,
        cv2.LINE_AA,
    )
    return out


def label_record(style: LabelStyle) -> dict:
    """What the manifest says about the label (kept small: text, corner, every frame)."""
    return {"text": style.text, "position": style.position, "frames": "all"}
