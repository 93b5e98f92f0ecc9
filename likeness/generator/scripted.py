"""Scripted motion: head and face movements played on the source's own keypoints, for
animating a photo without a driving video (`likeness animate photo.jpg --motion ...`).

Each motion is a curve of a few controls over about two seconds: head rotation
(yaw, pitch, roll, added to the source's pose), eye openness as a fraction of the
source's, and the inner-lip gap and mouth width. `script()` makes the curves;
`script_keypoints()` turns them into keypoints, moving eyes and lips with the model's
retargeting networks (passed in as a function, so this module stays numpy only) and
the head with `motion.rotation_about`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from likeness.errors import InputError
from likeness.generator import keypoints as kpt
from likeness.generator.motion import rotation_about

SECONDS = 2.0  # each motion's length
# Yaw: the face turns towards the image's right for yaw > 0 (faces.HeadPose), so the
# subject looking to the image's left is a negative yaw.
LOOKS = {
    "look-left": (-25.0, 0.0),
    "look-right": (25.0, 0.0),
    "look-up": (0.0, 15.0),
    "look-down": (0.0, -15.0),
}
MOTIONS = ("nod", "shake", "blink", "smile", "talk", *LOOKS)

NOD_DEGREES = 12.0
SHAKE_DEGREES = 20.0
SWINGS = 2  # nods or shakes per motion
BLINK_AT, BLINK_SECONDS = 0.8, 0.3
SMILE_WIDTH, SMILE_GAP = 0.15, 0.06  # +15 % mouth width, lips slightly apart
TALK_GAP = 0.25  # peak inner-lip gap over the eye-corner distance when talking
TALK_HZ = (3.0, 5.0)  # syllables per second

# (part, keypoints (N, K, 3), current (N, 2), wanted (N, 2)) -> offsets (N, K, 3),
# as `GeneratorModel.retarget`.
Retarget = Callable[[str, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Script:
    """Per-frame controls for N frames."""

    angles: np.ndarray  # (N, 3) yaw, pitch, roll in degrees, added to the source's pose
    eyes: np.ndarray  # (N,) eye openness as a fraction of the source's (1: unchanged)
    mouth_gap: np.ndarray  # (N,) added to the inner-lip gap (kpt.mouth_shape units)
    mouth_width: np.ndarray  # (N,) mouth width as a fraction of the source's
    fps: float

    def __len__(self) -> int:
        return len(self.eyes)


def parse_motions(text: str) -> tuple[str, ...]:
    """'nod, blink,smile' -> ('nod', 'blink', 'smile'); unknown names are an InputError."""
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    if not names:
        raise InputError(f"--motion needs at least one of: {', '.join(MOTIONS)}")
    unknown = [n for n in names if n not in MOTIONS]
    if unknown:
        raise InputError(
            f"unknown motion {', '.join(map(repr, unknown))}: use {', '.join(MOTIONS)} "
            "(comma-separated, played one after another)"
        )
    return names


def script(names: Sequence[str], fps: float = 25.0, multiplier: float = 1.0) -> Script:
    """The named motions one after another; `multiplier` scales every amplitude."""
    if not fps > 0:
        raise InputError(f"--fps must be positive, got {fps}")
    parts = [_segment(name, fps) for name in names]
    m = float(multiplier)
    return Script(
        angles=np.concatenate([p.angles for p in parts]) * m,
        eyes=np.clip(1 - (1 - np.concatenate([p.eyes for p in parts])) * m, 0.0, None),
        mouth_gap=np.concatenate([p.mouth_gap for p in parts]) * m,
        mouth_width=1 + (np.concatenate([p.mouth_width for p in parts]) - 1) * m,
        fps=fps,
    )


def _segment(name: str, fps: float) -> Script:
    n = max(2, round(SECONDS * fps))
    t = np.arange(n) / fps
    u = t / SECONDS
    angles = np.zeros((n, 3))
    eyes, gap, width = np.ones(n), np.zeros(n), np.ones(n)
    if name == "nod":
        # Down first, as people nod; the window starts and ends the swing at rest.
        angles[:, 1] = -NOD_DEGREES * np.sin(2 * np.pi * SWINGS * u) * _window(u)
    elif name == "shake":
        angles[:, 0] = SHAKE_DEGREES * np.sin(2 * np.pi * SWINGS * u) * _window(u)
    elif name in LOOKS:
        yaw, pitch = LOOKS[name]
        hold = _turn_and_hold(u)
        angles[:, 0], angles[:, 1] = yaw * hold, pitch * hold
    elif name == "blink":
        eyes = 1 - _bump(t, BLINK_AT, BLINK_SECONDS)
    elif name == "smile":
        hold = _turn_and_hold(u)
        width = 1 + SMILE_WIDTH * hold
        gap = SMILE_GAP * hold
    elif name == "talk":
        gap = _syllables(t)
    else:  # parse_motions guards this; a direct caller gets the same message
        parse_motions(name)
    return Script(angles, eyes, gap, width, fps)


def _ease(x: np.ndarray) -> np.ndarray:
    """0 -> 1 with zero speed at both ends (smoothstep)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _window(u: np.ndarray) -> np.ndarray:
    """Rises from rest over the first fifth and falls back over the last, with zero
    speed at both ends, so concatenated motions neither jump nor jerk."""
    return _ease(u / 0.2) * _ease((1 - u) / 0.2)


