"""Reenactment metrics as pure functions: images, face meshes, head poses, gaze.

Images are uint8 RGB arrays (H, W, 3) or batches (N, H, W, 3). Meshes are the face
stack's 468 points (x, y, depth) in pixels of the image they were found in. Nothing
here reads files or runs models; `likeness.bench.generator` does that.

- AKD (average keypoint distance): mean 2D distance of all 468 mesh points.
- AED (average expression distance): mean 3D distance of all mesh points after the
  head pose is removed (a similarity fitted on the rigid points), so it measures the
  shape of the face, not where it points.
- APD (average pose distance): mean absolute yaw, pitch and roll difference, degrees.
- Gaze: each iris centre in its eye's own frame (corner to corner is one unit), so the
  error does not depend on head position or face size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from likeness.faces.types import FACE_OVAL
from likeness.generator.motion import fit_similarity

# Mesh points that move with the skull and hardly with expression: eye corners, nose
# bridge and tip, forehead, temples and the cheek points beside the ears.
RIGID_MESH = (
    33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1, 2, 98, 327,
    10, 109, 338, 67, 297, 54, 284, 21, 251, 127, 356, 234, 454, 162, 389,
)  # fmt: skip
# Eye corners (outer, inner) of the subject's right and left eye.
EYE_CORNERS = ((33, 133), (263, 362))


# ---------------------------------------------------------------- images


@dataclass(frozen=True)
class ImageScores:
    """Per-frame scores of predictions against targets (arrays of length N)."""

    psnr: np.ndarray  # dB, whole crop
    ssim: np.ndarray  # Wang et al. 2004, 11x11 Gaussian window, whole crop
    l1: np.ndarray  # mean absolute error, images in [0, 1]
    face_psnr: np.ndarray  # dB inside the target's face oval; NaN without a mask


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of two uint8 images, optionally only where `mask` (H, W) is true."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    sq = diff**2
    if mask is not None:
        if not mask.any():
            return float("nan")
        sq = sq[mask.astype(bool)]
    mse = max(float(sq.mean()), 1e-10 * 255**2)
    return float(10 * np.log10(255**2 / mse))


def image_scores(
    pred: np.ndarray, target: np.ndarray, masks: list[np.ndarray | None] | None = None
) -> ImageScores:
    """Batched scores; SSIM is the training loss's own (likeness.generator.losses)."""
    import torch

    from likeness.generator.losses import ssim

    pred, target = np.asarray(pred), np.asarray(target)
    if pred.ndim == 3:
        pred, target = pred[None], target[None]
    masks = masks if masks is not None else [None] * len(pred)
    ssims, l1s = [], []
    for i in range(0, len(pred), 16):  # chunks: SSIM's float buffers grow fast at 256 px
        a = torch.from_numpy(np.ascontiguousarray(pred[i : i + 16])).permute(0, 3, 1, 2) / 255
        b = torch.from_numpy(np.ascontiguousarray(target[i : i + 16])).permute(0, 3, 1, 2) / 255
        with torch.inference_mode():
            ssims.append(ssim(a.float(), b.float()).double().numpy())
            l1s.append((a - b).abs().flatten(1).mean(1).double().numpy())
    return ImageScores(
        psnr=np.array([psnr(p, t) for p, t in zip(pred, target, strict=True)]),
        ssim=np.concatenate(ssims),
        l1=np.concatenate(l1s),
        face_psnr=np.array(
            [
                psnr(p, t, m) if m is not None else float("nan")
                for p, t, m in zip(pred, target, masks, strict=True)
            ]
        ),
    )


def face_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: inside the face oval of a mesh given in that image's pixels."""
    mask = np.zeros((size, size), np.uint8)
    poly = np.round(landmarks[list(FACE_OVAL), :2]).astype(np.int32)
    cv2.fillPoly(mask, [poly], 1)
    return mask.astype(bool)


# ---------------------------------------------------------------- meshes and poses


def akd(a: np.ndarray, b: np.ndarray) -> float:
    """Mean 2D distance between corresponding mesh points (the meshes' pixel units)."""
    return float(np.linalg.norm(a[:, :2] - b[:, :2], axis=1).mean())


