"""The classifier network: a timm backbone, trained from scratch, one logit per crop.

Tensors in, tensors out: (N, 3, S, S) in [0, 1] -> (N,) logits (positive = fake).
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from likeness.detector.config import DetectorConfig


class FaceClassifier(nn.Module):
    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        # pretrained=False always: no download, and no ImageNet features whose licence
        # and biases we would inherit; the detector learns from its own data only.
        extra = {"channels": tuple(config.channels)} if config.channels else {}
        self.backbone = timm.create_model(
            config.backbone,
            pretrained=False,
            num_classes=1,
            drop_rate=config.drop_rate,
            drop_path_rate=config.drop_path_rate or None,
            **extra,
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = self.config.input_size
        if images.shape[-1] != size or images.shape[-2] != size:
            images = nn.functional.interpolate(
                images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        return self.backbone(images * 2.0 - 1.0).squeeze(-1)
