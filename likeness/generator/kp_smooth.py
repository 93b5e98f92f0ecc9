"""Temporal smoothing of driving keypoints that keeps the mouth and eyelids moving.

One One Euro filter over all keypoints (min cut-off 0.5 Hz) steadies the head but eats
fast expression: on three held-out corpus clips at their own frame rate (lp-d12,
ls-demo2, lipnet-grid-bbaf2n, 100 frames each) it kept 0.84, 0.73 and 0.60 of the
inner-lip gap's swing and 0.93, 0.76, 0.88 of the eyelids'. Speech opens and closes
the mouth at 3 to 5 Hz; blinks last about 0.15 s. So the head (every row) has its own
filter (`HEAD`: since 2026-12-07 late a 4 Hz still cut-off, which follows turns and
nods without damping them), and the expression of the lips, jaw and lids (their change
since the first frame once the head motion is taken out) is filtered on its own with a
cut-off well above speech rate (`EXPRESSION`), then put back on the smoothed head.
The irises keep the head filter: their frame-to-frame change on these clips is mostly
tracking noise (the still-image gaze measure moves 0.045 eye widths between frames of
a steady gaze).
"""

from __future__ import annotations

import numpy as np

from likeness.faces.smooth import OneEuroConfig, OneEuroFilter
from likeness.generator import keypoints as kpt
from likeness.generator.motion import head_fit

# Lips, jaw and the eyelids: the rows whose expression is faster than the head.
FAST_ROWS: tuple[int, ...] = (*kpt.LIP_ROWS, *kpt.JAW_ROWS, *kpt.EYELID_ROWS)
# 6 Hz still cut-off, above the 3-5 Hz of syllables; beta raises it with speed as the
# head filter's does. Measured on six held-out clips (48 frames in a row each, `python
# -m likeness.bench.eyes_mouth --consecutive`), the keypoints' inner-lip gap against
# the truth's: head filter alone gain 0.56 / correlation 0.66; expression cut-off 3 Hz
# 0.68 / 0.79, 6 Hz 0.77 / 0.84, 10 Hz 0.82 / 0.86; unsmoothed 0.90 / 0.88. Frame to
# frame roughness of the gap (mean |2nd difference|, 0.0222 unsmoothed): 0.0076, 0.0091,
# 0.0122, 0.0146. 6 Hz kept most of the speech and half the tracking noise out.
# 12 Hz since 2026-12-07 late, measured on the output, not the keypoints. Self-
# reenactment, 8 held-out clips x 40 consecutive frames (`eyes_mouth --consecutive
# --expression-cutoff HZ`, head at 4 Hz), 6 / 12 Hz / no filter: mouth-open correlation
# 0.686 / 0.717 / 0.762, the mouth box's frame-to-frame error 0.0303 / 0.0303 / 0.0291.
# Cross-reenactment, where a driver's tracking noise would show as lip jitter (`animate`
# of 4 test photos by test clips of other people, 50 frames, `/work/exp/iris/g4.py`):
# the output mouth box's frame-to-frame change on the driver's stillest quarter of
# frames 0.0134 / 0.0132 / 0.0139, its correlation with the driver's mouth change 0.760
# / 0.785 / 0.795. 12 Hz follows the mouth better without shaking it more; no filter
# starts to.
EXPRESSION = OneEuroConfig(min_cutoff=12.0, beta=2.0)
# The head: 4 Hz still cut-off (was the tracker's 0.5 Hz until 2026-12-07 late). Self-
# reenactment of 8 held-out clips, 40 consecutive frames each (`python -m
# likeness.bench.eyes_mouth --consecutive --head-cutoff HZ`, shipped renderer), head
# cut-off 0.5 / 4 Hz / no filter: PSNR 26.23 / 26.51 / 26.48 dB; error of the
# frame-to-frame change against the truth's (mean |d out - d truth|, lag and jitter both
# count) 0.0161 / 0.0155 / 0.0154; frame-to-frame change of the output 0.0094 / 0.0106
# / 0.0126 against the truth's 0.0130 (0.5 Hz damps a turn to three quarters); on the
# stillest quarter of frame pairs 0.0049 / 0.0050 / 0.0047 against 0.0037 (no filter
# does not shake a still face more). 4 Hz keeps a little of the filter against a
# driver's tracking noise in cross-reenactment, where no truth says how much is motion.
HEAD = OneEuroConfig(min_cutoff=4.0, beta=2.0)


class KeypointSmoother:
    """Call with (K, 3) keypoints and a time in seconds; `reset()` at a new shot."""

    def __init__(
        self,
        head: OneEuroConfig = HEAD,
        expression: OneEuroConfig | None = EXPRESSION,
        rows: tuple[int, ...] = FAST_ROWS,
    ) -> None:
        self.head = OneEuroFilter(head)
        self.expression = OneEuroFilter(expression) if expression is not None else None
        self.rows = list(rows)
        self.reference: np.ndarray | None = None

    def reset(self) -> None:
        self.head.reset()
        if self.expression is not None:
            self.expression.reset()
        self.reference = None

    def __call__(self, kp: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        kp = np.asarray(kp, np.float64)
        smooth = self.head(kp, t, scale=scale)
        if self.expression is None:
            return smooth.astype(np.float32)
        if self.reference is None:
            self.reference = kp.copy()
        ref, rows = self.reference, self.rows
        # The expression of the fast rows in the reference's frame, filtered lightly...
        change = head_fit(ref, kp).inverse()(kp[rows]) - ref[rows]
        change = self.expression(change, t, scale=scale)
        # ...and carried by the smoothed head.
        out = smooth.copy()
        out[rows] = head_fit(ref, smooth)(ref[rows] + change)
        return out.astype(np.float32)
