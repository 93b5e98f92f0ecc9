"""Appearance encoder: a face crop -> a 3D feature volume (LivePortrait's F_s).

2D features at a quarter of the input resolution are lifted into depth by splitting
their channels into (channels, depth); a 3D residual block then mixes along depth, so
that rotating the volume later can move what lies in front of and behind the face.
"""

from __future__ import annotations

import torch
from torch import nn

from likeness.generator.networks.blocks import ConvNormAct, ResBlock2d, ResBlock3d


class AppearanceEncoder(nn.Module):
    def __init__(
        self,
        channels: tuple[int, int, int],
        blocks: int,
        volume_channels: int,
        volume_depth: int,
    ) -> None:
        super().__init__()
        c0, c1, c2 = channels
        self.stem = ConvNormAct(3, c0, kernel=5)
        self.down = nn.Sequential(ConvNormAct(c0, c1, stride=2), ConvNormAct(c1, c2, stride=2))
        self.blocks = nn.Sequential(*[ResBlock2d(c2) for _ in range(blocks)])
        self.to_volume = nn.Conv2d(c2, volume_channels * volume_depth, 1)
        self.volume_block = ResBlock3d(volume_channels)
        self.volume_channels = volume_channels
        self.volume_depth = volume_depth

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image (B, 3, S, S) in [0, 1] -> volume (B, C, D, S/4, S/4)."""
        x = self.blocks(self.down(self.stem(image * 2 - 1)))
        v = self.to_volume(x)
        b, _, h, w = v.shape
        v = v.view(b, self.volume_channels, self.volume_depth, h, w)
        return self.volume_block(v)
