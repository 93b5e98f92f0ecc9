"""The detector's training batches and augmentation. numpy, OpenCV, torch.

The training set itself (a FAKES folder) is read by `likeness.datasets.fakes_format`.
Batches draw from a generator seeded by (seed, step), so a resumed run sees exactly
the batches it would have seen.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from likeness.datasets.fakes_format import FakesSet, Sample
from likeness.detector.config import AugmentConfig, DetectorConfig, TrainConfig
from likeness.errors import InputError
from likeness.media import codecs

# ---------------------------------------------------------------- augmentation


def _colour(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = rgb.astype(np.float32)
    gain = 1 + rng.uniform(-0.2, 0.2)
    bias = rng.uniform(-20, 20)
    mean = img.mean()
    contrast = 1 + rng.uniform(-0.2, 0.2)
    img = (img - mean) * contrast + mean
    grey = img.mean(axis=2, keepdims=True)
    sat = 1 + rng.uniform(-0.25, 0.25)
    img = grey + (img - grey) * sat
    img = img * gain + bias
    img = img * (1 + rng.uniform(-0.05, 0.05, size=3))  # white balance
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def augment(rgb: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator, size: int) -> np.ndarray:
    """One training view of a 256 px crop, resized to `size`."""
    out = rgb
    if rng.random() < cfg.flip:
        out = out[:, ::-1]
    if rng.random() < cfg.colour:
        out = _colour(out, rng)
    h, w = out.shape[:2]
    if cfg.crop > 0:
        x0, x1 = (rng.uniform(0, cfg.crop, 2) * w).astype(int)
        y0, y1 = (rng.uniform(0, cfg.crop, 2) * h).astype(int)
        out = cv2.resize(
            np.ascontiguousarray(out[y0 : h - y1, x0 : w - x1]),
            (w, h),
            interpolation=cv2.INTER_LINEAR,
        )
    if rng.random() < cfg.blur:
        out = cv2.GaussianBlur(np.ascontiguousarray(out), (0, 0), rng.uniform(0.4, 1.6) * w / 256)
    if rng.random() < cfg.resize:
        f = rng.uniform(0.35, 0.9)
        small = cv2.resize(
            np.ascontiguousarray(out),
            (max(8, int(w * f)), max(8, int(h * f))),
            interpolation=cv2.INTER_AREA,
        )
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < cfg.noise:
        noise = rng.normal(0, rng.uniform(1, 5), out.shape)
        out = np.clip(out.astype(np.float32) + noise + 0.5, 0, 255).astype(np.uint8)
    r = rng.random()
    if r < cfg.jpeg:
        out = codecs.jpeg_roundtrip(np.ascontiguousarray(out), int(rng.integers(35, 96)))
    elif r < cfg.jpeg + cfg.h264 and codecs.h264_available():
        out = codecs.h264_roundtrip([np.ascontiguousarray(out)], int(rng.integers(20, 37)))[0]
    return resize_to(out, size)


def resize_to(rgb: np.ndarray, size: int) -> np.ndarray:
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return np.ascontiguousarray(rgb)
    interp = cv2.INTER_AREA if rgb.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(rgb), (size, size), interpolation=interp)


# ---------------------------------------------------------------- batches


class BatchSampler:
    """Balanced batches: `fake_fraction` fakes, drawn evenly over the stored fake
    families plus fresh self-blends of real training crops."""

    def __init__(self, data: FakesSet, config: DetectorConfig, train: TrainConfig) -> None:
        self.data = data
        self.config = config
        self.train = train
        self.reals = data.select("train", label=0)
        fakes = data.select("train", label=1)
        if not self.reals or (not fakes and not train.online_sbi):
            raise InputError(f"{data.root.name}: its train split needs real and fake crops")
        self.families: dict[str, list[Sample]] = {}
        for s in fakes:
            self.families.setdefault(s.family, []).append(s)
        self.blendable = [s for s in self.reals if data.mesh(s) is not None]
        if not self.blendable and not self.families:
            raise InputError(f"{data.root.name}: no fakes and no landmarks to make self-blends")
        self._pool = None
        if train.num_workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            # OpenCV and numpy release the GIL: threads are enough, and keep memory shared.
            self._pool = ThreadPoolExecutor(train.num_workers)

    def _work(self, sample: Sample, blend: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """A crop at the working size (twice the input, at most the stored size: finer
        work is thrown away by the final resize), with its mesh when `blend`."""
        rgb = self.data.read(sample)
        mesh = self.data.mesh(sample) if blend else None
        work = min(rgb.shape[0], 2 * self.config.input_size)
        if work < rgb.shape[0]:
            if mesh is not None:
                mesh = mesh * np.float32(work / rgb.shape[0])
            rgb = cv2.resize(rgb, (work, work), interpolation=cv2.INTER_AREA)
        return rgb, mesh

    def _fake(self, rng: np.random.Generator) -> np.ndarray:
        online = self.blendable and (not self.families or rng.random() < self.train.online_sbi)
        if online:
            from likeness.datasets.self_blend import self_blend

            sample = self.blendable[int(rng.integers(len(self.blendable)))]
            rgb, mesh = self._work(sample, blend=True)
            return self_blend(rgb, mesh, rng).image
        names = sorted(self.families)
        pool = self.families[names[int(rng.integers(len(names)))]]
        return self._work(pool[int(rng.integers(len(pool)))], blend=False)[0]

    def _one(self, label: float, seed: list[int]) -> np.ndarray:
        rng = np.random.default_rng(seed)
        if label:
            rgb = self._fake(rng)
        else:
            rgb = self._work(self.reals[int(rng.integers(len(self.reals)))], blend=False)[0]
        return augment(rgb, self.train.augment, rng, self.config.input_size)

    def batch(self, step: int, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (B, 3, S, S) float in [0, 1], labels (B,) float)."""
        n = batch_size or self.train.batch_size
        seed = self.train.seed
        rng = np.random.default_rng([seed, step])
        n_fake = int(round(n * self.train.fake_fraction))
        labels = np.array([1] * n_fake + [0] * (n - n_fake), np.float32)
        rng.shuffle(labels)
        # Each crop has its own generator, so threads cannot change what it becomes.
        seeds = [[seed, step, i] for i in range(n)]
        if self._pool is not None:
            crops = list(self._pool.map(self._one, labels, seeds))
        else:
            crops = [self._one(label, s) for label, s in zip(labels, seeds, strict=True)]
        x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)
        return x, torch.from_numpy(labels)


def evaluation_images(data: FakesSet, samples: list[Sample], size: int) -> np.ndarray:
    """Crops as the detector sees them at scan time: no augmentation, resized."""
    out = np.empty((len(samples), size, size, 3), np.uint8)
    for i, s in enumerate(samples):
        out[i] = resize_to(data.read(s), size)
    return out


def subsample(samples: list[Sample], limit: int, seed: int = 0) -> list[Sample]:
    """At most `limit` samples, whole videos kept together where possible (a fixed
    draw, so every checkpoint is measured on the same crops)."""
    if len(samples) <= limit:
        return list(samples)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(samples), size=limit, replace=False))
    return [samples[i] for i in idx]
