"""Reconstruction losses that need no pretrained network (pure torch functions)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from likeness.generator import keypoints as kpt


def _gaussian_window(size: int, sigma: float, device, dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004) of images in [0, 1], per batch item -> (B,)."""
    c = a.shape[1]
    w = _gaussian_window(window, sigma, a.device, a.dtype).expand(c, 1, -1, -1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (num / den).flatten(1).mean(1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per item, images in [0, 1]."""
    mse = (a - b).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return -10 * torch.log10(mse)


def pyramid_l1(a: torch.Tensor, b: torch.Tensor, levels: int = 3) -> torch.Tensor:
    total = a.new_zeros(())
    for _ in range(levels):
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        total = total + (a - b).abs().mean()
    return total / levels


def region_mask(keypoints: torch.Tensor, size: int, margin: float = 0.08) -> torch.Tensor:
    """(B, 1, size, size): 1 inside boxes around the eyes and the mouth of (B, K, 3)
    normalised keypoints (where people look first, so errors there cost more)."""
    b = keypoints.shape[0]
    coords = torch.arange(size, device=keypoints.device, dtype=keypoints.dtype) + 0.5
    coords = coords / size * 2 - 1
    mask = keypoints.new_zeros(b, size, size)
    right = [r for r in kpt.EYE_ROWS if r % 2 == 0 and r < kpt.N_MESH] + [kpt.IRIS_ROWS[0]]
    left = [r for r in kpt.EYE_ROWS if r % 2 == 1 and r < kpt.N_MESH] + [kpt.IRIS_ROWS[1]]
    for rows in (right, left, list(kpt.LIP_ROWS)):
        pts = keypoints[:, rows, :2]
        lo = pts.amin(1) - margin
        hi = pts.amax(1) + margin
        inx = (coords[None] >= lo[:, :1]) & (coords[None] <= hi[:, :1])  # (B, W)
        iny = (coords[None] >= lo[:, 1:]) & (coords[None] <= hi[:, 1:])  # (B, H)
        mask = torch.maximum(mask, (iny[:, :, None] & inx[:, None, :]).to(mask.dtype))
    return mask[:, None]


def mouth_mask(keypoints: torch.Tensor, size: int, margin: float = 0.08) -> torch.Tensor:
    """(B, 1, size, size): 1 inside the box around the lips (as `region_mask`'s)."""
    coords = torch.arange(size, device=keypoints.device, dtype=keypoints.dtype) + 0.5
    coords = coords / size * 2 - 1
    pts = keypoints[:, list(kpt.LIP_ROWS), :2]
    lo, hi = pts.amin(1) - margin, pts.amax(1) + margin
    inx = (coords[None] >= lo[:, :1]) & (coords[None] <= hi[:, :1])
    iny = (coords[None] >= lo[:, 1:]) & (coords[None] <= hi[:, 1:])
    return (iny[:, :, None] & inx[:, None, :]).to(keypoints.dtype)[:, None]


# Rows of each eye's outer and inner corner (subject's right eye, then left).
_CORNERS = tuple(
    (kpt.MESH_POINTS.index(outer), kpt.MESH_POINTS.index(inner))
    for outer, inner in ((33, 133), (263, 362))
)


def iris_centroids(
    images: torch.Tensor, keypoints: torch.Tensor, cells: int = 16, temperature: float = 0.04
) -> torch.Tensor:
    """(B, 2, 2): where the dark of each eye sits, in eye widths along and across the
    eye from its centre: a soft-argmin of luminance over a window of 1.2 x 0.6 eye
    widths on the eye (the corners of `keypoints` place it), so an image's iris
    position is differentiable."""
    b = images.shape[0]
    lum = (0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2])[:, None]
    t = torch.linspace(-1, 1, cells, device=images.device, dtype=images.dtype)
    gy, gx = torch.meshgrid(t * 0.3, t * 0.6, indexing="ij")  # eye widths
    out = []
    for outer, inner in _CORNERS:
        o, i = keypoints[:, outer, :2], keypoints[:, inner, :2]
        centre, axis = (o + i) / 2, o - i  # axis: one eye width, inner -> outer
        normal = torch.stack([-axis[:, 1], axis[:, 0]], 1)
        grid = (
            centre[:, None, None]
            + gx[None, ..., None] * axis[:, None, None]
            + gy[None, ..., None] * normal[:, None, None]
        )
        patch = F.grid_sample(lum, grid, align_corners=False).reshape(b, -1)
        weight = torch.softmax(-patch / temperature, dim=1)
        out.append(
            torch.stack(
                [(weight * gx.reshape(1, -1)).sum(1), (weight * gy.reshape(1, -1)).sum(1)], 1
            )
        )
    return torch.stack(out, 1)


def iris_loss(pred: torch.Tensor, target: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """Mean distance (eye widths) between the render's and the target's iris positions,
    both read in the target's eye windows."""
    with torch.no_grad():
        want = iris_centroids(target, keypoints)
    return (iris_centroids(pred, keypoints) - want).norm(dim=2).mean()


# Rows of the mouth's corners (subject's right, left) and of the inner lips (upper, lower).
_MOUTH_CORNERS = (kpt.MESH_POINTS.index(61), kpt.MESH_POINTS.index(291))
_INNER_LIPS = tuple(kpt.MOUTH_ROWS)


def mouth_profiles(
    images: torch.Tensor, keypoints: torch.Tensor, rows: int = 16, cols: int = 12
) -> torch.Tensor:
    """(B, rows): the luminance across the mouth, row by row, each row averaged along
    the mouth. The window sits between the inner lips and spans the corners (one mouth
    width along, 0.8 across), turned with the mouth. Averaging along the mouth keeps
    what opening it is (where the lips part, how dark and how tall the gap between
    them) and drops where its detail sits sideways, which a pixel L1 blurs away."""
    b = images.shape[0]
    lum = (0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2])[:, None]
    right, left = keypoints[:, _MOUTH_CORNERS[0], :2], keypoints[:, _MOUTH_CORNERS[1], :2]
    upper, lower = keypoints[:, _INNER_LIPS[0], :2], keypoints[:, _INNER_LIPS[1], :2]
    centre, axis = (upper + lower) / 2, left - right  # axis: one mouth width
    normal = torch.stack([-axis[:, 1], axis[:, 0]], 1)
    gy, gx = torch.meshgrid(
        torch.linspace(-0.4, 0.4, rows, device=images.device, dtype=images.dtype),
        torch.linspace(-0.5, 0.5, cols, device=images.device, dtype=images.dtype),
        indexing="ij",
    )
    grid = (
        centre[:, None, None]
        + gx[None, ..., None] * axis[:, None, None]
        + gy[None, ..., None] * normal[:, None, None]
    )
    return F.grid_sample(lum, grid, align_corners=False).reshape(b, rows, cols).mean(2)


def mouth_profile_loss(
    pred: torch.Tensor, target: torch.Tensor, keypoints: torch.Tensor
) -> torch.Tensor:
    """Mean absolute difference of the render's and the target's `mouth_profiles`,
    both read in the target's mouth window."""
    with torch.no_grad():
        want = mouth_profiles(target, keypoints)
    return (mouth_profiles(pred, keypoints) - want).abs().mean()


def hinge_d_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    loss = real[0][-1].new_zeros(())
    for r, f in zip(real, fake, strict=True):
        loss = loss + F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean()
    return loss / len(real)


def generator_gan_losses(
    real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(adversarial, feature matching) for the generator."""
    adv = fake[0][-1].new_zeros(())
    fm = fake[0][-1].new_zeros(())
    for r, f in zip(real, fake, strict=True):
        adv = adv - f[-1].mean()
        for rf, ff in zip(r[:-1], f[:-1], strict=True):
            fm = fm + (rf.detach() - ff).abs().mean()
    return adv / len(real), fm / len(real)
