"""Eye detail from the photo: the rendered eyes take the source photo's iris, sclera and
lash structure, laid into the driving eye's shape (issue 15, item 2).

The renderer sees the crop at 128 px and its warp is smooth around the eyes, so the
irises, eye whites and lashes come out paler and softer than in the photo (eye-box
sharpness 0.57 of the real frame's on the test split). The photo holds that detail at
full resolution; this step carries it over without a network. For each eye, every
pixel of the driving eye's box is mapped into the source eye by eye coordinates: u
along the inner -> outer corner line, v across it, with v between the lids rescaled
from the driving lids' opening to the source's and v outside them shifted with the
nearest lid, so lids and lashes land on the driving lids. The render keeps its own
local mean (a Gaussian of `low_sigma` eye widths: the lighting and colour around the
eye stay the render's) and takes the source's structure above it, inside the aperture
plus a band above the upper lid for the lashes, feathered at the edge. The iris lands
where it sits in the photo's eye, which is where `gaze.retarget_gaze` (run next)
starts its shift. A closing eye (a blink, or the driving lids much narrower than the
photo's) fades back to the render alone: squeezing an open eye into a slit would
squash the iris, where a real lid covers it. Pure numpy and OpenCV.

Measured (`likeness bench generator`, test split): see the model card.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from likeness.config import JsonConfig
from likeness.generator import keypoints as kpt
from likeness.generator.gaze import EYES, EyeFrame, ramp


@dataclass(frozen=True)
class EyeDetailConfig(JsonConfig):
    config_name = "eye detail config"

    enabled: bool = True
    # The render's own part: a Gaussian of this many eye widths (about 7 px of a 27 px
    # eye), under which the render is kept; the iris (0.42 eye widths across), the
    # eye white's edge and the lashes lie above it.
    low_sigma: float = 0.25
    # Around the aperture, in eye widths: the band above the upper lid (lashes and the
    # lid crease) and below the lower lid, and past each corner.
    upper_band: float = 0.15
    lower_band: float = 0.06
    corner_band: float = 0.06
    feather: float = 1.5  # px, the mask's soft edge
    # Eye openness (`keypoints.eye_openness`) at which the step starts and is full.
    closed: float = 0.10
    open: float = 0.18
    # Driving opening over the source's: at and below `squash_low` the render alone,
    # full from `squash_high` (a wider driving eye is fine: v rescales).
    squash_low: float = 0.55
    squash_high: float = 0.8
    # An eye's width (relative to the face) over the photo's: at and below `turned_low`
    # the render alone, full from `turned_high` (about 50 and 35 degrees of extra yaw
    # for an eye's own foreshortening, cos 50 = 0.64; the far eye shrinks faster).
    turned_low: float = 0.6
    turned_high: float = 0.8


def _widths(kp: np.ndarray) -> np.ndarray:
    """(..., 2 eyes): each eye's corner-to-corner width over the outer corners' distance
    (how much of the eye faces the camera: a turned head foreshortens the far eye)."""
    span = np.linalg.norm(kp[..., kpt.AXIS_ROWS[0], :2] - kp[..., kpt.AXIS_ROWS[1], :2], axis=-1)
    out = []
    for (outer, inner), *_ in EYES:
        out.append(np.linalg.norm(kp[..., outer, :2] - kp[..., inner, :2], axis=-1))
    return np.stack(out, -1) / np.maximum(span, 1e-6)[..., None]


def weights(kp_source: np.ndarray, kp_driving: np.ndarray, config: EyeDetailConfig) -> np.ndarray:
    """(N, 2 eyes): how much of the photo's eye each driving frame takes: none for a
    closing eye, and none for an eye the head has turned away (its width, relative to
    the face, under `turned_low` of the photo's: the nose may cover part of it)."""
    kp_source = np.asarray(kp_source, np.float64)
    kp_driving = np.asarray(kp_driving, np.float64)
    src, drv = kpt.eye_openness(kp_source), kpt.eye_openness(kp_driving)
    both = np.minimum(src[None], drv)
    turned = _widths(kp_driving) / np.maximum(_widths(kp_source)[None], 1e-6)
    return (
        ramp(both, config.closed, config.open)
        * ramp(drv / np.maximum(src[None], 1e-6), config.squash_low, config.squash_high)
        * ramp(turned, config.turned_low, config.turned_high)
    )


def transfer_eye(
    frame: np.ndarray,
    source: np.ndarray,
    px_driving: np.ndarray,
    px_source: np.ndarray,
    eye: int,
    weight: float,
    config: EyeDetailConfig,
) -> np.ndarray:
    """`frame` (H, W, 3 uint8) with eye `eye` given the source's structure, laid into
    the driving eye (`px_*`: (K, >=2) keypoints in pixels of each picture); pixels
    outside the eye's box are returned unchanged."""
    if weight <= 0:
        return frame
    d, s = EyeFrame(px_driving, eye), EyeFrame(px_source, eye)
    if d.width < 4 or s.width < 4:
        return frame
    box = d.box(frame.shape, across=0.6, along=0.2, min_side=4)
    if box is None:
        return frame
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    uv = d.coords(np.stack([xx, yy], -1))
    u, v = uv[..., 0], uv[..., 1]
    uc = np.clip(u, 0.0, 1.0)
    (up_d, lo_d), (up_s, lo_s) = d.curves(uc), s.curves(uc)
    # v measured from the upper lid towards the lower one (in each picture's sense).
    t_d = (v - up_d) * d.up * -1
    gap_d, gap_s = (lo_d - up_d) * d.up * -1, (lo_s - up_s) * s.up * -1
    inside = (t_d >= 0) & (t_d <= gap_d)
    scale = np.where(gap_d > 1e-3, gap_s / np.maximum(gap_d, 1e-3), 1.0)
    t_s = np.where(t_d < 0, t_d, np.where(inside, t_d * scale, gap_s + (t_d - gap_d)))
    v_s = up_s - t_s * s.up
    maps = s.to_pixels(u, v_s).astype(np.float32)
    warped = cv2.remap(
        source.astype(np.float32), maps[..., 0], maps[..., 1], cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101,
    )  # fmt: skip
    # Where the step applies: the aperture, a band over the upper lid and under the
    # lower one, a little past the corners; feathered by distance to its edge.
    region = (
        (u > -config.corner_band)
        & (u < 1 + config.corner_band)
        & (t_d > -config.upper_band)
        & (t_d < gap_d + config.lower_band)
    )
    edge = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 5)
    mask = (np.clip(edge / max(config.feather, 1e-3), 0.0, 1.0) * weight)[..., None]
    patch = frame[y0:y1, x0:x1].astype(np.float32)
    sigma = max(0.5, config.low_sigma * d.width)

    def low(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)

    # Keep the render's local mean, take the photo's structure above it.
    detail = (warped - low(warped)) - (patch - low(patch))
    out = frame.copy()
    out[y0:y1, x0:x1] = np.clip(np.rint(patch + mask * detail), 0, 255).astype(frame.dtype)
    return out


