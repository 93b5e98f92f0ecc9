"""Temporal smoothing of landmarks and crop parameters (One Euro filter, pure math).

The One Euro filter (Casiez et al., CHI 2012) lowers its cut-off when a signal is still
(no jitter on a still face) and raises it when the signal moves fast (little lag).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    min_cutoff: float = 0.5  # Hz: lower = smoother when still
    beta: float = 2.0  # Hz added per unit of speed, speed in `scale` units per second
    d_cutoff: float = 1.0  # Hz, for the speed estimate


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters arrays of any fixed shape. `scale` makes `beta` independent of face size."""

    def __init__(self, config: OneEuroConfig | None = None) -> None:
        self.config = config or OneEuroConfig()
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def reset(self) -> None:
        self._x = self._dx = self._t = None

    def __call__(self, value: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self._x is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = value.copy(), np.zeros_like(value), t
            return value.copy()
        dt = t - self._t
        cfg = self.config
        dx = (value - self._x) / dt
        a_d = _alpha(cfg.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        speed = np.abs(self._dx) / max(scale, 1e-9)
        cutoff = cfg.min_cutoff + cfg.beta * speed
        tau = 1.0 / (2 * math.pi * cutoff)
        a = 1.0 / (1.0 + tau / dt)
        self._x = a * value + (1 - a) * self._x
        self._t = t
        return self._x.copy()