def remove_pose(mesh: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`mesh` moved onto `reference` by the similarity (rotation, scale, translation in
    3D) that best maps its rigid points onto the reference's."""
    rows = list(RIGID_MESH)
    g = fit_similarity(mesh[rows, :3], reference[rows, :3])
    return g(np.asarray(mesh[:, :3], np.float64))


def aed(a: np.ndarray, b: np.ndarray) -> float:
    """Mean 3D distance of all mesh points once `a`'s head pose is fitted onto `b`'s."""
    return float(np.linalg.norm(remove_pose(a, b) - b[:, :3], axis=1).mean())


def angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b in degrees, wrapped into [-180, 180)."""
    return (np.asarray(a, np.float64) - np.asarray(b, np.float64) + 180.0) % 360.0 - 180.0


def apd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|yaw, pitch, roll| differences (3,) of two (yaw, pitch, roll) triples, degrees."""
    return np.abs(angle_diff(a, b))


def gaze_coords(landmarks: np.ndarray, iris_centres: np.ndarray) -> np.ndarray:
    """(2, 2): each iris centre (subject's right eye, then left) in its eye's frame:
    along the inner->outer corner line (0 at the inner corner, 1 at the outer) and
    across it, both in eye widths."""
    from likeness.generator.gaze import eye_coords

    lm = np.asarray(landmarks, np.float64)
    iris = np.asarray(iris_centres, np.float64)[:, :2]
    return np.stack(
        [eye_coords(iris[k], lm[o, :2], lm[i, :2]) for k, (o, i) in enumerate(EYE_CORNERS)]
    )


def gaze_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over both eyes of the distance between gaze coordinates (eye widths)."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=1).mean())


# ---------------------------------------------------------------- cross-reenactment


def expression_delta(mesh: np.ndarray, first: np.ndarray) -> np.ndarray:
    """How a face's shape changed since its first frame, head motion removed: (468, 3)
    in the first frame's coordinates."""
    return remove_pose(mesh, first) - first[:, :3]


def cross_expression_error(
    out: np.ndarray, out0: np.ndarray, drv: np.ndarray, drv0: np.ndarray
) -> float:
    """Mean distance between the output's and the driver's expression change since
    their own first frames, with the output's change carried into the driver's first
    frame (rotation and scale of the rigid fit between the two first frames), so two
    different faces compare in the driver's units."""
    rows = list(RIGID_MESH)
    g = fit_similarity(out0[rows, :3], drv0[rows, :3])
    moved = g.scale * expression_delta(out, out0) @ g.rotation.T
    return float(np.linalg.norm(moved - expression_delta(drv, drv0), axis=1).mean())


def relative_pose_error(
    out: np.ndarray, out0: np.ndarray, drv: np.ndarray, drv0: np.ndarray
) -> np.ndarray:
    """|(out - out0) - (drv - drv0)| per yaw, pitch, roll (3,), degrees: whether the
    output turned as much as the driver did since the first frame."""
    return np.abs(angle_diff(angle_diff(out, out0), angle_diff(drv, drv0)))


# ---------------------------------------------------------------- baseline


def affine_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 full affine A with dst ~ A @ [src, 1], least squares over all points (no
    RANSAC: every keypoint is a measurement, not an outlier candidate)."""
    src = np.asarray(src, np.float64)[:, :2]
    dst = np.asarray(dst, np.float64)[:, :2]
    design = np.hstack([src, np.ones((len(src), 1))])
    solution, *_ = np.linalg.lstsq(design, dst, rcond=None)
    return solution.T


def affine_warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """`image` warped by a 2x3 matrix (source pixels -> output pixels), same size."""
    h, w = image.shape[:2]
    return cv2.warpAffine(
        image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )


# ---------------------------------------------------------------- eyes and mouth

# Inner lips (upper, lower) and the outer eye corners of the 468-point mesh.
INNER_LIPS = (13, 14)
OUTER_EYE_CORNERS = (33, 263)


def mouth_open(landmarks: np.ndarray) -> float:
    """Inner-lip gap over the outer eye-corner distance of a mesh (0 closed; about 0.3
    to 0.5 for a wide-open mouth on the corpus' talking clips), so it does not depend
    on face size or head position."""
    gap = np.linalg.norm(landmarks[INNER_LIPS[0], :2] - landmarks[INNER_LIPS[1], :2])
    ref = np.linalg.norm(landmarks[OUTER_EYE_CORNERS[0], :2] - landmarks[OUTER_EYE_CORNERS[1], :2])
    return float(gap / max(ref, 1e-9))


def gaze_coords_kp(points: np.ndarray) -> np.ndarray:
    """`gaze_coords` of a generator keypoint set (K, 3) in pixels: what the renderer was
    asked to do with the irises (the same eye corners and irises the gaze retarget
    reads)."""
    from likeness.generator.gaze import iris_offsets

    return iris_offsets(np.asarray(points, np.float64))


def correlation(a, b) -> float:
    """Pearson correlation over the frames where both are finite (NaN if either does not
    vary)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() < 1e-9 or b[ok].std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def gain(a, b) -> float:
    """Least-squares slope of `a` on `b` (both centred): 1 when `a` moves as much as `b`,
    0 when it does not follow it at all."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    x, y = b[ok] - b[ok].mean(), a[ok] - a[ok].mean()
    return float((x @ y) / max(x @ x, 1e-12))
