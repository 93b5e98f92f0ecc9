"""Image arrays as torch tensors, for both model packages (ground floor: torch and numpy
only): uint8 RGB <-> float in [0, 1], and one square resize."""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(images: np.ndarray | list[np.ndarray], device: str | torch.device) -> torch.Tensor:
    """(N, H, W, 3) or (H, W, 3) uint8 RGB -> (N, 3, H, W) float in [0, 1]."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    t = torch.from_numpy(np.ascontiguousarray(arr)).to(device)
    return t.permute(0, 3, 1, 2).float().div_(255.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> (N, H, W, 3) uint8."""
    x = images.detach().float().clamp(0, 1).mul(255).add(0.5).to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size), bilinear with antialiasing; as they are when
    already that size."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return torch.nn.functional.interpolate(
        images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )
