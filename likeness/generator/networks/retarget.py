"""Eye and lip retargeting: small MLPs that move the eye or mouth keypoints so that the
eyes open or close, or the mouth opens and widens, by a requested amount.

LivePortrait uses the same idea for its stitching and retargeting modules; here they
also make scripted motion (blink, smile, talk) possible without a driving video.
"""

from __future__ import annotations

import torch
from torch import nn


class Retarget(nn.Module):
    """(keypoints (B, K, 3), current (B, n), wanted (B, n)) -> keypoint offsets (B, K, 3),
    non-zero only on `rows`."""

    def __init__(
        self, num_keypoints: int, controls: int, rows: tuple[int, ...], hidden: int
    ) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.net = nn.Sequential(
            nn.Linear(3 * num_keypoints + 2 * controls, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 3 * num_keypoints),
        )
        mask = torch.zeros(num_keypoints, 1)
        mask[list(rows)] = 1.0
        self.register_buffer("mask", mask, persistent=False)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(
        self, keypoints: torch.Tensor, current: torch.Tensor, wanted: torch.Tensor
    ) -> torch.Tensor:
        b = keypoints.shape[0]
        centred = keypoints - keypoints.mean(1, keepdim=True)
        x = torch.cat([centred.reshape(b, -1), current, wanted], dim=1)
        return self.net(x).view(b, self.num_keypoints, 3) * self.mask
