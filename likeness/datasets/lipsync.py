"""The lip-sync family: the lower face replaced by a low-resolution mouth (Wav2Lip-like).

Wav2Lip and its descendants regenerate the lower half of a face box at about 96 px from
audio and paste it back, so their fakes carry a mouth that moves on its own, a blurry
low-resolution lower face in a sharp frame, and a seam along the jaw and below the nose
(or, in the original inference script, around the whole face box). This module makes
that look without a model: the mouth region of another frame or person is aligned to
the target's jaw line and nose (its lips keep their own shape), recoloured to the target's skin,
composited into the lower face, rendered at about 96 px for the whole face, and pasted
back through a soft jaw mask (or the face box). Pure function: numpy and OpenCV in,
numpy out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from likeness.datasets import forgery as fg
from likeness.datasets.forgery import Forgery
from likeness.datasets.swap import piecewise_affine
from likeness.faces.regions import LEFT_BROW, RIGHT_BROW
from likeness.faces.types import FACE_OVAL, LEFT_EYE_RING, NOSE_TIP, RIGHT_EYE_RING

FAMILY = "lipsync"
NOSE_BASE = (2, 98, 327)  # under the nose tip, and the two nostril wings
PASTES = ("jaw", "box")


@dataclass(frozen=True)
class LipSyncConfig:
    """What `lip_sync` draws from. Fractions are of the target's face size (landmark
    box diagonal over sqrt 2, about 140 px in a 256 px FFHQ-style crop)."""

    face_px: tuple[float, float] = (80.0, 120.0)  # side of the face box as rendered
    paste_probs: tuple[float, float] = (0.7, 0.3)  # in PASTES order
    jaw_top: tuple[float, float] = (0.0, 1.0)  # 0: nose base, 1: nose tip
    deform: float = 0.02  # elastic displacement of the jaw mask
    erode: tuple[float, float] = (0.0, 0.03)  # inward from the jaw line (and the feather)
    soften: tuple[float, float] = (0.015, 0.04)  # jaw feather sigma
    box_soften: tuple[float, float] = (0.0, 0.02)  # box edge sigma (0: a hard paste)
    box_pad: float = 0.07  # the face box grown at the bottom (Wav2Lip pads the chin)
    colour_strength: tuple[float, float] = (0.7, 1.0)


def _anchors(landmarks) -> tuple[int, ...]:
    """Mesh indices the donor is warped by, chosen on the target: the oval below the
    eyes, the nose tip and base (never the lips: the mouth is what changes)."""
    oval = fg.points(landmarks, FACE_OVAL)
    eyes = fg.points(landmarks, (*RIGHT_EYE_RING, *LEFT_EYE_RING))
    lower = tuple(i for i, p in zip(FACE_OVAL, oval, strict=True) if p[1] >= eyes[:, 1].mean())
    return (*lower, NOSE_TIP, *NOSE_BASE)


def _jaw_region(shape, landmarks, top: float) -> np.ndarray:
    """The face below a line between the nose base and nose tip, inside the jaw line."""
    oval = fg.points(landmarks, FACE_OVAL)
    base = fg.points(landmarks, NOSE_BASE)
    tip = fg.points(landmarks, (NOSE_TIP,))[0]
    y = (1 - top) * base[:, 1].mean() + top * tip[1]
    lower = oval[oval[:, 1] >= y]
    # The oval crossed at height y, on both sides: where the cut meets the cheeks.
    cuts = []
    n = len(oval)
    for i in range(n):
        a, b = oval[i], oval[(i + 1) % n]
        if (a[1] - y) * (b[1] - y) < 0:
            t = (y - a[1]) / (b[1] - a[1])
            cuts.append(a + t * (b - a))
    return fg.hull_mask(shape, np.concatenate([lower, np.array(cuts).reshape(-1, 2), base]))


def _face_box(landmarks, pad: float, size: float, shape) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): brows to chin, cheek to cheek, the bottom padded (a face
    detector's box, as Wav2Lip crops it)."""
    oval = fg.points(landmarks, FACE_OVAL)
    brows = fg.points(landmarks, (*RIGHT_BROW, *LEFT_BROW))
    h, w = shape
    x0, x1 = oval[:, 0].min(), oval[:, 0].max()
    y0, y1 = brows[:, 1].min(), oval[:, 1].max() + pad * size
    return (
        int(np.clip(np.floor(x0), 0, w - 1)),
        int(np.clip(np.floor(y0), 0, h - 1)),
        int(np.clip(np.ceil(x1), 1, w)),
        int(np.clip(np.ceil(y1), 1, h)),
    )