def _turn_and_hold(u: np.ndarray) -> np.ndarray:
    """Ease to 1 over the first quarter, hold, ease back over the last quarter."""
    return _ease(u / 0.25) * (1 - _ease((u - 0.75) / 0.25))


def _bump(t: np.ndarray, start: float, length: float) -> np.ndarray:
    """0 outside [start, start + length], a raised cosine reaching 1 in the middle."""
    x = (t - start) / length
    inside = (x >= 0) & (x <= 1)
    return np.where(inside, 0.5 - 0.5 * np.cos(2 * np.pi * np.clip(x, 0, 1)), 0.0)


def _syllables(t: np.ndarray, seed: int = 7) -> np.ndarray:
    """An irregular open-close rhythm: syllables of random length (3-5 per second) and
    loudness, so it reads as speech rather than a metronome. Fixed seed: the same
    script gives the same video."""
    rng = np.random.default_rng(seed)
    gap = np.zeros_like(t)
    start = 0.1
    end = t[-1] - 0.1 if len(t) else 0.0
    while True:
        length = 1.0 / rng.uniform(*TALK_HZ)
        if start + length > end:
            break
        gap += TALK_GAP * rng.uniform(0.4, 1.0) * _bump(t, start, length)
        start += length
    return gap


def script_keypoints(source: np.ndarray, plan: Script, retarget: Retarget) -> np.ndarray:
    """Source keypoints (K, 3) + a script -> (N, K, 3): expression first (eyes, lips,
    measured on the source), then the head rotation about the source's rigid centre."""
    source = np.asarray(source, np.float64)
    n = len(plan)
    kp = np.repeat(source[None], n, axis=0)
    eyes0 = kpt.eye_openness(source)
    need = plan.eyes != 1.0
    if need.any():
        current = np.repeat(eyes0[None], need.sum(), axis=0)
        wanted = current * plan.eyes[need, None]
        kp[need] += retarget("eyes", kp[need], current, wanted)
    gap0, width0 = kpt.mouth_shape(source)
    need = (plan.mouth_gap != 0.0) | (plan.mouth_width != 1.0)
    if need.any():
        current = np.repeat([[gap0, width0]], need.sum(), axis=0)
        wanted = np.stack([gap0 + plan.mouth_gap[need], width0 * plan.mouth_width[need]], 1)
        kp[need] += retarget("lips", kp[need], current, wanted)
    for i in np.flatnonzero(np.abs(plan.angles).sum(1) > 0):
        kp[i] = rotation_about(source, *plan.angles[i])(kp[i])
    return kp.astype(np.float32)
