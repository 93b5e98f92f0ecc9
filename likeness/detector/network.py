"""The detector's network: a timm backbone trained from scratch, one logit per crop, and
optionally a dense head that says where the crop was changed.

Tensors in, tensors out: (N, 3, S, S) in [0, 1] -> (N,) logits (positive = fake);
`forward_dense` also gives (N, S/8, S/8) mask logits.

Why a dense head (Face X-ray, LAA-Net): one label per crop teaches little from little
data, and the cheapest way to tell real from fake is then whatever differs between the
training sets (a generator's texture, a codec). A map of *where* the face was blended
asks for the evidence itself (the seam, the mismatch of statistics across it), which
every face-manipulation method leaves, seen or unseen.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from likeness.detector.config import DetectorConfig
from likeness.tensors import resize_square

# Backbone stages the mask head reads (timm feature indices): stride 8 and stride 16.
MASK_STAGES = (2, 3)


class MaskHead(nn.Module):
    """Stride-8 and stride-16 features -> one mask logit per stride-8 cell: a lateral
    1x1 conv per stage, the coarse one upsampled and added (a two-level FPN), then two
    convolutions."""

    def __init__(self, in_channels: tuple[int, int], hidden: int = 48) -> None:
        super().__init__()
        self.lateral_fine = nn.Conv2d(in_channels[0], hidden, 1)
        self.lateral_coarse = nn.Conv2d(in_channels[1], hidden, 1)
        self.fuse = nn.Sequential(
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1),
        )

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(
            self.lateral_coarse(coarse), size=fine.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.fuse(self.lateral_fine(fine) + up).squeeze(1)


class DenseOutputs(nn.Module):
    """Backbone and mask head as one module on prepared input -> (logits (N,), mask
    logits (N, S/8, S/8)). Not part of FaceClassifier's state (it holds the same
    modules): the inference wrapper builds it to trace and fuse both outputs at once."""

    def __init__(self, backbone: nn.Module, mask_head: MaskHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.mask_head = mask_head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        final, stages = self.backbone.forward_intermediates(x, indices=list(MASK_STAGES))
        return self.backbone.forward_head(final).squeeze(-1), self.mask_head(*stages)


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
        self.mask_head: MaskHead | None = None
        if config.mask_head:
            info = self.backbone.feature_info
            chans = tuple(int(info[i]["num_chs"]) for i in MASK_STAGES)
            self.mask_head = MaskHead(chans)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Crops in [0, 1] at any size -> the backbone's input: at `input_size`, in
        [-1, 1] (the fast scorer of `DetectorModel` takes them the same way)."""
        return resize_square(images, self.config.input_size) * 2.0 - 1.0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.prepare(images)).squeeze(-1)

    def forward_dense(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits (N,), mask logits (N, S/8, S/8) or None without a mask head)."""
        x = self.prepare(images)
        if self.mask_head is None:
            return self.backbone(x).squeeze(-1), None
        return DenseOutputs(self.backbone, self.mask_head)(x)
