"""The refiner's network: a diffusers `UNet2DModel` (on 4x4 pixel blocks) that reads the
render, the guide (the face mask, and with `RefinerConfig.apertures` the eye and mouth
apertures) and the noisy residual (7 or 9 channels per pixel, concatenated) and
predicts the residual's target
(v, epsilon or the residual itself, per `RefinerConfig.prediction_type`).

Fully convolutional, so it trains on crops and runs on the whole 256 px render.
diffusers is imported here, when a network is built, never at package import.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from likeness.errors import SetupError
from likeness.generator.refiner.config import RefinerConfig

OUT_CHANNELS = 3


class RefinerNetwork(nn.Module):
    """Tensors in, tensors out: (render, guide, noisy residual, timestep) -> prediction."""

    def __init__(self, config: RefinerConfig) -> None:
        super().__init__()
        try:
            from diffusers import UNet2DModel
        except ImportError:
            raise SetupError(
                "the refiner needs diffusers: pip install 'likeness[refine]'"
            ) from None

        self.config = config
        levels = len(config.block_out_channels)
        block = config.unshuffle**2
        self.unet = UNet2DModel(
            sample_size=128 // config.unshuffle,
            in_channels=(3 + config.guide_channels + 3) * block,
            out_channels=OUT_CHANNELS * block,
            block_out_channels=tuple(config.block_out_channels),
            layers_per_block=config.layers_per_block,
            down_block_types=("DownBlock2D",) * levels,
            up_block_types=("UpBlock2D",) * levels,
            norm_num_groups=config.norm_num_groups,
            add_attention=False,
        )

    @property
    def multiple(self) -> int:
        """Input sides must divide by this (one halving per level below the top)."""
        return self.config.unshuffle * 2 ** (len(self.config.block_out_channels) - 1)

    def forward(
        self, render: torch.Tensor, guide: torch.Tensor, noisy: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """render (B, 3, H, W) in [0, 1]; guide (B, `config.guide_channels`, H, W) in
        [0, 1], the face mask first; noisy (B, 3, H, W); t (B,)."""
        f = self.config.unshuffle
        x = torch.cat([render * 2 - 1, guide, noisy], dim=1)
        if f > 1:
            x = F.pixel_unshuffle(x, f)
        y = self.unet(x, t).sample
        return F.pixel_shuffle(y, f) if f > 1 else y
