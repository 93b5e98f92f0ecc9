"""Motion extractor: a face crop -> canonical keypoints, head pose, scale, translation
and expression deltas (LivePortrait's M), on a timm backbone trained from scratch.

Keypoints compose as x = s * R(yaw, pitch, roll) @ (x_c + delta) + t. It is trained to
reproduce what the face mesh measures (distillation), so that motion can come from the
image alone.
"""

from __future__ import annotations

import torch
from torch import nn


def euler_to_matrix(angles: torch.Tensor) -> torch.Tensor:
    """(B, 3) yaw, pitch, roll in degrees -> (B, 3, 3); same conventions as
    `likeness.generator.motion.euler_to_matrix` (x right, y down, z away)."""
    y, p, r = (torch.deg2rad(angles[:, i]) for i in range(3))
    one, zero = torch.ones_like(y), torch.zeros_like(y)
    ry = torch.stack(
        [torch.cos(y), zero, -torch.sin(y), zero, one, zero, torch.sin(y), zero, torch.cos(y)], 1
    ).view(-1, 3, 3)
    rx = torch.stack(
        [one, zero, zero, zero, torch.cos(p), torch.sin(p), zero, -torch.sin(p), torch.cos(p)], 1
    ).view(-1, 3, 3)
    rz = torch.stack(
        [torch.cos(r), -torch.sin(r), zero, torch.sin(r), torch.cos(r), zero, zero, zero, one], 1
    ).view(-1, 3, 3)
    return rz @ ry @ rx


class MotionExtractor(nn.Module):
    def __init__(self, backbone: str, num_keypoints: int, pose_bins: int) -> None:
        super().__init__()
        import timm

        self.backbone = timm.create_model(backbone, pretrained=False, num_classes=0)
        width = getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features
        k = num_keypoints
        self.num_keypoints = k
        self.pose_bins = pose_bins
        self.canonical = nn.Linear(width, 3 * k)
        self.delta = nn.Linear(width, 3 * k)
        self.pose = nn.Linear(width, 3 * pose_bins)
        self.translation = nn.Linear(width, 3)
        self.scale = nn.Linear(width, 1)
        bin_width = 198.0 / pose_bins
        centres = -99.0 + bin_width * (torch.arange(pose_bins) + 0.5)
        self.register_buffer("bin_centres", centres, persistent=False)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image (B, 3, S, S) in [0, 1] -> keypoints (B, K, 3) and their parts."""
        f = self.backbone(image * 2 - 1)
        b, k = f.shape[0], self.num_keypoints
        logits = self.pose(f).view(b, 3, self.pose_bins)
        angles = (logits.softmax(-1) * self.bin_centres).sum(-1)  # expected degrees
        canonical = self.canonical(f).view(b, k, 3)
        delta = self.delta(f).view(b, k, 3)
        scale = nn.functional.softplus(self.scale(f)) + 0.1
        translation = self.translation(f)
        rot = euler_to_matrix(angles)
        local = canonical + delta
        keypoints = scale[:, :, None] * local @ rot.transpose(1, 2) + translation[:, None]
        return {
            "keypoints": keypoints,
            "canonical": canonical,
            "delta": delta,
            "pose_logits": logits,
            "angles": angles,
            "scale": scale[:, 0],
            "translation": translation,
        }


def pose_bin(angles: torch.Tensor, pose_bins: int) -> torch.Tensor:
    """Degrees -> bin index for the classification loss."""
    idx = torch.floor((angles + 99.0) / (198.0 / pose_bins)).long()
    return idx.clamp(0, pose_bins - 1)
