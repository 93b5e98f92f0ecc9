"""Decoder: the warped feature volume, projected to 2D, back to an image.

Beside the features it sees the source image warped by the same motion, so that it
can copy detail where the warp is right and paint only where it is not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from likeness.generator.networks.blocks import ConvNormAct, ResBlock2d, UpBlock2d


class Decoder(nn.Module):
    def __init__(
        self,
        volume_channels: int,
        volume_depth: int,
        channels: tuple[int, int, int],
        blocks: int,
    ) -> None:
        super().__init__()
        c0, c1, c2 = channels
        self.project = ConvNormAct(volume_channels * volume_depth, c0, kernel=1)
        self.blocks = nn.Sequential(*[ResBlock2d(c0) for _ in range(blocks)])
        self.up1 = UpBlock2d(c0 + 3, c1)
        self.up2 = UpBlock2d(c1 + 3, c2)
        self.refine = ConvNormAct(c2 + 3, c2)
        self.to_rgb = nn.Conv2d(c2, 3, 3, padding=1)
        # Zero-initialised residual: training starts from the warped source exactly.
        nn.init.zeros_(self.to_rgb.weight)
        nn.init.zeros_(self.to_rgb.bias)

    def forward(self, volume: torch.Tensor, warped_image: torch.Tensor) -> torch.Tensor:
        """volume (B, C, D, h, w); warped_image (B, 3, 4h, 4w) in [0, 1] -> (B, 3, 4h, 4w)."""
        b, c, d, h, w = volume.shape
        x = self.blocks(self.project(volume.reshape(b, c * d, h, w)))
        img = warped_image * 2 - 1

        def at(size: int) -> torch.Tensor:
            return F.interpolate(
                img, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )

        x = self.up1(torch.cat([x, at(h)], dim=1))
        x = self.up2(torch.cat([x, at(2 * h)], dim=1))
        x = self.refine(torch.cat([x, img], dim=1))
        # Predict a residual on the warped image: identity is the easy starting point.
        return (img + self.to_rgb(x)).clamp(-1, 1) * 0.5 + 0.5
