"""Dense motion: from the spline-warped volume and keypoint heatmaps, a correction to
the warp, an occlusion map and a blend mask.

The thin-plate spline through the keypoints already moves the face; this network only
learns what a smooth spline cannot do (hair, teeth, the inside of the mouth, the
background behind a turning head), which is why it can be small and train quickly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from likeness.generator.networks.blocks import ConvNormAct, ResBlock2d, UpBlock2d


class DenseMotion(nn.Module):
    def __init__(
        self,
        volume_channels: int,
        volume_depth: int,
        num_keypoints: int,
        channels: tuple[int, int, int],
    ) -> None:
        super().__init__()
        c0, c1, c2 = channels
        cin = volume_channels * volume_depth + 2 * num_keypoints + 2
        self.inp = ConvNormAct(cin, c0)
        self.down1 = nn.Sequential(ConvNormAct(c0, c1, stride=2), ResBlock2d(c1))
        self.down2 = nn.Sequential(ConvNormAct(c1, c2, stride=2), ResBlock2d(c2))
        self.up2 = UpBlock2d(c2, c1)
        self.up1 = UpBlock2d(2 * c1, c0)
        self.out = ConvNormAct(2 * c0, c0)
        self.depth = volume_depth
        self.flow3d = nn.Conv2d(c0, 3 * volume_depth, 3, padding=1)
        self.flow2d = nn.Conv2d(c0, 2, 3, padding=1)
        self.occlusion = nn.Conv2d(c0, 1, 3, padding=1)
        self.blend = nn.Conv2d(c0, 1, 3, padding=1)
        # Start as "trust the spline": no correction, nothing occluded, half blend.
        for head in (self.flow3d, self.flow2d):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        nn.init.zeros_(self.occlusion.weight)
        nn.init.constant_(self.occlusion.bias, 3.0)
        nn.init.zeros_(self.blend.weight)
        nn.init.zeros_(self.blend.bias)

    def forward(
        self,
        warped_volume: torch.Tensor,
        driving_heat: torch.Tensor,
        source_heat: torch.Tensor,
        flow2d: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """warped_volume (B, C, D, H, W); heatmaps (B, K, H, W); flow2d (B, 2, H, W) the
        spline's displacement. Returns corrections in grid units and maps in [0, 1]."""
        b, c, d, h, w = warped_volume.shape
        x = torch.cat(
            [warped_volume.reshape(b, c * d, h, w), driving_heat, source_heat, flow2d], dim=1
        )
        x0 = self.inp(x)
        x1 = self.down1(x0)
        x2 = self.down2(x1)
        y1 = self.up2(x2)
        y0 = self.up1(torch.cat([y1, x1], dim=1))
        y = self.out(torch.cat([y0, x0], dim=1))
        flow3d = 0.1 * torch.tanh(self.flow3d(y)).view(b, self.depth, 3, h, w)
        return {
            "flow3d": flow3d.permute(0, 1, 3, 4, 2),  # (B, D, H, W, 3)
            "flow2d": 0.1 * torch.tanh(self.flow2d(y)).permute(0, 2, 3, 1),  # (B, H, W, 2)
            "occlusion": torch.sigmoid(self.occlusion(y)),
            "blend": torch.sigmoid(self.blend(y)),
        }


def upsample_map(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
