"""The refiner wrapper: owns the network, its weights and device, and refines rendered
crops: a few DDIM steps sample the residual (the detail the render lacks) given the
render, and the residual is added inside the feathered face mask only, so every pixel
outside the face stays the render's own.

A shipped refiner is a folder: `config.json` (RefinerConfig) and `model.safetensors`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from likeness.generator.refiner.config import RefinerConfig
from likeness.generator.refiner.mask import apertures, face_masks
from likeness.generator.refiner.network import RefinerNetwork
from likeness.tensors import to_tensor, to_uint8
from likeness.weights_io import load_model, model_files, save_model

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "refiner"
NOISE_SEED = 1234  # one fixed noise image for every frame: no sampling flicker in video


def make_scheduler(config: RefinerConfig):
    """DDIM with trailing timesteps and, for v/sample prediction, zero terminal SNR: the
    first of a few steps then starts from pure noise, as training's last timestep does
    (the leading spacing of older pipelines never sees t = T and leaves a brightness
    bias with 1-4 steps; Lin et al. 2024, "Common Diffusion Noise Schedules...")."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=config.train_timesteps,
        beta_schedule="squaredcos_cap_v2",
        prediction_type=config.prediction_type,
        rescale_betas_zero_snr=config.prediction_type != "epsilon",
        timestep_spacing="trailing",
        clip_sample=False,
        set_alpha_to_one=True,
    )


def fixed_noise(size: int, device, seed: int = NOISE_SEED) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, 3, size, size, generator=gen).to(device)


@torch.no_grad()
def sample_residual(
    net: RefinerNetwork,
    scheduler,
    render: torch.Tensor,
    guide: torch.Tensor,
    noise: torch.Tensor,
    steps: int,
) -> torch.Tensor:
    """The residual (B, 3, H, W) in image units ([0, 1] scale) for renders (B, 3, H, W)
    in [0, 1] and guides (B, G, H, W: `guide`), from `noise` (B, 3, H, W) in `steps`
    DDIM steps."""
    scheduler.set_timesteps(steps, device=render.device)
    x = noise
    for t in scheduler.timesteps:
        tt = t.to(render.device).expand(render.shape[0])
        pred = net(render, guide, x, tt)
        x = scheduler.step(pred, t, x, eta=0.0).prev_sample
    return x / net.config.residual_scale


def guide(config: RefinerConfig, masks: np.ndarray, kps: np.ndarray) -> np.ndarray:
    """(N, G, S, S) float32: what the network reads beside the render, for face masks
    (N, S, S) and the keypoints (N, K, 3) they came from."""
    parts = [masks[:, None]]
    if config.apertures:
        parts.append(np.stack([apertures(k, masks.shape[-1]) for k in kps]))
    return np.concatenate(parts, axis=1).astype(np.float32)


def face_box(masks: np.ndarray, multiple: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the smallest box holding every mask's nonzero pixels, grown to
    sides that divide by `multiple` and kept inside the image."""
    size_y, size_x = masks.shape[-2:]
    any_y = np.flatnonzero(masks.max(axis=(0, 2)) > 0)
    any_x = np.flatnonzero(masks.max(axis=(0, 1)) > 0)
    if not len(any_y):
        return 0, 0, 0, 0

    def span(lo: int, hi: int, limit: int) -> tuple[int, int]:
        side = min(limit, -(-(hi - lo) // multiple) * multiple)
        start = min(max(0, (lo + hi - side) // 2), limit - side)
        return start, start + side

    y0, y1 = span(int(any_y[0]), int(any_y[-1]) + 1, size_y)
    x0, x1 = span(int(any_x[0]), int(any_x[-1]) + 1, size_x)
    return y0, y1, x0, x1


class RefinerModel:
    """Inference wrapper. `from_pretrained()` loads the shipped weights."""

    def __init__(
        self, network: RefinerNetwork, device: str = "cpu", weights_hash: str | None = None
    ) -> None:
        self.network = network.to(device).eval()
        self.config = network.config
        self.device = torch.device(device)
        self.weights_hash = weights_hash
        self.scheduler = make_scheduler(self.config)
        self._noise: torch.Tensor | None = None

    @classmethod
    def from_pretrained(cls, folder: Path | None = None, device: str = "cpu") -> RefinerModel:
        folder = Path(folder) if folder is not None else DEFAULT_WEIGHTS
        config_path, weights = model_files(
            folder,
            "--refine: no refiner weights",
            "this build ships none, see the README's Refiner section",
        )
        config = RefinerConfig.load(config_path)
        network = RefinerNetwork(config)
        load_model(network, weights, "refiner")
        from likeness.hashing import sha256_file

        return cls(network, device, weights_hash=sha256_file(weights))

    def masks(self, kps: np.ndarray, size: int) -> np.ndarray:
        c = self.config
        return face_masks(kps, size, c.mask_grow, c.mask_feather)

    def _noise_for(self, size: int) -> torch.Tensor:
        if self._noise is None or self._noise.shape[-1] < size:
            self._noise = fixed_noise(size, self.device)
        return self._noise

    @torch.inference_mode()
    def refine(self, renders: np.ndarray, kps: np.ndarray, steps: int | None = None) -> np.ndarray:
        """Renders (N, S, S, 3) uint8 and the keypoints (N, K, 3) they followed -> the
        refined frames (N, S, S, 3) uint8, equal to the renders outside the face mask."""
        renders = np.asarray(renders)
        size = renders.shape[1]
        masks = self.masks(kps, size)
        y0, y1, x0, x1 = face_box(masks, self.network.multiple)
        if y1 <= y0 or x1 <= x0:
            return renders.copy()
        crop = to_tensor(renders[:, y0:y1, x0:x1], self.device)
        guides = guide(self.config, masks, kps)[:, :, y0:y1, x0:x1]
        guides = torch.from_numpy(np.ascontiguousarray(guides)).to(self.device)
        mask = guides[:, :1]  # the face mask is the guide's first channel
        noise = self._noise_for(size)[:, :, y0:y1, x0:x1].expand(len(renders), -1, -1, -1)
        residual = sample_residual(
            self.network, self.scheduler, crop, guides, noise, steps or self.config.steps
        )
        refined = to_uint8(crop + mask * residual.float() * self.config.strength)
        out = renders.copy()
        inside = masks[:, y0:y1, x0:x1, None] > 0
        out[:, y0:y1, x0:x1] = np.where(inside, refined, renders[:, y0:y1, x0:x1])
        return out


def save_weights(network: RefinerNetwork, folder: Path, dtype=torch.float16) -> Path:
    """Write config.json and model.safetensors (half precision; float32 after loading)."""
    return save_model(network, folder, network.config.to_json(), dtype)
