"""Self-blended images (Shiohara & Yamasaki, CVPR 2022): a face blended onto itself.

One copy of a real frame is changed slightly (colour, sharpness, a small shift and
scale) and blended back into the original through a deformed, softened mask derived
from the face's landmarks. The result carries the boundary and statistics artefacts of
face swaps and reenactment without showing any generator's own fingerprint, which is
why detectors trained on it generalise to fakes they never saw. Pure function: numpy
and OpenCV in, numpy out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from likeness.datasets import forgery as fg
from likeness.datasets.forgery import Forgery
from likeness.faces.regions import LEFT_BROW, LIPS_OUTER, NOSE, RIGHT_BROW
from likeness.faces.types import FACE_OVAL, LEFT_EYE_RING, MOUTH_LEFT, MOUTH_RIGHT, RIGHT_EYE_RING

# Inner region: eyes, nose bridge and mouth, for the smaller of the two mask shapes.
INNER_REGION = (*RIGHT_EYE_RING, *LEFT_EYE_RING, 168, 6, 1, 2, MOUTH_RIGHT, MOUTH_LEFT, 17, 0, 152)


@dataclass(frozen=True)
class SelfBlendConfig:
    shift: float = 0.03  # max translation of the source copy, fraction of face size
    scale: float = 0.05  # max relative scale change, independently in x and y
    hue: int = 8  # max hue shift (OpenCV's 0-180 hue units)
    saturation: float = 0.15  # max relative saturation change
    brightness: float = 0.12  # max relative brightness/contrast change
    blur_or_sharpen: float = 0.5  # probability of changing sharpness at all
    deform: float = 0.06  # elastic deformation of the mask, fraction of face size
    soften: tuple[float, float] = (0.02, 0.08)  # mask blur sigma range, fraction of face
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
    inner_mask_prob: float = 0.3


@dataclass
class SelfBlend:
    image: np.ndarray  # H x W x 3 uint8, the fake
    mask: np.ndarray  # H x W float32 in [0, 1], where the source copy shows through
    params: dict  # what was drawn, for labels and debugging


def _face_size(landmarks: np.ndarray) -> float:
    xy = landmarks[:, :2]
    return float(np.linalg.norm(xy.max(0) - xy.min(0)) / np.sqrt(2))


def _colour_jitter(rgb: np.ndarray, cfg: SelfBlendConfig, rng: np.random.Generator) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue, cfg.hue)) % 180
    hsv[..., 1] *= 1 + rng.uniform(-cfg.saturation, cfg.saturation)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    gain = 1 + rng.uniform(-cfg.brightness, cfg.brightness)
    bias = rng.uniform(-cfg.brightness, cfg.brightness) * 128
    return np.clip(out * gain + bias, 0, 255).astype(np.uint8)


def _sharpness(rgb: np.ndarray, size: float, cfg: SelfBlendConfig, rng: np.random.Generator):
    if rng.random() >= cfg.blur_or_sharpen:
        return rgb, "none"
    sigma = max(0.5, size * rng.uniform(0.004, 0.012))
    if rng.random() < 0.5:
        return cv2.GaussianBlur(rgb, (0, 0), sigma), "blur"
    return fg.unsharp(rgb, sigma, rng.uniform(0.5, 1.5)), "sharpen"


def _geometry(
    rgb: np.ndarray, centre: np.ndarray, size: float, cfg, rng
) -> tuple[np.ndarray, dict]:
    sx, sy = 1 + rng.uniform(-cfg.scale, cfg.scale, 2)
    tx, ty = rng.uniform(-cfg.shift, cfg.shift, 2) * size
    m = np.array([[sx, 0, (1 - sx) * centre[0] + tx], [0, sy, (1 - sy) * centre[1] + ty]])
    h, w = rgb.shape[:2]
    out = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out, {"scale": (float(sx), float(sy)), "shift": (float(tx), float(ty))}


def blend_mask(
    shape: tuple[int, int], landmarks: np.ndarray, cfg: SelfBlendConfig, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """Landmark hull, elastically deformed, randomly grown or shrunk, then softened."""
    h, w = shape
    size = _face_size(landmarks)
    inner = rng.random() < cfg.inner_mask_prob
    idx = list(INNER_REGION if inner else FACE_OVAL)
    hull = cv2.convexHull(landmarks[idx, :2].astype(np.float32))
    mask = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1.0)
    # Elastic deformation: a smooth random displacement field the size of the face.
    grid = max(2, int(round(size / 8)))
    amp = cfg.deform * size
    small = rng.uniform(-amp, amp, (2, max(2, h // grid + 2), max(2, w // grid + 2)))
    dx = cv2.resize(small[0].astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(small[1].astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mask = cv2.remap(mask, xs + dx, ys + dy, cv2.INTER_LINEAR, borderValue=0.0)
    k = max(1, int(round(size * rng.uniform(0.0, 0.06))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    grow = rng.random() < 0.5
    mask = cv2.dilate(mask, kernel) if grow else cv2.erode(mask, kernel)
    sigma = size * rng.uniform(*cfg.soften)
    mask = cv2.GaussianBlur(mask, (0, 0), max(sigma, 0.5))
    ratio = float(rng.choice(cfg.blend_ratios))
    mask = np.clip(mask, 0, 1) * ratio
    return mask, {"inner": inner, "grow": grow, "morph_px": k, "soften_px": sigma, "ratio": ratio}


def self_blend(
    rgb: np.ndarray,
    landmarks: np.ndarray,
    seed: int | np.random.Generator | None = None,
    config: SelfBlendConfig | None = None,
) -> SelfBlend:
    """A self-blended fake of `rgb` from its face mesh (468 points, frame pixels)."""
    cfg = config or SelfBlendConfig()
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    size = _face_size(landmarks)
    centre = landmarks[:, :2].mean(0)
    source = _colour_jitter(rgb, cfg, rng)
    source, sharp = _sharpness(source, size, cfg, rng)
    source, geo = _geometry(source, centre, size, cfg, rng)
    mask, mask_params = blend_mask(rgb.shape[:2], landmarks, cfg, rng)
    alpha = mask[..., None]
    fake = source.astype(np.float32) * alpha + rgb.astype(np.float32) * (1 - alpha)
    image = np.where(alpha > 0, np.clip(fake + 0.5, 0, 255), rgb).astype(np.uint8)
    return SelfBlend(image, mask, {"sharpness": sharp, **geo, **mask_params})


# --- the full SBI recipe, as a fake family ------------------------------------------

# Mask shapes (SBI's `random_get_hull` and more): the whole oval; the oval cut at the
# brows (68-point FaceSwap masks have no forehead); eyes-nose-mouth; the union of the
# parts (eyes with brows, nose, mouth); a random arc of the oval with the nose.
HULL_KINDS = ("face", "brows", "inner", "components", "random")


@dataclass(frozen=True)
class SbiConfig:
    """What `sbi` draws from. Fractions are of the face size (landmark box diagonal
    over sqrt 2, about 140 px in a 256 px FFHQ-style crop)."""

    # Mask shape probabilities, in HULL_KINDS order.
    hull_probs: tuple[float, ...] = (0.35, 0.2, 0.15, 0.15, 0.15)
    deform: float = 0.04  # elastic displacement of the mask, at most
    deform_cell: float = 0.25  # spacing of the displacement grid (larger: smoother)
    morph: tuple[float, float] = (-0.05, 0.04)  # erode (< 0) or dilate the mask, range
    soften: tuple[float, float] = (0.01, 0.06)  # mask blur sigma range
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
    # Source augmentation (the copy that is blended in).
    rgb_shift: float = 16.0  # per-channel shift, levels
    hue: float = 8.0  # OpenCV hue units (0-180)
    saturation: float = 0.2  # relative
    brightness: float = 0.1  # relative gain and bias
    contrast: float = 0.1  # relative, about the mean
    colour_prob: float = 0.9  # probability of any colour change
    # Frequency: blur, sharpen, or a downscale-upscale round trip (SBI's RandomDownScale).
    frequency_probs: tuple[float, float, float, float] = (0.3, 0.2, 0.2, 0.3)  # none first
    downscale: tuple[float, float] = (0.35, 0.8)
    # Geometry: the source copy scaled about the face centre and shifted.
    scale: float = 0.06  # relative, independently in x and y
    shift: float = 0.03
    geometry_prob: float = 0.8
    min_change: float = 3.0  # redraw the augmentation while the mean change is smaller


def _sbi_hull(
    shape: tuple[int, int], landmarks: np.ndarray, kind: str, rng: np.random.Generator
) -> np.ndarray:
    if kind == "face":
        return fg.face_hull_mask(shape, landmarks)
    if kind == "inner":
        return fg.hull_mask(shape, fg.points(landmarks, INNER_REGION))
    if kind == "brows":
        oval = fg.points(landmarks, FACE_OVAL)
        brows = fg.points(landmarks, (*RIGHT_BROW, *LEFT_BROW))
        keep = oval[oval[:, 1] >= brows[:, 1].min()]
        return fg.hull_mask(shape, np.concatenate([keep, brows]))
    if kind == "components":
        parts = (
            (*RIGHT_EYE_RING, *RIGHT_BROW),
            (*LEFT_EYE_RING, *LEFT_BROW),
            NOSE,
            LIPS_OUTER,
        )
        masks = [fg.hull_mask(shape, fg.points(landmarks, p)) for p in parts]
        return np.maximum.reduce(masks)
    if kind == "random":
        n = len(FACE_OVAL)
        start, length = int(rng.integers(n)), int(rng.integers(n // 3, n))
        arc = [FACE_OVAL[(start + i) % n] for i in range(length)]
        return fg.hull_mask(shape, fg.points(landmarks, (*arc, *NOSE)))
    raise ValueError(f"unknown hull kind {kind!r}")


def _sbi_colour(rgb: np.ndarray, cfg: SbiConfig, rng: np.random.Generator) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue, cfg.hue)) % 180
    hsv[..., 1] *= 1 + rng.uniform(-cfg.saturation, cfg.saturation)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
    out = out.astype(np.float32) + rng.uniform(-cfg.rgb_shift, cfg.rgb_shift, 3)
    mean = out.mean()
    out = (out - mean) * (1 + rng.uniform(-cfg.contrast, cfg.contrast)) + mean
    out = out * (1 + rng.uniform(-cfg.brightness, cfg.brightness))
    out += rng.uniform(-cfg.brightness, cfg.brightness) * 128
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _sbi_frequency(rgb: np.ndarray, size: float, cfg: SbiConfig, rng: np.random.Generator):
    probs = np.asarray(cfg.frequency_probs, np.float64)
    kind = ("none", "blur", "sharpen", "downscale")[int(rng.choice(4, p=probs / probs.sum()))]
    if kind == "none":
        return rgb, {"frequency": kind}
    if kind == "downscale":
        factor = float(rng.uniform(*cfg.downscale))
        interp = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA)[int(rng.integers(3))]
        return fg.resample(rgb, factor, cv2.INTER_AREA, interp), {
            "frequency": kind,
            "factor": factor,
        }
    sigma = max(0.5, size * float(rng.uniform(0.004, 0.012)))
    if kind == "blur":
        return cv2.GaussianBlur(rgb, (0, 0), sigma), {"frequency": kind, "sigma": sigma}
    amount = float(rng.uniform(0.5, 1.5))
    return fg.unsharp(rgb, sigma, amount), {"frequency": kind, "sigma": sigma, "amount": amount}


def sbi(
    target: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator | int | None = None,
    config: SbiConfig | None = None,
) -> Forgery:
    """A self-blended image with the full SBI recipe (Shiohara & Yamasaki, CVPR 2022).

    A copy of the crop is changed (colour: RGB and HSV shifts, brightness, contrast;
    frequency: blur, sharpen or a downscale round trip; geometry: scale and shift about
    the face centre) and blended back into the crop through a mask made from the
    landmarks (one of HULL_KINDS), elastically deformed, eroded or dilated, softened
    and scaled by a blend ratio. At the crop's full resolution.

    Args:
        target: H x W x 3 uint8 RGB crop.
        landmarks: (140, 2|3) pack rows (KEY_LANDMARKS) or (468, 2|3) mesh, crop pixels.
        rng: a Generator (drawn from), or an int seed.
        config: SbiConfig; defaults if None.
    Returns:
        Forgery(family="sbi"): mask = blend weight of the changed copy per pixel.
    """
    cfg = config or SbiConfig()
    rng = fg.as_rng(rng)
    target = fg.check_image(target, "target")
    h, w = target.shape[:2]
    size = fg.face_size(landmarks)
    centre = fg.points(landmarks, FACE_OVAL).mean(0)

    probs = np.asarray(cfg.hull_probs, np.float64)
    kind = HULL_KINDS[int(rng.choice(len(HULL_KINDS), p=probs / probs.sum()))]
    mask = _sbi_hull((h, w), landmarks, kind, rng)
    mask = fg.elastic_deform(mask, cfg.deform * size, max(4.0, cfg.deform_cell * size), rng)
    morph = int(round(size * rng.uniform(*cfg.morph)))
    mask = fg.grow_or_shrink(mask, morph)
    sigma = float(size * rng.uniform(*cfg.soften))
    mask = fg.soften(mask, sigma)
    if mask.max() < 0.5:  # eroded away (tiny face): fall back to the plain face hull
        kind, mask = "face", fg.soften(fg.face_hull_mask((h, w), landmarks), sigma)
    ratio = float(rng.choice(cfg.blend_ratios))
    mask = mask * ratio

    # Redraw the source augmentation a few times if it barely changes anything: a
    # "fake" indistinguishable from its real is a wrong label, not a hard example.
    sel = mask > 0.5 * ratio
    for _attempt in range(4):
        source, drawn = target, {}
        if rng.random() < cfg.colour_prob:
            source = _sbi_colour(source, cfg, rng)
        source, freq = _sbi_frequency(source, size, cfg, rng)
        if rng.random() < cfg.geometry_prob:
            source, geo = _geometry(source, centre, size, cfg, rng)
            drawn.update(geo)
        drawn.update(freq)
        change = np.abs(source.astype(np.float32) - target)[sel].mean() if sel.any() else 0.0
        if change >= cfg.min_change:
            break
    params = {"hull": kind, "morph_px": morph, "soften_px": sigma, "ratio": ratio, **drawn}
    return fg.forgery(target, source, mask, "sbi", params)
