"""Shot cuts in a driving video, found one frame at a time in constant memory.

A film scene cuts between shots; relative motion measured across a cut would play the
change of person, place and framing as a head movement. `ShotCuts` says, frame by
frame, whether a frame starts a new shot, from two cheap measures on a 64 x 64 copy:

- the colour histogram distance (HSV, 16 bins a channel, half the L1 distance, 0..1):
  what a cut changes and a pan does not;
- the structure difference: the mean absolute difference of the grey copies after
  each is brought to zero mean and unit spread, so a camera's exposure or white
  balance step (which moves the histogram) does not count, but new content does.

A cut needs both: a large histogram distance, or a smaller one with a structure
difference far above the recent frames' own (a pan moves every frame; a cut once).
Measured on the corpus (40 frames of 11 clips at 256 px, consecutive frames): the
histogram distance stays <= 0.030 inside a clip and <= 0.043 in a 32 px/frame pan
(lp-s18 cropped), while the 110 cuts between two of those clips measure >= 0.069
(the same man, same set, two takes: dt-m030 neutral | happy) and >= 0.19 between
different people. The structure difference is <= 0.091 inside clips, 0.22-0.61 in
8-32 px/frame pans (steady from frame to frame), >= 0.39 at every cut (5th
percentile 0.51). The webcam clip clm-cap12 has two exposure steps with histogram
distances of 0.12 and 0.13 but structure differences <= 0.09: no cut. The thresholds
below sit between. Checked with them: 3,582 frames of 16 corpus clips (up to 400
each, 256 px) give no cut; the 240 cuts between two of those clips are all found, on
their frame.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from likeness.config import JsonConfig
from likeness.errors import InputError

MIN_HISTORY = 3  # frames before a soft cut can be judged


@dataclass(frozen=True)
class CutConfig(JsonConfig):
    size: int = 64  # frames are measured on a size x size copy
    bins: int = 16  # per HSV channel
    hard: float = 0.10  # histogram distance that is a cut with new structure
    soft: float = 0.05  # histogram distance that is a cut when the structure jumps
    difference: float = 0.2  # structure difference any cut needs at least ...
    ratio: float = 3.0  # ... and, for a soft cut, this many times the recent median
    history: int = 8  # frames in that median
    min_shot: int = 2  # frames; a cut closer than this to the last one is not a cut

    def __post_init__(self) -> None:
        if not 8 <= self.size <= 512:
            raise InputError(f"cut detector size must be 8-512, got {self.size}")
        if not 0 < self.soft <= self.hard <= 1:
            raise InputError("cut thresholds need 0 < soft <= hard <= 1")


@dataclass(frozen=True)
class FrameChange:
    """How much a frame differs from the one before it."""

    histogram: float  # half L1 distance of the HSV histograms, 0..1
    difference: float  # structure: mean absolute difference of the normalised greys


class ShotCuts:
    """`cuts(rgb)` -> True when `rgb` starts a new shot (never for the first frame).
    Keeps one small frame and a few numbers: constant memory in the video's length."""

    def __init__(self, config: CutConfig | None = None) -> None:
        self.config = config or CutConfig()
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self._recent: deque[float] = deque(maxlen=self.config.history)
        self._since_cut = 0
        self.cuts = 0
        self.last_change: FrameChange | None = None

    def __call__(self, rgb: np.ndarray) -> bool:
        histogram, grey = self._measure(rgb)
        previous, self._previous = self._previous, (histogram, grey)
        self._since_cut += 1
        if previous is None:
            return False
        change = FrameChange(
            0.5 * float(np.abs(histogram - previous[0]).sum()),
            float(np.abs(grey - previous[1]).mean()),
        )
        self.last_change = change
        cut = self._is_cut(change) and self._since_cut >= self.config.min_shot
        # A cut's own difference would raise the median the next cut is judged by.
        self._recent.clear() if cut else self._recent.append(change.difference)
        if cut:
            self.cuts += 1
            self._since_cut = 0
        return cut

    def _is_cut(self, change: FrameChange) -> bool:
        cfg = self.config
        if change.histogram < cfg.soft or change.difference < cfg.difference:
            return False
        if change.histogram >= cfg.hard:
            return True
        # Without a few frames to compare with, a pan that starts at full speed (10 %
        # of the width a frame: histogram 0.056) would read as a cut.
        if len(self._recent) < MIN_HISTORY:
            return False
        return change.difference >= cfg.ratio * float(np.median(self._recent))

    def _measure(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        small = cv2.resize(rgb, (cfg.size, cfg.size), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        # OpenCV's 8-bit hue runs 0..179, saturation and value 0..255.
        channels = hsv.reshape(-1, 3).astype(np.int32)
        hist = [
            np.bincount(channels[:, c] * cfg.bins // top, minlength=cfg.bins)
            for c, top in enumerate((180, 256, 256))
        ]
        histogram = np.concatenate(hist).astype(np.float64) / (cfg.size * cfg.size * 3)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
        # The spread's floor keeps a flat frame (a fade to black) from amplifying noise.
        grey = (grey - grey.mean()) / max(float(grey.std()), 4.0)
        return histogram, grey
