"""Gaze retargeting: move each rendered iris inside its eye to where the driving
keypoints put it (issue 15, item 2).

The renderer's warp is pinned by the lids and eye corners around the iris, so it moves
the irises only 13-18 % of what the iris keypoints ask (`tests/test_eyes_mouth.py`).
This step does the rest on the rendered crop, without a network: inside each eye's
aperture (the driving lids, which the render already follows) a displacement field
slides the iris along the eye by the driver's change of iris position, ramping to zero
at the corners, so the sclera on the trailing side stretches from the crop itself and
the leading side's is covered. Pixels outside the aperture (lids, lashes, skin) are
never touched, and a nearly closed eye (a blink, or a photo with closed eyes) gets no
shift. Pure numpy and OpenCV.

Measured (`likeness bench generator`, test split): see the model card. The step can
only be as right as the iris keypoints: on 6 test clips (24 frames each,
`bench.eyes_mouth.measure_clip`) it takes the output's gaze error from 0.0445 to 0.0424
eye widths, where the keypoints themselves read 0.032 (their error against each frame's
measured gaze) and the still first frame 0.049; along the eye it reaches the
keypoints' error on 3 of them (dt-w009 happy 0.0266 -> 0.0139, keypoints 0.0133).

Relative motion needs nothing extra here: the driving keypoints `animate` renders are
already the photo's keypoints plus the driver's change since its first frame
(`motion.MotionTransfer`), iris rows included, so the photo's own iris offset plus the
driver's change is what the iris rows say.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from likeness.config import JsonConfig
from likeness.generator import keypoints as kpt

_ROW = {p: i for i, p in enumerate(kpt.MESH_POINTS)}
# Per eye (subject's right, left): outer and inner corner, upper lid (middle, outer
# side), lower lid (middle, outer side); the iris row.
EYES = (
    ((_ROW[33], _ROW[133]), (_ROW[159], _ROW[160]), (_ROW[145], _ROW[144]), kpt.IRIS_ROWS[0]),
    ((_ROW[263], _ROW[362]), (_ROW[386], _ROW[387]), (_ROW[374], _ROW[373]), kpt.IRIS_ROWS[1]),
)


@dataclass(frozen=True)
class GazeConfig(JsonConfig):
    config_name = "gaze config"

    enabled: bool = True
    # Iris radius in eye widths (corner to corner): 5.8 px of a 27.4 px eye on the
    # astronaut's 256 px crop, as the face stack's iris contour reads it.
    iris_radius: float = 0.21
    # Eye openness (lid gap over eye width, `keypoints.eye_openness`) at and below which
    # the iris does not move, and from which it moves fully: open eyes read 0.27-0.28 on
    # the astronaut, medians 0.27-0.35 over the frames of 8 test clips.
    closed: float = 0.10
    open: float = 0.18
    # Largest change of iris position applied, eye widths along / across the eye. The
    # across (vertical) part hardly counts: 8 test clips' mean gaze error 0.0429 with
    # it at 0.1, 0.0428 at 0 (the render already moves the iris some way with the lids).
    max_along: float = 0.3
    max_across: float = 0.1
    # The mesh's lid points sit inside the visible aperture (on the astronaut's crop the
    # iris shows 2-2.5 px, 0.08 eye widths, above the upper lid points and under 1 px
    # below the lower ones): the aperture is widened by this much at the eye's middle
    # (none at the corners), or the iris's top would stay behind.
    upper_margin: float = 0.08
    lower_margin: float = 0.03


def eye_coords(points: np.ndarray, outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(..., 2) points -> (u, v): u along the inner->outer corner line (0 at the inner
    corner, 1 at the outer), v across it, both in eye widths (as `gaze_coords`)."""
    axis = outer - inner
    width2 = np.maximum((axis * axis).sum(-1, keepdims=True), 1e-12)
    rel = points - inner
    u = (rel * axis).sum(-1, keepdims=True) / width2
    v = (axis[..., :1] * rel[..., 1:2] - axis[..., 1:2] * rel[..., :1]) / width2
    return np.concatenate([u, v], -1)


def iris_offsets(kp: np.ndarray) -> np.ndarray:
    """(..., K, >=2) keypoints -> (..., 2 eyes, 2): each iris in its eye's (u, v)."""
    out = []
    for (outer, inner), _, _, iris in EYES:
        out.append(eye_coords(kp[..., iris, :2], kp[..., outer, :2], kp[..., inner, :2]))
    return np.stack(out, -2)


