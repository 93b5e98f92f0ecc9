"""Motion transfer between keypoint sets (pure numpy).

Head motion is a similarity transform fitted on the rigid points (eye corners, nose,
forehead); what the rigid fit leaves is expression. Relative motion (the default)
measures the driving video against its first frame and applies that change to the
source's own pose and expression, so the source keeps its face shape and place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from likeness.generator import keypoints as kpt

REGIONS = ("all", "pose", "expression", "eyes", "lips")


@dataclass(frozen=True)
class Similarity:
    """p -> scale * R @ p + t, for points as rows."""

    scale: float
    rotation: np.ndarray  # 3x3
    translation: np.ndarray  # 3

    def __call__(self, points: np.ndarray) -> np.ndarray:
        return self.scale * points @ self.rotation.T + self.translation

    def inverse(self) -> Similarity:
        r_inv = self.rotation.T
        return Similarity(1.0 / self.scale, r_inv, -(r_inv @ self.translation) / self.scale)

    def compose(self, inner: Similarity) -> Similarity:
        """self(inner(p))."""
        return Similarity(
            self.scale * inner.scale,
            self.rotation @ inner.rotation,
            self.scale * self.rotation @ inner.translation + self.translation,
        )

    @staticmethod
    def identity() -> Similarity:
        return Similarity(1.0, np.eye(3), np.zeros(3))


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> Similarity:
    """Least-squares similarity with dst ~ scale * R @ src + t (Umeyama 1991)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    var = (a**2).sum() / len(src)
    scale = float((sig * d).sum() / max(var, 1e-12))
    return Similarity(scale, rot, mu_d - scale * rot @ mu_s)


def head_fit(src: np.ndarray, dst: np.ndarray) -> Similarity:
    rows = list(kpt.RIGID_ROWS)
    return fit_similarity(src[rows], dst[rows])


def amplify_rows(
    reference: np.ndarray, points: np.ndarray, rows: list[int] | tuple[int, ...], gain: float
) -> np.ndarray:
    """`points` with the expression change of `rows` since `reference` (what the head
    motion between them does not explain) multiplied by `gain`; other rows unchanged."""
    reference = np.asarray(reference, np.float64)
    points = np.asarray(points, np.float64)
    if gain == 1.0:
        return points.astype(np.float32)
    head = head_fit(reference, points)
    rows = list(rows)
    change = head.inverse()(points[rows]) - reference[rows]
    out = points.copy()
    out[rows] = head(reference[rows] + gain * change)
    return out.astype(np.float32)


def rotation_about(points: np.ndarray, yaw: float, pitch: float, roll: float) -> Similarity:
    """A head rotation (degrees, faces.pose conventions) about the rigid points' centre,
    in the crop frame whose axes are x right, y down, z away from the camera."""
    centre = points[list(kpt.RIGID_ROWS)].mean(0)
    rot = euler_to_matrix(yaw, pitch, roll)
    return Similarity(1.0, rot, centre - rot @ centre)


def euler_to_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """yaw > 0 turns the face to the image's right, pitch > 0 looks up, roll > 0 tilts
    clockwise (as `likeness.faces.HeadPose`), for x right, y down, z away."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    # The face looks along -z; turning it to image-right rotates -z towards +x.
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    # Looking up turns -z towards -y (up in the image).
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    # Clockwise in the image (y down) is a positive angle from x towards y.
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class TransferConfig:
    relative: bool = True
    region: str = "all"  # all | pose | expression | eyes | lips
    multiplier: float = 1.0  # scales the expression change

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            from likeness.errors import InputError

            raise InputError(f"unknown region {self.region!r}: use {', '.join(REGIONS)}")


def _region_rows(region: str) -> list[int] | None:
    if region == "eyes":
        return [*kpt.EYE_ROWS, *kpt.BROW_ROWS]
    if region == "lips":
        return [*kpt.LIP_ROWS, *kpt.JAW_ROWS]
    return None


class MotionTransfer:
    """Maps each driving frame's keypoints onto the source:

    transfer = MotionTransfer(source_kp, first_driving_kp, config)
    for kp in driving: target = transfer(kp)
    """

    def __init__(
        self, source: np.ndarray, driving0: np.ndarray, config: TransferConfig | None = None
    ) -> None:
        self.config = config or TransferConfig()
        self.source = np.asarray(source, np.float64)
        self.driving0 = np.asarray(driving0, np.float64)
        # Driving frame 0 placed onto the source (where the driver's face would sit).
        self.to_source = head_fit(self.driving0, self.source)
        self._from_source = self.to_source.inverse()

    def __call__(self, driving: np.ndarray) -> np.ndarray:
        cfg = self.config
        driving = np.asarray(driving, np.float64)
        if not cfg.relative:
            return self.to_source(driving).astype(np.float32)
        head = head_fit(self.driving0, driving)  # driving0 -> driving t
        # Expression: what the head motion does not explain, in driving-0 space.
        expression = head.inverse()(driving) - self.driving0
        g = self.to_source
        delta = cfg.multiplier * g.scale * expression @ g.rotation.T
        rows = _region_rows(cfg.region)
        if rows is not None:
            keep = np.zeros((len(delta), 1))
            keep[rows] = 1.0
            delta = delta * keep
        if cfg.region in ("pose",):
            delta = np.zeros_like(delta)
        shaped = self.source + delta
        if cfg.region in ("all", "pose"):
            # The driving head motion, expressed in the source's frame.
            moved = g.compose(head).compose(self._from_source)
            shaped = moved(shaped)
        return shaped.astype(np.float32)
