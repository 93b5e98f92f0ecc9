"""Scripted motion: head and face movements played on the source's own keypoints, for
animating a photo without a driving video (`likeness animate photo.jpg --motion ...`).

Each motion is a curve of a few controls over about two seconds: head rotation
(yaw, pitch, roll, added to the source's pose), eye openness as a fraction of the
source's, and the inner-lip gap and mouth width. Named emotions (`generator.emotions`:
joy, fear, anger, surprise, sadness, disgust, neutral) are weights on keypoint offsets
measured on real faces. `script()` makes the curves; `script_keypoints()` turns them
into keypoints, moving eyes and lips with the model's retargeting networks (passed in
as a function, so this module stays numpy only), adding the emotions' offsets, and
turning the head with `motion.rotation_about`.

A script is a performance timeline (`--motion`): items separated by commas play one
after another; an item is one or more parts joined by `+`, played together; a part is
NAME[:INTENSITY][:SECONDSs]:

    nod,blink,smile                    three motions, 2 s each
    neutral:1s,fear:2s,anger:1.5s      emotions; each eases into the next (0.5 s)
    joy:0.7:3s+nod,surprise+look-up    an emotion under a motion, at once

An item lasts its longest part's seconds (2 s by default); intensity scales a
motion's amplitude or an emotion's offsets (1: the real actors' level). An item
without an emotion is neutral; the script starts and ends at rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from likeness.errors import InputError
from likeness.generator import emotions as emo
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
NAMES = (*MOTIONS, *emo.EMOTIONS, emo.NEUTRAL)
EMOTION_EASE = 0.5  # seconds from one emotion to the next (half each side of the change)
MAX_SECONDS, MAX_INTENSITY = 600.0, 3.0

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
    emotions: np.ndarray | None = None  # (N, E) weights, emotions.EMOTIONS order

    def __len__(self) -> int:
        return len(self.eyes)


@dataclass(frozen=True)
class Part:
    """One named motion or emotion of a timeline item."""

    name: str
    intensity: float = 1.0
    seconds: float | None = None


def parse_motions(text: str) -> tuple[str, ...]:
    """'nod, blink,Joy:0.7:3S' -> ('nod', 'blink', 'joy:0.7:3s'): the timeline's items,
    checked (unknown names, bad numbers are an InputError) and normalised."""
    items = tuple(i.strip().lower().replace(" ", "") for i in text.split(",") if i.strip())
    if not items:
        raise InputError(f"--motion needs at least one of: {', '.join(NAMES)}")
    for item in items:
        parse_item(item)
    return items


def parse_item(item: str) -> list[Part]:
    """'joy:0.7:3s+nod' -> [Part('joy', 0.7, 3.0), Part('nod')]."""
    parts = []
    for text in item.split("+"):
        name, *values = text.split(":")
        if name not in NAMES:
            raise InputError(
                f"unknown motion {name!r}: use {', '.join(NAMES)} (comma-separated, played "
                "one after another; NAME:INTENSITY:SECONDSs, e.g. fear:0.7:2s; + plays "
                "two at once)"
            )
        intensity, seconds = 1.0, None
        if len(values) > 2 or len({v.endswith("s") for v in values}) < len(values):
            raise InputError(f"{text!r}: give at most one intensity and one duration (fear:0.7:2s)")
        for value in values:
            number = _number(value.removesuffix("s"), text)
            if value.endswith("s"):
                if not 0.1 <= number <= MAX_SECONDS:
                    raise InputError(f"{text!r}: seconds must be 0.1-{MAX_SECONDS:g}")
                seconds = number
            else:
                if not 0 <= number <= MAX_INTENSITY:
                    raise InputError(f"{text!r}: intensity must be 0-{MAX_INTENSITY:g}")
                intensity = number
        parts.append(Part(name, intensity, seconds))
    return parts


def _number(value: str, text: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InputError(
            f"{text!r}: {value!r} is neither an intensity (0.7) nor seconds (2s)"
        ) from None
    if not np.isfinite(number):
        raise InputError(f"{text!r}: {value!r} is not a number")
    return number


def script(names: Sequence[str], fps: float = 25.0, multiplier: float = 1.0) -> Script:
    """The timeline's items one after another; `multiplier` scales every amplitude."""
    if not fps > 0:
        raise InputError(f"--fps must be positive, got {fps}")
    items = [parse_item(name) for name in names]
    parts = [_item(item, fps) for item in items]
    m = float(multiplier)
    angles = np.concatenate([p.angles for p in parts]) * m
    weights = _emotion_curve(items, [len(p) for p in parts], fps) * m
    if weights.any():
        angles[:, 1] += weights @ emo.load().pitch  # anger and joy lower the head a little
    return Script(
        angles=angles,
        eyes=np.clip(1 - (1 - np.concatenate([p.eyes for p in parts])) * m, 0.0, None),
        mouth_gap=np.concatenate([p.mouth_gap for p in parts]) * m,
        mouth_width=1 + (np.concatenate([p.mouth_width for p in parts]) - 1) * m,
        fps=fps,
        emotions=weights if weights.any() else None,
    )