def carry_irises(kp: np.ndarray, tracked: np.ndarray) -> np.ndarray:
    """`kp` (K, >=2) with each iris row moved to where `tracked` (K, >=2, the same
    frame's face-mesh keypoints) puts it inside its eye: the tracked iris's (u, v)
    relative to the tracked corners, laid on `kp`'s own corners (depth kept).

    The learnt extractor places the irises worse than leaving them still (test split,
    `bench generator`: gaze error 0.0489 eye widths against 0.0446 for no motion and
    0.0431 for the mesh), while the face stack's iris model, which the tracker runs on
    every driving frame anyway, reads them well; the rest of the learnt motion is kept."""
    out = np.array(kp, copy=True)
    for eye, ((outer, inner), _, _, iris) in enumerate(EYES):
        u, v = eye_coords(tracked[iris, :2], tracked[outer, :2], tracked[inner, :2])
        out[iris, :2] = EyeFrame(out[:, :2].astype(np.float64), eye).to_pixels(u, v)
    return out


def gaze_shifts(kp_source: np.ndarray, kp_driving: np.ndarray, config: GazeConfig) -> np.ndarray:
    """(N, 2 eyes, 2): the change of iris position (u, v) the render must still make,
    driving minus source, clipped and faded to zero as either eye closes."""
    delta = iris_offsets(kp_driving) - iris_offsets(kp_source)[None]
    delta[..., 0] = np.clip(delta[..., 0], -config.max_along, config.max_along)
    delta[..., 1] = np.clip(delta[..., 1], -config.max_across, config.max_across)
    openness = np.minimum(kpt.eye_openness(kp_driving), kpt.eye_openness(kp_source)[None])
    return delta * ramp(openness, config.closed, config.open)[..., None]


def ramp(x, low: float, high: float) -> np.ndarray:
    """0 at and below `low`, 1 from `high`, linear between (an eye's openness gate)."""
    return np.clip((np.asarray(x, np.float64) - low) / max(high - low, 1e-6), 0.0, 1.0)


class EyeFrame:
    """One eye in a picture, in pixels: its corners, the inner -> outer axis and its
    normal (the axis turned a quarter, same length: v counts eye widths), its lid points
    in eye coordinates, and on which side (sign of v) the upper lid lies."""

    def __init__(self, px: np.ndarray, eye: int) -> None:
        (outer, inner), upper, lower, _ = EYES[eye]
        self.o, self.i = px[outer], px[inner]
        self.axis = self.o - self.i
        self.width = float(np.hypot(*self.axis))
        self.normal = np.array([-self.axis[1], self.axis[0]])
        self.lids = [eye_coords(px[list(rows)], self.o, self.i) for rows in (upper, lower)]
        self.up = float(np.sign(np.mean(self.lids[0][:, 1] - self.lids[1][:, 1])) or 1.0)

    def coords(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) pixels -> (..., 2) eye coordinates (u, v)."""
        return eye_coords(points, self.o, self.i)

    def curves(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The upper and the lower lid's v at each u."""
        return lid_curve(u, self.lids[0]), lid_curve(u, self.lids[1])

    def to_pixels(self, u, v) -> np.ndarray:
        """Eye coordinates -> pixels (..., 2)."""
        u, v = np.asarray(u)[..., None], np.asarray(v)[..., None]
        return self.i + u * self.axis + v * self.normal

    def box(
        self, shape: tuple[int, ...], across: float, along: float, min_side: int
    ) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) around the eye: `across` eye widths either side of the
        corner line, `along` past each corner, 2-3 px more, inside a picture of
        `shape`; None when a side would be under `min_side` px."""
        ends = (self.i - along * self.axis, self.o + along * self.axis)
        corners = np.array([e + s * self.normal for e in ends for s in (-across, across)])
        x0, y0 = np.floor(corners.min(0)).astype(int) - 2
        x1, y1 = np.ceil(corners.max(0)).astype(int) + 3
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])
        return (x0, y0, x1, y1) if x1 - x0 >= min_side and y1 - y0 >= min_side else None


def lid_curve(u: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A lid through both corners (v = 0 at u = 0 and 1) and two lid points (u, v):
    v = u (1 - u) (a + b u)."""
    (u1, v1), (u2, v2) = points
    basis = np.array([[u1 * (1 - u1), u1 * u1 * (1 - u1)], [u2 * (1 - u2), u2 * u2 * (1 - u2)]])
    try:
        a, b = np.linalg.solve(basis, [v1, v2])
    except np.linalg.LinAlgError:
        a, b = v1 / max(u1 * (1 - u1), 1e-6), 0.0
    return u * (1 - u) * (a + b * u)


