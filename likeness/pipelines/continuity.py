"""One driving keypoint set per frame, with no jump anywhere: frames without a face ease
back to neutral, and a re-anchored shot (after a cut, or when the face comes back)
starts from where the output was and eases into the new shot's own motion.

Both eases take `seconds` (0.5 s by default) on a smoothstep, whose speed is zero at
both ends: the largest step is 1.5 / (seconds * fps) of the gap closed, 12 % a frame
at 25 fps, so a carried-over difference of a whole expression never reads as a jump.
"""

from __future__ import annotations

import numpy as np

EASE_SECONDS = 0.5


def ease(x: float) -> float:
    """0 -> 1 with zero speed at both ends (smoothstep); clipped outside [0, 1]."""
    x = min(max(float(x), 0.0), 1.0)
    return x * x * (3 - 2 * x)


class EaseToNeutral:
    """Per-frame keypoints or None (no face) -> the keypoints to play, one per frame.

    `neutral` is the first keypoint set seen (the reference the motion is measured
    against, so playing it shows the source's own face). Frames before the first face
    wait for it and take it; a frame without a face moves from the last played set
    towards neutral; a frame flagged `anchor` (the first of a new shot) or the first
    after faceless frames carries the difference from the last played set and lets it
    go over the ease.
    """

    def __init__(self, fps: float, seconds: float = EASE_SECONDS) -> None:
        self.frames = max(1, round(seconds * fps))
        self.seconds = seconds
        self.neutral: np.ndarray | None = None
        self.last: np.ndarray | None = None
        self.pending = 0  # frames before the first face
        self.missing = 0
        self.seen = 0
        self._carry: np.ndarray | None = None
        self._carry_age = 0
        self._lost_from: np.ndarray | None = None
        self._lost_age = 0

    def __call__(self, items: list[tuple[np.ndarray, bool] | None]) -> list[np.ndarray]:
        """(keypoints, anchor) or None per frame -> the keypoints ready so far, in order."""
        out: list[np.ndarray] = []
        for item in items:
            self.seen += 1
            if item is None:
                self.missing += 1
                if self.neutral is None:
                    self.pending += 1
                    continue
                kp = self._lost()
            else:
                kp = self._found(*item)
                if self.pending:
                    out += [self.neutral] * self.pending
                    self.pending = 0
            self.last = kp
            out.append(kp)
        return out

    def _lost(self) -> np.ndarray:
        if self._lost_from is None:
            self._lost_from, self._lost_age, self._carry = self.last, 0, None
        self._lost_age += 1
        w = 1.0 - ease(self._lost_age / self.frames)
        return (self.neutral + (self._lost_from - self.neutral) * w).astype(np.float32)

    def _found(self, kp: np.ndarray, anchor: bool) -> np.ndarray:
        kp = np.asarray(kp, np.float32)
        if self.neutral is None:
            self.neutral = kp
            return kp
        if anchor or self._lost_from is not None:
            self._carry, self._carry_age = self.last - kp, 0
        self._lost_from = None
        if self._carry is None:
            return kp
        self._carry_age += 1
        w = 1.0 - ease(self._carry_age / self.frames)
        out = kp + self._carry * w
        if self._carry_age >= self.frames:
            self._carry = None
        return out.astype(np.float32)