def _item(parts: list[Part], fps: float) -> Script:
    """One timeline item: its parts layered over the longest part's length."""
    seconds = max((p.seconds for p in parts if p.seconds is not None), default=SECONDS)
    n = max(2, round(seconds * fps))
    layers = [_segment(p.name, fps, seconds, p.intensity) for p in parts if p.name in MOTIONS]
    if not layers:
        return _rest(n, fps)
    return Script(
        angles=sum(layer.angles for layer in layers),
        eyes=np.prod([layer.eyes for layer in layers], axis=0),
        mouth_gap=sum(layer.mouth_gap for layer in layers),
        mouth_width=1 + sum(layer.mouth_width - 1 for layer in layers),
        fps=fps,
    )


def _rest(n: int, fps: float) -> Script:
    return Script(np.zeros((n, 3)), np.ones(n), np.zeros(n), np.ones(n), fps)


def _emotion_curve(items: list[list[Part]], lengths: list[int], fps: float) -> np.ndarray:
    """(N, E) emotion weights: each item's emotions held, smoothstep from one item's to
    the next over EMOTION_EASE seconds around the change, at rest at both ends."""
    total = sum(lengths)
    held = np.zeros((len(items), len(emo.EMOTIONS)))
    for i, item in enumerate(items):
        for part in item:
            if part.name in emo.EMOTIONS:
                held[i, emo.EMOTIONS.index(part.name)] += part.intensity
    if not held.any():
        return np.zeros((total, len(emo.EMOTIONS)))
    # Keyframes: rest at the start and end; each item's value from a little after its
    # start to a little before its end.
    times, values = [0.0], [np.zeros(len(emo.EMOTIONS))]
    start = 0
    last = len(lengths) - 1
    for i, (value, n) in enumerate(zip(held, lengths, strict=True)):
        half = min(EMOTION_EASE / 2 * fps, n / 4)
        # From and to rest at the script's ends, the whole ease lies inside the item.
        times += [start + half * (2 if i == 0 else 1), start + n - half * (2 if i == last else 1)]
        values += [value, value]
        start += n
    times.append(float(total - 1))
    values.append(np.zeros(len(emo.EMOTIONS)))
    times, values = np.array(times), np.array(values)
    t = np.arange(total, dtype=np.float64)
    k = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    span = np.maximum(times[k + 1] - times[k], 1e-9)
    u = _ease((t - times[k]) / span)[:, None]
    return values[k] * (1 - u) + values[k + 1] * u


def _segment(name: str, fps: float, seconds: float = SECONDS, intensity: float = 1.0) -> Script:
    n = max(2, round(seconds * fps))
    t = np.arange(n) / fps
    u = t / seconds
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
        eyes = 1 - _bump(t, BLINK_AT * seconds / SECONDS, BLINK_SECONDS)
    elif name == "smile":
        hold = _turn_and_hold(u)
        width = 1 + SMILE_WIDTH * hold
        gap = SMILE_GAP * hold
    elif name == "talk":
        gap = _syllables(t)
    else:  # parse_motions guards this; a direct caller gets the same message
        parse_motions(name)
    a = float(intensity)
    return Script(angles * a, 1 - (1 - eyes) * a, gap * a, 1 + (width - 1) * a, fps)


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
    if plan.emotions is not None:
        # Offsets measured on the source as it is (its own pose), before the head turns.
        kp += emo.load().offsets_for(source, plan.emotions)
    for i in np.flatnonzero(np.abs(plan.angles).sum(1) > 0):
        kp[i] = rotation_about(source, *plan.angles[i])(kp[i])
    return kp.astype(np.float32)