def restore_eyes(
    frames: np.ndarray,
    source: np.ndarray,
    kp_source: np.ndarray,
    kp_driving: np.ndarray,
    config: EyeDetailConfig | None = None,
) -> np.ndarray:
    """Rendered crops (N, S, S, 3) uint8 for driving keypoints (N, K, 3) of a source
    crop (S, S, 3) with keypoints (K, 3) -> the crops with both eyes carrying the
    source's detail (see the module's docstring)."""
    config = config or EyeDetailConfig()
    if not config.enabled or len(frames) == 0:
        return frames
    size = frames.shape[2]
    if source.shape[:2] != frames.shape[1:3]:
        source = cv2.resize(source, (size, frames.shape[1]), interpolation=cv2.INTER_AREA)
    kp_source = np.asarray(kp_source, np.float64)
    kp_driving = np.asarray(kp_driving, np.float64)
    px_source = kpt.to_pixels(kp_source, size)[:, :2].astype(np.float64)
    w = weights(kp_source, kp_driving, config)
    out = []
    for frame, kp, ws in zip(frames, kp_driving, w, strict=True):
        px = kpt.to_pixels(kp, size)[:, :2].astype(np.float64)
        for eye in range(2):
            frame = transfer_eye(frame, source, px, px_source, eye, float(ws[eye]), config)
        out.append(frame)
    return np.stack(out)
