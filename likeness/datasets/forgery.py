"""What every fake family returns, and the few image helpers they share.

A family takes an aligned face crop (H x W x 3 RGB uint8) and its landmarks and returns a
`Forgery`: the fake image and a mask of how much of each pixel was replaced. The mask is
the dense label a detector head learns to predict, so the helpers here keep one
invariant: every pixel whose mask is 0 is the target's pixel, bit for bit, and every
pixel that changed has a mask above 0 (`blend` makes it hold by construction).

Landmarks come in one of two layouts, both (N, 2) or (N, 3) in the crop's pixels:
- a dataset pack's `KEY_LANDMARKS` rows (140 of the 468 mesh points), or
- the full 468-point MediaPipe mesh.
`points` picks mesh indices out of either. Pure functions: numpy and OpenCV only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from likeness.errors import InputError
from likeness.faces.regions import KEY_LANDMARKS, positions
from likeness.faces.types import FACE_OVAL

MESH_POINTS = 468
# Mask values below this are set to 0: they move a pixel by under half a level
# (255 / 512 < 0.5), so after rounding the pixel equals the target, and a mask of 0
# there is the truth. Without it, a Gaussian's tails would mark pixels nothing changed.
MASK_FLOOR = 1.0 / 512


@dataclass(frozen=True)
class Forgery:
    """One fake crop.

    image: H x W x 3 uint8, the fake.
    mask: H x W float32 in [0, 1], how much of each pixel was replaced (0: untouched,
        the target's exact pixel; 1: all fake).
    family: which family made it ("sbi", "swap", "lipsync", "lowres", "reenact").
    params: what was drawn (JSON-friendly scalars, tuples and strings), for manifests
        and debugging.
    """

    image: np.ndarray
    mask: np.ndarray
    family: str
    params: dict = field(default_factory=dict)


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator as given, or a fresh one seeded by an int (None: OS entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Raise InputError unless `image` is H x W x 3 uint8; returns it contiguous."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise InputError(f"{what} must be an H x W x 3 RGB array, got shape {shape}")
    if image.dtype != np.uint8:
        raise InputError(f"{what} must be uint8, got {image.dtype}")
    return np.ascontiguousarray(image)


def check_landmarks(landmarks: np.ndarray, what: str = "landmarks") -> np.ndarray:
    """Raise InputError unless (140 or 468, >= 2) and finite; returns float32 (N, 2)."""
    lm = np.asarray(landmarks)
    if lm.ndim != 2 or lm.shape[1] < 2 or lm.shape[0] not in (len(KEY_LANDMARKS), MESH_POINTS):
        raise InputError(
            f"{what} must be ({len(KEY_LANDMARKS)}, 2|3) pack rows (KEY_LANDMARKS) or "
            f"({MESH_POINTS}, 2|3) mesh points, got shape {lm.shape}"
        )
    xy = lm[:, :2].astype(np.float32)
    if not np.isfinite(xy).all():
        raise InputError(f"{what} hold NaN or infinite coordinates")
    return xy


def points(landmarks: np.ndarray, indices: tuple[int, ...] | list[int]) -> np.ndarray:
    """(K, 2) float32 crop pixels of the mesh points `indices`, from either layout.

    Args:
        landmarks: (140, 2|3) pack rows in `KEY_LANDMARKS` order, or (468, 2|3) mesh.
        indices: MediaPipe mesh indices; with pack rows each must be in KEY_LANDMARKS.
    Returns:
        (K, 2) float32 x, y.
    """
    xy = check_landmarks(landmarks)
    if len(xy) == MESH_POINTS:
        return xy[list(indices)]
    try:
        return xy[positions(tuple(indices))]
    except KeyError as err:
        raise InputError(str(err.args[0])) from None


def all_points(landmarks: np.ndarray) -> np.ndarray:
    """(140, 2) float32: the KEY_LANDMARKS points from either layout, in that order, so
    that two faces' points correspond row by row whichever layout each came in."""
    return points(landmarks, KEY_LANDMARKS)


def face_size(landmarks: np.ndarray) -> float:
    """The face's scale in pixels: the landmark box's diagonal over sqrt(2)."""
    xy = points(landmarks, FACE_OVAL)
    return float(np.linalg.norm(xy.max(0) - xy.min(0)) / np.sqrt(2))


def hull_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    """H x W float32: 1 inside the convex hull of `pts` (K, 2), 0 outside."""
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.asarray(pts, np.float32).reshape(-1, 1, 2))
    # Sub-pixel vertices (shift=4) and an anti-aliased edge (8-bit only in OpenCV), so
    # the hull does not snap to whole pixels.
    cv2.fillConvexPoly(mask, np.round(hull * 16).astype(np.int32), 255, cv2.LINE_AA, 4)
    return mask.astype(np.float32) / 255.0


