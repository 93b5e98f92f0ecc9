"""The generator wrapper: owns the networks, their weights, device and precision, and
exposes the few operations the pipeline and training need.

A shipped model is a folder: `config.json` (GeneratorConfig) and `model.safetensors`
(every network's weights under its prefix: renderer., extractor., eyes., lips.).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from likeness.generator import keypoints as kpt
from likeness.generator.config import GeneratorConfig
from likeness.generator.eye_detail import restore_eyes
from likeness.generator.gaze import retarget_gaze
from likeness.generator.networks.motion_extractor import MotionExtractor
from likeness.generator.networks.portrait import WarpingGenerator
from likeness.generator.networks.retarget import Retarget
from likeness.tensors import resize_square, to_tensor, to_uint8
from likeness.weights_io import load_model, model_files, save_model

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "generator"


class GeneratorNetworks(nn.Module):
    """All trainable parts, so that one state dict holds the whole model."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.renderer = WarpingGenerator(config)
        self.extractor = MotionExtractor(
            config.extractor_backbone, config.num_keypoints, config.pose_bins
        )
        self.eyes = Retarget(config.num_keypoints, 2, kpt.EYE_ROWS, config.retarget_hidden)
        self.lips = Retarget(
            config.num_keypoints, 2, (*kpt.LIP_ROWS, *kpt.JAW_ROWS), config.retarget_hidden
        )


class GeneratorModel:
    """Inference wrapper. `from_pretrained()` loads the shipped weights."""

    def __init__(
        self, networks: GeneratorNetworks, device: str = "cpu", weights_hash: str | None = None
    ) -> None:
        self.networks = networks.to(device).eval()
        self.config = networks.config
        self.device = torch.device(device)
        self.weights_hash = weights_hash
        # bf16 autocast on GPUs; CPUs run float32 (bf16 convs are slow on most CPUs).
        self.autocast = self.device.type == "cuda"

    @classmethod
    def from_pretrained(cls, folder: Path | None = None, device: str = "cpu") -> GeneratorModel:
        folder = Path(folder) if folder is not None else DEFAULT_WEIGHTS
        config_path, weights = model_files(
            folder, "generator weights not found", "reinstall likeness or pass --weights"
        )
        config = GeneratorConfig.load(config_path)
        networks = GeneratorNetworks(config)
        load_weights(networks, weights)
        return cls(networks, device, weights_hash=file_hash(weights))

    def _ctx(self):
        if self.autocast:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    @torch.inference_mode()
    def extract_appearance(self, crop: np.ndarray) -> dict[str, torch.Tensor]:
        """The source crop (H, W, 3) uint8 -> what `render` needs of it."""
        c = self.config
        full = resize_square(to_tensor(crop, self.device), c.output_size)
        with self._ctx():
            volume = self.networks.renderer.encode(resize_square(full, c.image_size))
        # The crop itself at the output size, for the eye detail after each render.
        return {"volume": volume, "full": full, "image": to_uint8(full)[0]}

    @torch.inference_mode()
    def render(
        self, appearance: dict[str, torch.Tensor], kp_source: np.ndarray, kp_driving: np.ndarray
    ) -> np.ndarray:
        """kp_source (K, 3); kp_driving (N, K, 3) -> N frames (N, out, out, 3) uint8,
        the eyes carrying the photo's detail (`config.eye_detail`) and the irises moved
        where the driving keypoints put them (`config.gaze`)."""
        n = len(kp_driving)
        src = torch.as_tensor(np.asarray(kp_source), dtype=torch.float32, device=self.device)
        drv = torch.as_tensor(np.asarray(kp_driving), dtype=torch.float32, device=self.device)
        volume = appearance["volume"].expand(n, *appearance["volume"].shape[1:])
        full = appearance["full"].expand(n, -1, -1, -1)
        with self._ctx():
            out = self.networks.renderer.render(volume, full, src[None].expand(n, -1, -1), drv)
        frames = to_uint8(out["image"])
        if "image" in appearance:
            frames = restore_eyes(
                frames, appearance["image"], kp_source, kp_driving, self.config.eye_detail
            )
        return retarget_gaze(frames, kp_source, kp_driving, self.config.gaze)

    @torch.inference_mode()
    def extract_motion(self, crops: np.ndarray) -> np.ndarray:
        """Crops (N, H, W, 3) uint8 -> keypoints (N, K, 3) predicted from pixels alone."""
        x = resize_square(to_tensor(crops, self.device), self.config.extractor_size)
        with self._ctx():
            out = self.networks.extractor(x)
        return out["keypoints"].float().cpu().numpy()

    @torch.inference_mode()
    def retarget(
        self, part: str, kp: np.ndarray, current: np.ndarray, wanted: np.ndarray
    ) -> np.ndarray:
        """Offsets (N, K, 3) that take keypoints (N, K, 3) from `current` to `wanted`
        eye openness or mouth shape ((N, 2) each); part is 'eyes' or 'lips'."""
        net = self.networks.eyes if part == "eyes" else self.networks.lips
        args = [
            torch.as_tensor(np.asarray(a), dtype=torch.float32, device=self.device)
            for a in (kp, current, wanted)
        ]
        return net(*args).cpu().numpy()


def file_hash(path: Path) -> str:
    from likeness.hashing import sha256_file

    return sha256_file(path)


def save_weights(networks: GeneratorNetworks, folder: Path, dtype=torch.float16) -> Path:
    """Write config.json and model.safetensors (half precision; float32 after loading)."""
    return save_model(networks, folder, networks.config.to_json(), dtype)


def load_weights(networks: nn.Module, path: Path) -> None:
    load_model(networks, path, "generator")


def config_digest(config: GeneratorConfig) -> str:
    return hashlib.sha256(json.dumps(config.to_json()).encode()).hexdigest()[:12]
