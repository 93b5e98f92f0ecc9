"""What the refiner is judged by, as pure functions on uint8 RGB images: L1 inside a
mask, and detail in the eye and mouth boxes (variance of the Laplacian, the usual
focus measure) as a ratio to the real frame's, so 1.0 means "as sharp as the truth"
and a blurry render scores below it."""

from __future__ import annotations

import cv2
import numpy as np

from likeness.generator.refiner.mask import region_boxes


def masked_l1(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute error in [0, 1] units over pixels where `mask` (H, W) > 0."""
    inside = np.asarray(mask) > 0
    if not inside.any():
        return float("nan")
    diff = np.abs(pred.astype(np.float32) - target.astype(np.float32)) / 255.0
    return float(diff[inside].mean())


def laplacian_variance(image: np.ndarray) -> float:
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(gray, cv2.CV_32F, ksize=3).var())


def region_sharpness(image: np.ndarray, kp: np.ndarray) -> dict[str, float]:
    """Laplacian variance in the eyes' and the mouth's boxes of keypoints (K, 3)."""
    boxes = region_boxes(kp, image.shape[0])
    out = {}
    for name, (x0, y0, x1, y1) in boxes.items():
        patch = image[y0:y1, x0:x1]
        out[name] = laplacian_variance(patch) if min(patch.shape[:2]) >= 3 else float("nan")
    return {
        "eyes": float(np.nanmean([out["right_eye"], out["left_eye"]])),
        "mouth": out["mouth"],
    }


def sharpness_ratio(pred: np.ndarray, target: np.ndarray, kp: np.ndarray) -> dict[str, float]:
    """Eye and mouth detail of `pred` over the truth's (same boxes, from `kp`)."""
    got, want = region_sharpness(pred, kp), region_sharpness(target, kp)
    return {k: got[k] / want[k] if want[k] > 0 else float("nan") for k in got}
