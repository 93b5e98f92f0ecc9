"""Frame scores -> one video score. Pure numpy.

A trimmed top-k mean: sort the frame scores, drop the highest `trim` share (at least
one frame once there are three or more), then average the next k, where k grows with
the video's length (a quarter of its frames). Why not the mean: a manipulated segment
or a detector that misses on blurred, turned or occluded frames would be diluted by
the frames around it. Why not the max: one odd frame (motion blur, a compression
burst, a face half out of the picture) would decide the whole video. With the top frame
dropped, one frame can move the score by no more than the gap between neighbouring
ranks, whatever its own score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from likeness.config import JsonConfig
from likeness.errors import LikenessError, ModelError


@dataclass(frozen=True)
class PoolingConfig(JsonConfig):
    config_name: ClassVar[str] = "detector pooling"
    config_error: ClassVar[type[LikenessError]] = ModelError  # read from shipped weights

    top: float = 0.25  # share of frames averaged (k = ceil(top * n))
    trim: float = 0.1  # share of the highest frames dropped first (at least 1 when n >= 3)

    def validate(self) -> None:
        for name in ("top", "trim"):
            value = getattr(self, name)
            if type(value) not in (int, float) or not 0 <= value <= 1:
                raise ModelError(f"detector pooling {name} must be a number in [0, 1]")


def pooled_counts(n: int, config: PoolingConfig = PoolingConfig()) -> tuple[int, int]:
    """(frames dropped from the top, frames averaged) for a video of n scored frames."""
    if n <= 0:
        return 0, 0
    if n <= 2:
        return 0, n  # too few to drop any: the mean of what there is
    drop = max(1, math.floor(config.trim * n))
    keep = max(1, math.ceil(config.top * n))
    return drop, min(keep, n - drop)


def pool_scores(scores, config: PoolingConfig = PoolingConfig()) -> float:
    """The video score of frame scores (any order); NaN for no frames."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    drop, keep = pooled_counts(len(values), config)
    if keep == 0:
        return float("nan")
    ranked = np.sort(values)[::-1]
    return float(ranked[drop : drop + keep].mean())