def move_iris(
    image: np.ndarray,
    kp: np.ndarray,
    eye: int,
    shift: np.ndarray,
    end: float,
    config: GazeConfig,
) -> np.ndarray:
    """One eye of `image` (H, W, 3; uint8 or float) with its iris moved by `shift`
    (u, v eye widths) to `end` (u) inside the aperture that keypoints `kp` (K, 3,
    normalised, the image's own) give it; pixels outside the aperture are returned
    unchanged."""
    if not np.any(np.abs(shift) > 1e-4):
        return image
    px = kpt.to_pixels(kp, image.shape[1])[:, :2].astype(np.float64)
    frame = EyeFrame(px, eye)
    if frame.width < 2.0:
        return image
    axis, normal, width, up_sign = frame.axis, frame.normal, frame.width, frame.up
    # The eye's box, with room for the lids' bulge.
    box = frame.box(image.shape, across=0.5, along=0.0, min_side=3)
    if box is None:
        return image
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    uv = frame.coords(np.stack([xx, yy], -1))
    u, v = uv[..., 0], uv[..., 1]
    a, b = frame.curves(u)
    bulge = 4 * u * (1 - u)
    a = a + up_sign * config.upper_margin * bulge
    b = b - up_sign * config.lower_margin * bulge
    inside = (u > 0) & (u < 1) & (v > np.minimum(a, b)) & (v < np.maximum(a, b))
    if not inside.any():
        return image
    # Pixels from the aperture's edge: the composite fades over its outer 1.5 px, and
    # the across shift never reaches further than this, so no lid pixel is pulled in.
    edge = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5).astype(np.float64)
    # Along the eye: the iris band (target place +- radius) moves by the full shift,
    # ramping to zero at both corners, so the field cannot fold (the trailing ramp is
    # longer than the shift while the iris sits more than a radius from the corner).
    r = config.iris_radius
    lo, hi = max(end - r, 1e-3), min(end + r, 1 - 1e-3)
    taper = np.where(u < lo, u / lo, np.where(u > hi, (1 - u) / (1 - hi), 1.0))
    taper = np.clip(taper, 0.0, 1.0)
    along = shift[0] * taper
    across_px = np.clip(shift[1] * width * taper, -np.maximum(edge - 1, 0), np.maximum(edge - 1, 0))
    src_x = xx - along * axis[0] - across_px * normal[0] / width
    src_y = yy - along * axis[1] - across_px * normal[1] / width
    work = image.astype(np.float32)
    moved = cv2.remap(
        work, src_x.astype(np.float32), src_y.astype(np.float32), cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    alpha = np.clip(edge / 1.5, 0.0, 1.0)[..., None]
    patch = work[y0:y1, x0:x1]
    blended = alpha * moved + (1 - alpha) * patch
    out = image.copy()
    if np.issubdtype(image.dtype, np.integer):
        blended = np.clip(np.rint(blended), 0, np.iinfo(image.dtype).max)
    out[y0:y1, x0:x1] = blended.astype(image.dtype)
    return out


def retarget_gaze(
    frames: np.ndarray,
    kp_source: np.ndarray,
    kp_driving: np.ndarray,
    config: GazeConfig | None = None,
) -> np.ndarray:
    """Rendered crops (N, H, W, 3) for driving keypoints (N, K, 3) of a source with
    keypoints (K, 3) -> the crops with both irises moved where the driving keypoints
    put them (the render leaves them near the source's place)."""
    config = config or GazeConfig()
    if not config.enabled:
        return frames
    kp_source = np.asarray(kp_source, np.float64)
    kp_driving = np.asarray(kp_driving, np.float64)
    shifts = gaze_shifts(kp_source, kp_driving, config)
    # The render leaves each iris about at the source's place in the driving eye (the
    # warp moves it 13-18 % of the way): the shift starts there.
    start = iris_offsets(kp_source)[:, 0]
    out = []
    for frame, kp, shift in zip(frames, kp_driving, shifts, strict=True):
        for eye in range(2):
            end = float(np.clip(start[eye] + shift[eye, 0], 0.0, 1.0))
            frame = move_iris(frame, kp, eye, shift[eye], end, config)
        out.append(frame)
    return np.stack(out) if out else frames