def face_hull_mask(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """H x W float32: the face oval's hull (forehead top to chin, cheek to cheek)."""
    return hull_mask(shape, points(landmarks, FACE_OVAL))


def elastic_deform(
    mask: np.ndarray, amount: float, cell: float, rng: np.random.Generator
) -> np.ndarray:
    """The mask pulled through a smooth random displacement field.

    Real blend masks are never the landmark hull itself (trackers jitter, tools draw
    their own masks), and a detector must not learn the hull's exact shape.

    Args:
        mask: H x W float32.
        amount: largest displacement in pixels.
        cell: spacing of the random control grid in pixels (larger: smoother).
        rng: drawn from once, for the grid.
    Returns:
        H x W float32, deformed (0 outside the image).
    """
    h, w = mask.shape
    if amount <= 0:
        return mask.astype(np.float32, copy=True)
    gh, gw = max(2, int(round(h / cell)) + 2), max(2, int(round(w / cell)) + 2)
    grid = rng.uniform(-amount, amount, (2, gh, gw)).astype(np.float32)
    dx = cv2.resize(grid[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(grid[1], (w, h), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = cv2.remap(mask.astype(np.float32), xs + dx, ys + dy, cv2.INTER_LINEAR, borderValue=0.0)
    return np.clip(out, 0.0, 1.0)


def grow_or_shrink(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate (pixels > 0) or erode (pixels < 0) with an ellipse of that radius."""
    if pixels == 0:
        return mask
    k = abs(int(pixels))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    return cv2.dilate(mask, kernel) if pixels > 0 else cv2.erode(mask, kernel)


def soften(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-blurred mask in [0, 1] (sigma in pixels; <= 0.3 leaves it as is)."""
    if sigma <= 0.3:
        return np.clip(mask, 0.0, 1.0).astype(np.float32)
    out = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), float(sigma))
    return np.clip(out, 0.0, 1.0)


def inner_soft_mask(region: np.ndarray, sigma: float) -> np.ndarray:
    """A soft mask that is 0 wherever `region` is 0: the region eroded by about two
    sigmas, then blurred, then cut to the region. For blends whose fake is only defined
    (or only wanted) inside `region`, e.g. a warp's valid area or a Poisson clone."""
    region = (region > 0.5).astype(np.float32)
    shrink = int(np.ceil(2 * sigma))
    return soften(grow_or_shrink(region, -shrink), sigma) * region


def _lab(rgb: np.ndarray) -> np.ndarray:
    # float32 in [0, 1] keeps LAB's full precision (L 0-100, a and b about +-127).
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def colour_transfer(
    source: np.ndarray, reference: np.ndarray, mask: np.ndarray, strength: float = 1.0
) -> np.ndarray:
    """`source` recoloured so that its LAB mean and spread inside `mask` match
    `reference`'s there (Reinhard et al. 2001), as face-swap tools do before blending.

    Args:
        source: H x W x 3 uint8, the face to recolour (e.g. a donor warped onto the target).
        reference: H x W x 3 uint8, whose colours to match (the target).
        mask: H x W, the pixels whose statistics count (weights, > 0.5 counts).
        strength: 0 leaves the source, 1 matches fully.
    Returns:
        H x W x 3 uint8, the whole source recoloured (the caller blends it by its mask).
    """
    sel = np.asarray(mask) > 0.5
    if sel.sum() < 16 or strength <= 0:
        return source.copy()
    src, ref = _lab(source), _lab(reference)
    s_mean, s_std = src[sel].mean(0), src[sel].std(0) + 1e-3
    r_mean, r_std = ref[sel].mean(0), ref[sel].std(0) + 1e-3
    # The spread ratio is bounded: a flat donor region must not blow up into noise.
    gain = np.clip(r_std / s_std, 0.5, 2.0)
    matched = (src - s_mean) * gain + r_mean
    out = src + strength * (matched - src)
    out[..., 0] = np.clip(out[..., 0], 0, 100)
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def blend(target: np.ndarray, fake: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The feathered paste `out = mask * fake + (1 - mask) * target`, and its mask.

    Mask values under MASK_FLOOR are set to 0 first (they cannot move a pixel by half a
    level), so the returned mask is 0 exactly where the output equals the target by
    construction, and above 0 wherever a pixel could have changed.

    Args:
        target: H x W x 3 uint8, the real crop.
        fake: H x W x 3 uint8 (or float in 0-255), the replacement.
        mask: H x W float, how much of the fake to take at each pixel.
    Returns:
        (image H x W x 3 uint8, mask H x W float32 in [0, 1]).
    """
    if fake.shape != target.shape:
        raise InputError(f"fake {fake.shape} and target {target.shape} differ in shape")
    if mask.shape != target.shape[:2]:
        raise InputError(f"mask {mask.shape} does not fit the target {target.shape[:2]}")
    m = np.clip(np.nan_to_num(mask.astype(np.float32)), 0.0, 1.0)
    m[m < MASK_FLOOR] = 0.0
    a = m[..., None]
    out = np.rint(a * fake.astype(np.float32) + (1.0 - a) * target.astype(np.float32))
    image = np.where(a > 0, np.clip(out, 0, 255), target).astype(np.uint8)
    return image, m


def forgery(
    target: np.ndarray, fake: np.ndarray, mask: np.ndarray, family: str, params: dict
) -> Forgery:
    """`blend` packed as a Forgery (the last step of every family)."""
    image, m = blend(target, fake, mask)
    return Forgery(image, m, family, params)


def resample(rgb: np.ndarray, scale: float, down: int, up: int) -> np.ndarray:
    """`rgb` rendered at `scale` of its size (interpolation `down`) and brought back to
    its size (interpolation `up`): the blur and ringing of a small render upsampled."""
    h, w = rgb.shape[:2]
    sw, sh = max(4, int(round(w * scale))), max(4, int(round(h * scale)))
    small = cv2.resize(rgb, (sw, sh), interpolation=down)
    return cv2.resize(small, (w, h), interpolation=up)


def unsharp(rgb: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """Unsharp mask: rgb + amount * (rgb - blur(rgb)), uint8."""
    blurred = cv2.GaussianBlur(rgb, (0, 0), max(sigma, 0.3))
    return cv2.addWeighted(rgb, 1 + amount, blurred, -amount, 0)


def shrink_to(image: np.ndarray, face: float, wanted: float) -> tuple[np.ndarray, float]:
    """A donor image brought down (INTER_AREA) so its face is about `wanted` pixels,
    when it is more than a quarter larger; warping a large face straight down to a
    small one with bilinear sampling would alias, which no real fake does.

    Args:
        image: h x w x 3 uint8.
        face: its face size in pixels (`face_size` of its landmarks).
        wanted: the face size to bring it to (the target's).
    Returns:
        (the image, the factor its landmark coordinates must be multiplied by; 1.0 when
        it was left as it was).
    """
    if face <= 1.25 * wanted or wanted <= 0:
        return image, 1.0
    factor = wanted / face
    h, w = image.shape[:2]
    size = (max(1, int(round(w * factor))), max(1, int(round(h * factor))))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # The factor actually applied, per axis the same to within a pixel; use x's.
    return small, size[0] / w
