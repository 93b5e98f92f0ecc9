"""Keypoint-driven warps: thin-plate splines, coordinate grids, keypoint heatmaps.

Coordinates follow `grid_sample` (align_corners=False): x, y in [-1, 1], and for
volumes a depth coordinate z in [-1, 1]. All functions are differentiable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def make_grid(*sizes: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(H, W) -> (H, W, 2) of (x, y); (D, H, W) -> (D, H, W, 3) of (x, y, z)."""
    axes = [(torch.arange(n, device=device, dtype=dtype) + 0.5) / n * 2 - 1 for n in sizes]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(mesh[::-1], dim=-1)


def border_anchors(dims: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Eight points on the crop's border (z = 0) that a warp keeps still."""
    xy = torch.tensor(
        [[-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0], [-1, 1], [0, 1], [1, 1]],
        device=device,
        dtype=dtype,
    )
    if dims == 2:
        return xy
    return torch.cat([xy, torch.zeros(8, 1, device=device, dtype=dtype)], dim=1)


def _kernel(d2: torch.Tensor, dims: int) -> torch.Tensor:
    # The thin-plate radial basis: r^2 log r^2 in 2D, r in 3D (biharmonic Green's functions).
    if dims == 2:
        return d2 * torch.log(d2 + 1e-9)
    return torch.sqrt(d2 + 1e-9)


def fit_tps(src: torch.Tensor, dst: torch.Tensor, regularization: float = 0.0) -> torch.Tensor:
    """Thin-plate spline f with f(src) ~ dst. src, dst (B, N, d). Returns parameters
    (B, N + d + 1, d): N radial weights, then the affine part."""
    b, n, d = src.shape
    d2 = torch.cdist(src, src).pow(2)
    k = _kernel(d2, d) + regularization * torch.eye(n, device=src.device, dtype=src.dtype)
    p = torch.cat([torch.ones(b, n, 1, device=src.device, dtype=src.dtype), src], dim=2)
    top = torch.cat([k, p], dim=2)
    bottom = torch.cat(
        [p.transpose(1, 2), torch.zeros(b, d + 1, d + 1, device=src.device, dtype=src.dtype)], dim=2
    )
    system = torch.cat([top, bottom], dim=1)
    rhs = torch.cat([dst, torch.zeros(b, d + 1, d, device=src.device, dtype=src.dtype)], dim=1)
    return torch.linalg.solve(system, rhs)


def apply_tps(params: torch.Tensor, src: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Evaluate a fitted spline at points (B, M, d) -> (B, M, d)."""
    n, d = src.shape[1], src.shape[2]
    w, a = params[:, :n], params[:, n:]
    u = _kernel(torch.cdist(points, src).pow(2), d)
    return u @ w + a[:, :1] + points @ a[:, 1:]


def tps_grid(
    driving: torch.Tensor, source: torch.Tensor, grid: torch.Tensor, regularization: float
) -> torch.Tensor:
    """A backward-warp grid: for every point of `grid` (in driving space) where to read
    the source. driving, source (B, N, d); grid (*S, d) -> (B, *S, d). Solved in float32
    (the system is ill-conditioned in half precision)."""
    b = driving.shape[0]
    shape = grid.shape
    with torch.autocast(device_type=driving.device.type, enabled=False):
        drv, src = driving.float(), source.float()
        params = fit_tps(drv, src, regularization)
        pts = grid.reshape(1, -1, shape[-1]).float().expand(b, -1, -1)
        out = apply_tps(params, drv, pts)
    return out.reshape(b, *shape)


def heatmaps(points: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Gaussian heatmaps (B, N, size, size) of points' (x, y) (B, N, >=2)."""
    grid = make_grid(size, size, device=points.device, dtype=points.dtype)  # (H, W, 2)
    diff = grid[None, None] - points[:, :, None, None, :2]
    return torch.exp(-diff.pow(2).sum(-1) / (2 * sigma**2))


def warp_image(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Sample image (B, C, H, W) at grid (B, h, w, 2). A coarser grid is upsampled as a
    displacement from the identity (flows are smooth, so that is exact enough; upsampling
    the grid itself would smear the border pixels)."""
    size = image.shape[2:]
    if grid.shape[1:3] != size:
        h, w = grid.shape[1:3]
        coarse = make_grid(h, w, device=grid.device, dtype=grid.dtype)
        flow = (grid - coarse).permute(0, 3, 1, 2)
        flow = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
        fine = make_grid(*size, device=grid.device, dtype=grid.dtype)
        grid = fine + flow.permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