def lip_sync(
    target: np.ndarray,
    target_lm: np.ndarray,
    donor: np.ndarray,
    donor_lm: np.ndarray,
    rng: np.random.Generator | int | None = None,
    config: LipSyncConfig | None = None,
) -> Forgery:
    """The target's lower face replaced by the donor's mouth, rendered at about 96 px.

    Args:
        target: H x W x 3 uint8 RGB crop whose mouth is replaced.
        target_lm: its landmarks, (140, 2|3) pack rows (KEY_LANDMARKS) or (468, 2|3)
            mesh, target pixels.
        donor: h x w x 3 uint8 RGB image (any size) whose mouth is used: another frame
            of the same clip (a different mouth shape) or another person.
        donor_lm: its landmarks, either layout, donor pixels.
        rng: a Generator (drawn from), or an int seed.
        config: LipSyncConfig; defaults if None.
    Returns:
        Forgery(family="lipsync"): mask = the paste weight, the soft jaw region (paste
        "jaw") or the face box (paste "box", where the upper face is the target's own,
        re-rendered at low resolution).
    """
    cfg = config or LipSyncConfig()
    rng = fg.as_rng(rng)
    target = fg.check_image(target, "target")
    donor = fg.check_image(donor, "donor")
    h, w = target.shape[:2]
    size = fg.face_size(target_lm)

    # The donor's lower face onto the target's: a piecewise-affine warp over the jaw
    # line and the nose only, so the outline is the target's (no donor background
    # inside the jaw) while the lips keep the donor's shape (the new mouth).
    anchors = _anchors(target_lm)
    src, shrink = fg.shrink_to(donor, fg.face_size(donor_lm), size)
    t_anchor = fg.points(target_lm, anchors)
    d_anchor = fg.points(donor_lm, anchors) * np.float32(shrink)
    warped, valid = piecewise_affine(src, d_anchor, t_anchor, (h, w))

    top = float(rng.uniform(*cfg.jaw_top))
    region = _jaw_region((h, w), target_lm, top)
    region = fg.elastic_deform(region, cfg.deform * size, max(4.0, 0.25 * size), rng)
    erode = int(round(size * rng.uniform(*cfg.erode)))
    core = fg.grow_or_shrink((region > 0.5).astype(np.float32), -erode) * valid
    if core.sum() < 64:
        core = (_jaw_region((h, w), target_lm, top) > 0.5).astype(np.float32) * valid
    strength = float(rng.uniform(*cfg.colour_strength))
    warped = fg.colour_transfer(warped, target, core, strength)
    sigma = float(size * rng.uniform(*cfg.soften))
    # The feather stays inside the jaw line: beyond it the warped donor shows its own
    # background or hair, which no lip-sync model paints.
    jaw = fg.inner_soft_mask(core, sigma)

    # The lower face composited at full resolution, then the whole face rendered at
    # about face_px and brought back: what a 96 px generator pasted into a sharp frame
    # looks like.
    composite = jaw[..., None] * warped + (1 - jaw[..., None]) * target
    composite = np.clip(composite + 0.5, 0, 255).astype(np.uint8)
    x0, y0, x1, y1 = _face_box(target_lm, cfg.box_pad, size, (h, w))
    face_px = float(rng.uniform(*cfg.face_px))
    factor = min(1.0, face_px / max(x1 - x0, y1 - y0, 1))
    up = (cv2.INTER_LINEAR, cv2.INTER_CUBIC)[int(rng.integers(2))]
    rendered = fg.resample(composite, factor, cv2.INTER_AREA, up)

    probs = np.asarray(cfg.paste_probs, np.float64)
    paste = PASTES[int(rng.choice(len(PASTES), p=probs / probs.sum()))]
    params = {
        "donor_size": (int(donor.shape[1]), int(donor.shape[0])),
        "paste": paste,
        "face_px": face_px,
        "factor": factor,
        "jaw_top": top,
        "erode_px": erode,
        "soften_px": sigma,
        "colour": strength,
    }
    if paste == "jaw":
        return fg.forgery(target, rendered, jaw, FAMILY, params)
    box = np.zeros((h, w), np.float32)
    box[y0:y1, x0:x1] = 1.0
    box_sigma = float(size * rng.uniform(*cfg.box_soften))
    params.update(box=(x0, y0, x1, y1), box_soften_px=box_sigma)
    # The jaw stays fully replaced whatever the box edge does.
    return fg.forgery(target, rendered, np.maximum(fg.soften(box, box_sigma), jaw), FAMILY, params)
