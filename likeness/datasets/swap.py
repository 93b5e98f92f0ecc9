"""The face-swap family: another person's face warped onto the target's landmarks.

The classic FaceSwap recipe (FaceForensics++'s graphics-based swap, and the last step of
every landmark-based swap tool): Delaunay triangles over the target's landmarks, each
donor triangle warped affinely onto its target triangle (a piecewise-affine warp), the
donor's colours matched to the target's inside the face, and the face pasted through a
feathered mask, sometimes after a Poisson clone. Its artefacts are the ones such swaps
leave: a blending boundary, a colour or sharpness mismatch, a different identity's
texture in the target's geometry. Pure function: numpy and OpenCV in, numpy out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from likeness.datasets import forgery as fg
from likeness.datasets.forgery import Forgery
from likeness.faces.regions import LEFT_BROW, RIGHT_BROW
from likeness.faces.types import FACE_OVAL

FAMILY = "swap"
# Mask shapes: the whole face oval, or cut at the brows (68-point swap tools' masks
# have no forehead).
REGIONS = ("oval", "brows")


@dataclass(frozen=True)
class SwapConfig:
    """What `face_swap` draws from. Fractions are of the target's face size (landmark
    box diagonal over sqrt 2, about 140 px in a 256 px FFHQ-style crop)."""

    region_probs: tuple[float, float] = (0.5, 0.5)  # in REGIONS order
    deform: float = 0.02  # elastic displacement of the mask, at most
    erode: tuple[float, float] = (0.0, 0.05)  # inward from the hull (and the feather)
    soften: tuple[float, float] = (0.015, 0.05)  # feather sigma range
    colour_prob: float = 0.85  # colour transfer at all (without: the mismatch shows)
    colour_strength: tuple[float, float] = (0.6, 1.0)
    poisson_prob: float = 0.3  # cv2.seamlessClone before the feathered paste
    lowres_prob: float = 0.3  # the donor face rendered small first (64-128 px swaps)
    lowres_scale: tuple[float, float] = (0.4, 0.8)
    min_triangle_area: float = 0.25  # px^2: slivers below this cover no pixel


def delaunay(pts: np.ndarray) -> np.ndarray:
    """(T, 3) int32 vertex indices of the Delaunay triangles over `pts` (K, 2).

    Args:
        pts: (K, 2) float points; duplicates are allowed (one of them is used).
    Returns:
        (T, 3) int32 indices into `pts`.
    """
    pts = np.asarray(pts, np.float32)
    lo = np.floor(pts.min(0)) - 2
    hi = np.ceil(pts.max(0)) + 2
    subdiv = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]), int(hi[1] - lo[1])))
    for p in pts:
        subdiv.insert((float(p[0]), float(p[1])))
    tris = subdiv.getTriangleList().reshape(-1, 3, 2)
    # Back to indices by nearest point (Subdiv2D returns coordinates; its three virtual
    # outer vertices lie far outside and match nothing within a pixel).
    dist = np.linalg.norm(tris[:, :, None, :] - pts[None, None, :, :], axis=-1)
    idx = dist.argmin(-1)
    ok = (dist.min(-1) < 0.5).all(-1) & (idx[:, 0] != idx[:, 1]) & (idx[:, 1] != idx[:, 2])
    ok &= idx[:, 0] != idx[:, 2]
    return idx[ok].astype(np.int32)


def piecewise_affine(
    donor: np.ndarray,
    donor_pts: np.ndarray,
    target_pts: np.ndarray,
    shape: tuple[int, int],
    min_area: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """The donor image warped so that `donor_pts` land on `target_pts`, one affine map
    per Delaunay triangle of the target points.

    Args:
        donor: h x w x 3 uint8 (any size).
        donor_pts, target_pts: (K, 2) corresponding points, donor and target pixels.
        shape: (H, W) of the output (the target's).
        min_area: target triangles smaller than this (px^2) are skipped.
    Returns:
        (warped H x W x 3 uint8, valid H x W float32: 1 inside the triangulated area,
        where `warped` is defined; the target's convex hull of the points).
    """
    h, w = shape
    tris = delaunay(target_pts)
    t = np.asarray(target_pts, np.float32)[tris]  # (T, 3, 2)
    d = np.asarray(donor_pts, np.float32)[tris]
    e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    keep = area >= min_area
    t, d = t[keep], d[keep]
    # Which triangle each pixel is in (-1: none), rasterised once; shared edges go to
    # whichever triangle is drawn last, which both map to the same place.
    owner = np.full((h, w), -1, np.int32)
    for k in range(len(t)):
        cv2.fillConvexPoly(owner, np.round(t[k]).astype(np.int32), int(k))
    maps = np.stack([cv2.getAffineTransform(t[k], d[k]) for k in range(len(t))])
    maps = maps.astype(np.float32) if len(t) else np.zeros((0, 2, 3), np.float32)
    ys, xs = np.nonzero(owner >= 0)
    a = maps[owner[ys, xs]]  # (P, 2, 3)
    map_x = np.full((h, w), -1.0, np.float32)
    map_y = np.full((h, w), -1.0, np.float32)
    map_x[ys, xs] = a[:, 0, 0] * xs + a[:, 0, 1] * ys + a[:, 0, 2]
    map_y[ys, xs] = a[:, 1, 0] * xs + a[:, 1, 1] * ys + a[:, 1, 2]
    warped = cv2.remap(donor, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return warped, (owner >= 0).astype(np.float32)


def _region(shape, landmarks, kind: str) -> np.ndarray:
    oval = fg.points(landmarks, FACE_OVAL)
    if kind == "oval":
        return fg.hull_mask(shape, oval)
    brows = fg.points(landmarks, (*RIGHT_BROW, *LEFT_BROW))
    keep = oval[oval[:, 1] >= brows[:, 1].min()]
    return fg.hull_mask(shape, np.concatenate([keep, brows]))


def _poisson(fake: np.ndarray, target: np.ndarray, region: np.ndarray) -> np.ndarray | None:
    """cv2.seamlessClone of `fake` into `target` over `region` (binary), in place; None
    when OpenCV cannot (region touching the border, or empty)."""
    binary = (region > 0.5).astype(np.uint8) * 255
    x, y, bw, bh = cv2.boundingRect(binary)
    h, w = binary.shape
    if bw < 8 or bh < 8 or x < 2 or y < 2 or x + bw > w - 2 or y + bh > h - 2:
        return None
    # seamlessClone centres the mask's bounding box on `p` (integer halves), which puts
    # the fake back exactly where it is for this centre.
    centre = (x + bw // 2, y + bh // 2)
    try:
        return cv2.seamlessClone(fake, target, binary, centre, cv2.NORMAL_CLONE)
    except cv2.error:
        return None


def face_swap(
    target: np.ndarray,
    target_lm: np.ndarray,
    donor: np.ndarray,
    donor_lm: np.ndarray,
    rng: np.random.Generator | int | None = None,
    config: SwapConfig | None = None,
) -> Forgery:
    """The donor's face swapped onto the target crop.

    Args:
        target: H x W x 3 uint8 RGB crop whose face is replaced.
        target_lm: its landmarks, (140, 2|3) pack rows (KEY_LANDMARKS) or (468, 2|3)
            mesh, target pixels.
        donor: h x w x 3 uint8 RGB image of another person (any size).
        donor_lm: its landmarks, either layout, donor pixels.
        rng: a Generator (drawn from), or an int seed.
        config: SwapConfig; defaults if None.
    Returns:
        Forgery(family="swap"): mask = the paste weight of the warped donor face (0
        outside the face, so the hair, background and neck are the target's).
    """
    cfg = config or SwapConfig()
    rng = fg.as_rng(rng)
    target = fg.check_image(target, "target")
    donor = fg.check_image(donor, "donor")
    h, w = target.shape[:2]
    t_pts, d_pts = fg.all_points(target_lm), fg.all_points(donor_lm)
    size = fg.face_size(target_lm)

    params: dict = {"donor_size": (int(donor.shape[1]), int(donor.shape[0]))}
    src, shrink = fg.shrink_to(donor, fg.face_size(donor_lm), size)
    d_pts = d_pts * np.float32(shrink)
    if rng.random() < cfg.lowres_prob:
        factor = float(rng.uniform(*cfg.lowres_scale))
        src = fg.resample(src, factor, cv2.INTER_AREA, cv2.INTER_CUBIC)
        params["lowres"] = factor
    warped, valid = piecewise_affine(src, d_pts, t_pts, (h, w), cfg.min_triangle_area)

    probs = np.asarray(cfg.region_probs, np.float64)
    kind = REGIONS[int(rng.choice(len(REGIONS), p=probs / probs.sum()))]
    region = _region((h, w), target_lm, kind)
    region = fg.elastic_deform(region, cfg.deform * size, max(4.0, 0.25 * size), rng)
    erode = int(round(size * rng.uniform(*cfg.erode)))
    core = fg.grow_or_shrink((region > 0.5).astype(np.float32), -erode) * valid
    if core.sum() < 64:  # tiny face: keep the undeformed hull
        core = (_region((h, w), target_lm, kind) > 0.5).astype(np.float32) * valid
    params.update(region=kind, erode_px=erode)

    if rng.random() < cfg.colour_prob:
        strength = float(rng.uniform(*cfg.colour_strength))
        warped = fg.colour_transfer(warped, target, core, strength)
        params["colour"] = strength
    sigma = float(size * rng.uniform(*cfg.soften))
    params["soften_px"] = sigma
    if rng.random() < cfg.poisson_prob:
        cloned = _poisson(warped, target, core)
        if cloned is not None:
            # The clone changes only pixels inside `core`; the feather stays inside it
            # too, so the mask is 0 wherever the output is the target.
            params["poisson"] = True
            return fg.forgery(target, cloned, fg.inner_soft_mask(core, sigma / 2), FAMILY, params)
    params["poisson"] = False
    # The feather stays inside `core` (itself inside `valid`, where the warp is
    # defined): beyond the hull the donor shows its own background and hair.
    mask = fg.inner_soft_mask(core, sigma)
    fake = np.where(valid[..., None] > 0, warped, target)
    return fg.forgery(target, fake, mask, FAMILY, params)
