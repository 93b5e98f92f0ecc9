"""The motion extractor's losses (pure torch): distillation of the mesh keypoints,
head pose and canonical shape, the deformation prior, and equivariance between two
views of one frame (DESIGN.md's keypoint priors, with the mesh as the teacher)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from likeness.generator import keypoints as kpt
from likeness.generator.networks.motion_extractor import pose_bin

# Rows that carry expression and gaze (lids, lips, irises): the mesh moves them by a
# few pixels where the head moves the rest by tens, so a plain mean would let them go.
EXPRESSION_ROWS = (*kpt.EYELID_ROWS, *kpt.LIP_ROWS, *kpt.IRIS_ROWS)


def row_weights(num: int, expression: float, device=None) -> torch.Tensor:
    w = torch.ones(num, device=device)
    w[list(EXPRESSION_ROWS)] = expression
    return w / w.mean()


def distillation(
    out: dict[str, torch.Tensor],
    keypoints: torch.Tensor,
    angles: torch.Tensor,
    canonical: torch.Tensor,
    pose_bins: int,
    expression_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The extractor's outputs against the mesh's keypoints (B, K, 3), pose (B, 3) and
    the clip's canonical shape (B, K, 3): 10 x keypoint L1 + 0.1 x pose bins + angle
    L1 / 30 + canonical L1 + 0.1 x |delta| (the last being the deformation prior), the
    keypoint L1 weighted by row. The joint trainer's extractor loss too (rows alike,
    `expression_weight` 1)."""
    w = row_weights(keypoints.shape[1], expression_weight, keypoints.device)
    kp_l1 = ((out["keypoints"] - keypoints).abs().mean(-1) * w).mean()
    bins = pose_bin(angles, pose_bins)
    ce = F.cross_entropy(out["pose_logits"].reshape(-1, pose_bins), bins.reshape(-1))
    ang = (out["angles"] - angles).abs().mean() / 30.0
    canon = (out["canonical"] - canonical).abs().mean()
    prior = out["delta"].abs().mean()
    loss = 10 * kp_l1 + 0.1 * ce + ang + canon + 0.1 * prior
    return loss, {"kp_l1": kp_l1, "pose_ce": ce, "angle": ang, "canonical": canon}


def equivariance(
    kp_a: torch.Tensor, kp_b: torch.Tensor, a_to_b: torch.Tensor, depth_scale: torch.Tensor
) -> torch.Tensor:
    """Mean L1 between view b's keypoints and view a's carried into view b by the
    known map (B, 2, 3) (depth times its scale (B,)): the prediction must move with the
    image, whatever the teacher says."""
    xy = kp_a[..., :2] @ a_to_b[:, :, :2].transpose(1, 2) + a_to_b[:, None, :, 2]
    z = kp_a[..., 2:] * depth_scale[:, None, None]
    return (torch.cat([xy, z], -1) - kp_b).abs().mean()
