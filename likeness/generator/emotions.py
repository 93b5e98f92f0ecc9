"""Named emotions as keypoint offsets: `--motion joy:0.7`, `fear`, `anger`, `surprise`,
`sadness`, `disgust` (and `neutral`, no offset).

Each emotion is the mean change of the generator's keypoints from a person's neutral
face to the same person showing the emotion, measured on labelled real frames (the
MEAD-style `dt-*` clips of the corpus, two actors, one clip per emotion), with head
pose removed, carried into one canonical face (the `template`: x right, y down, unit
distance between the outer eye corners) and made left-right symmetric. Applied to a
face, the offsets are turned and scaled by that face's own head pose (a similarity
fit of the template on its rigid points), so `joy` lifts the mouth corners of a face
seen from the side as of one seen from the front. Intensity 1 is three times the
actors' mean level-3 change over a spoken sentence (`emotions_derive.GAIN`: the
renderer needs that much to show it). `emotions.json` beside this module holds the
offsets and the frames they came from; `python -m likeness.generator.emotions_derive`
writes it again.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from likeness.errors import InputError, ModelError
from likeness.generator import keypoints as kpt
from likeness.generator.motion import head_fit

EMOTIONS = ("joy", "fear", "anger", "surprise", "sadness", "disgust")
NEUTRAL = "neutral"
# The corpus' MEAD labels for each name.
MEAD_LABELS = {
    "joy": "happy",
    "fear": "fear",
    "anger": "angry",
    "surprise": "surprised",
    "sadness": "sad",
    "disgust": "disgusted",
    "neutral": "neutral",
}
DATA_FILE = Path(__file__).with_name("emotions.json")


@dataclass(frozen=True)
class EmotionTable:
    """Offsets (E, K, 3) in the template's frame, in `EMOTIONS` order (as measured;
    `gain` scales them when applied)."""

    template: np.ndarray  # (K, 3) canonical neutral keypoints
    offsets: np.ndarray  # (E, K, 3)
    pitch: np.ndarray  # (E,) degrees of head pitch each emotion adds (> 0 looks up)
    source: dict  # what they were derived from
    gain: float = 1.0  # intensity 1 plays gain x the measured offsets (emotions_derive.GAIN)

    def offsets_for(self, face: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Keypoints (K, 3) of a face + weights (N, E) -> offsets (N, K, 3) for it."""
        g = head_fit(self.template, np.asarray(face, np.float64))
        turned = self.gain * g.scale * self.offsets @ g.rotation.T  # (E, K, 3)
        return np.einsum("ne,ekd->nkd", np.asarray(weights, np.float64), turned)


@functools.cache
def load(path: Path = DATA_FILE) -> EmotionTable:
    """The shipped emotion table (ModelError when it is missing or malformed)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        table = EmotionTable(
            template=np.asarray(data["template"], np.float64),
            offsets=np.asarray([data["emotions"][e]["offset"] for e in EMOTIONS], np.float64),
            pitch=np.asarray([data["emotions"][e]["pitch"] for e in EMOTIONS], np.float64),
            source=data.get("source", {}),
            gain=float(data.get("gain", 1.0)),
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(
            f"emotion table {path} unreadable ({err}); regenerate it with "
            "`python -m likeness.generator.emotions_derive`"
        ) from err
    if table.template.shape != (kpt.N_KEYPOINTS, 3) or table.offsets.shape[1:] != (
        kpt.N_KEYPOINTS,
        3,
    ):
        raise ModelError(f"emotion table {path} is for another keypoint layout")
    return table


def check_name(name: str) -> str:
    if name not in (*EMOTIONS, NEUTRAL):
        raise InputError(f"unknown emotion {name!r}: use {', '.join((*EMOTIONS, NEUTRAL))}")
    return name


# ---------------------------------------------------------------- mesh measures

# Face mesh (468 points) indices for the measures below.
_MOUTH_CORNERS = (61, 291)
_INNER_LIPS = (13, 14)
_BROWS = (70, 63, 105, 66, 107, 300, 293, 334, 296, 336)
_EYE_CORNERS = ((33, 133), (263, 362))
_LIDS = ((159, 145), (386, 374))
_UPPER_LIP = 0
_NOSE_TIP = 1
FEATURES = ("corner_lift", "mouth_width", "mouth_open", "brow_raise", "eye_open", "upper_lip")


def mesh_features(landmarks: np.ndarray) -> np.ndarray:
    """Six expression measures of a face mesh (468, 3), in outer-eye-corner distances,
    in the face's own upright frame (roll removed): how far the mouth corners sit above
    the inner lips, mouth width, inner-lip gap, brows above the eye centres, lid gap,
    and the upper lip's distance below the nose tip (short: a raised lip, disgust)."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    right, left = lm[33], lm[263]
    axis = left - right
    unit = float(np.linalg.norm(axis)) or 1.0
    x = axis / unit
    y = np.array([-x[1], x[0]])  # image down, for an upright face
    up = lambda p: float(p @ y) / unit  # noqa: E731 - position along the face's down axis
    eyes = np.mean([lm[list(pair)].mean(0) for pair in _EYE_CORNERS], axis=0)
    lips = lm[list(_INNER_LIPS)].mean(0)
    return np.array(
        [
            up(lips) - np.mean([up(lm[i]) for i in _MOUTH_CORNERS]),
            float(np.linalg.norm(lm[_MOUTH_CORNERS[0]] - lm[_MOUTH_CORNERS[1]])) / unit,
            float(np.linalg.norm(lm[_INNER_LIPS[0]] - lm[_INNER_LIPS[1]])) / unit,
            up(eyes) - np.mean([up(lm[i]) for i in _BROWS]),
            np.mean([np.linalg.norm(lm[a] - lm[b]) for a, b in _LIDS]) / unit,
            up(lm[_UPPER_LIP]) - up(lm[_NOSE_TIP]),
        ]
    )
