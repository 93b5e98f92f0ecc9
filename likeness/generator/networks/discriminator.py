"""A multi-scale patch discriminator, for the adversarial and feature-matching losses
that sharpen the decoder once reconstruction has converged."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator(nn.Module):
    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), scales: int = 2) -> None:
        super().__init__()
        self.nets = nn.ModuleList()
        for _ in range(scales):
            layers = []
            cin = 3
            for c in channels:
                layers.append(
                    nn.Sequential(
                        nn.utils.spectral_norm(nn.Conv2d(cin, c, 4, 2, 1)), nn.LeakyReLU(0.2)
                    )
                )
                cin = c
            layers.append(nn.Conv2d(cin, 1, 3, padding=1))
            self.nets.append(nn.ModuleList(layers))

    def forward(self, image: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per scale: the features of every layer, the patch logits last."""
        out = []
        x = image * 2 - 1
        for net in self.nets:
            feats, h = [], x
            for layer in net:
                h = layer(h)
                feats.append(h)
            out.append(feats)
            x = F.avg_pool2d(x, 2)
        return out
