"""The detector's training batches and augmentation. numpy, OpenCV, torch.

The training set itself (a FAKES folder) is read by `likeness.datasets.fakes_format`.
Batches draw from a generator seeded by (seed, step), so a resumed run sees exactly
the batches it would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from likeness.datasets.fakes_format import FakesSet, Sample
from likeness.datasets.families import make_forgery, needs_donor
from likeness.datasets.forgery import unsharp
from likeness.detector.config import AugmentConfig, DetectorConfig, TrainConfig
from likeness.errors import InputError
from likeness.media import codecs
from likeness.media.images import resize_square

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


def _degrade(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small, noisy, heavily compressed footage upsampled back: the crop down to 20-45 %,
    sensor noise (sigma 0-6 levels) and JPEG 15-40 at that size, then up again."""
    h, w = rgb.shape[:2]
    f = rng.uniform(0.2, 0.45)
    small = cv2.resize(
        np.ascontiguousarray(rgb), (max(8, int(w * f)), max(8, int(h * f))), cv2.INTER_AREA
    )
    sigma = rng.uniform(0, 6)
    if sigma > 0.5:
        small = np.clip(small + rng.normal(0, sigma, small.shape) + 0.5, 0, 255).astype(np.uint8)
    small = codecs.jpeg_roundtrip(np.ascontiguousarray(small), int(rng.integers(15, 41)))
    up = cv2.INTER_CUBIC if rng.random() < 0.5 else cv2.INTER_LINEAR
    return np.clip(cv2.resize(small, (w, h), interpolation=up), 0, 255).astype(np.uint8)


def augment(
    rgb: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    size: int,
    mask: np.ndarray | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """One training view of a 256 px crop, resized to `size`; with `mask`, the mask
    follows the same flip and crop (and comes back resized too)."""
    out = rgb
    if rng.random() < cfg.flip:
        out = out[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    if rng.random() < cfg.colour:
        out = _colour(out, rng)
    if rng.random() < cfg.grayscale:
        grey = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGB2GRAY)
        out = np.repeat(grey[:, :, None], 3, axis=2)
    h, w = out.shape[:2]
    if cfg.crop > 0:
        x0, x1 = (rng.uniform(0, cfg.crop, 2) * w).astype(int)
        y0, y1 = (rng.uniform(0, cfg.crop, 2) * h).astype(int)
        out = cv2.resize(
            np.ascontiguousarray(out[y0 : h - y1, x0 : w - x1]),
            (w, h),
            interpolation=cv2.INTER_LINEAR,
        )
        if mask is not None:
            mh, mw = mask.shape
            my0, my1, mx0, mx1 = (round(v * mh / h) for v in (y0, y1, x0, x1))
            part = np.ascontiguousarray(mask[my0 : mh - my1, mx0 : mw - mx1])
            mask = cv2.resize(part, (mw, mh), interpolation=cv2.INTER_LINEAR)
    if rng.random() < cfg.blur:
        out = cv2.GaussianBlur(np.ascontiguousarray(out), (0, 0), rng.uniform(0.4, 1.6) * w / 256)
    if cfg.sharpen > 0 and rng.random() < cfg.sharpen:
        sigma = rng.uniform(0.6, 1.5) * w / 256
        out = unsharp(np.ascontiguousarray(out), sigma, rng.uniform(0.5, 1.5))
    if rng.random() < cfg.resize:
        f = rng.uniform(0.35, 0.9)
        small = cv2.resize(
            np.ascontiguousarray(out),
            (max(8, int(w * f)), max(8, int(h * f))),
            interpolation=cv2.INTER_AREA,
        )
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < cfg.degrade:
        out = _degrade(out, rng)
    if rng.random() < cfg.noise:
        noise = rng.normal(0, rng.uniform(1, 5), out.shape)
        out = np.clip(out.astype(np.float32) + noise + 0.5, 0, 255).astype(np.uint8)
    r = rng.random()
    if r < cfg.jpeg:
        out = codecs.jpeg_roundtrip(np.ascontiguousarray(out), int(rng.integers(35, 96)))
    elif r < cfg.jpeg + cfg.h264 and codecs.h264_available():
        out = codecs.h264_roundtrip([np.ascontiguousarray(out)], int(rng.integers(20, 37)))[0]
    if mask is None:
        return resize_to(out, size)
    return resize_to(out, size), resize_to(np.ascontiguousarray(mask, np.float32), size)


resize_to = resize_square  # the crop at the network's input size


def softened(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A real crop with less fine detail (`AugmentConfig.real_smooth`): a Gaussian blur
    of sigma 0.5-1.3 px at 256 px."""
    sigma = rng.uniform(0.5, 1.3) * rgb.shape[1] / 256
    return cv2.GaussianBlur(np.ascontiguousarray(rgb), (0, 0), sigma)


def shrunk(img: np.ndarray, scale: float) -> np.ndarray:
    """The crop as a face `scale` times the size would give it: shrunk (area
    averaging), then enlarged back to its own size. What `scan` sees of a small face,
    since alignment enlarges every face to the 256 px crop."""
    if scale >= 1:
        return img
    h, w = img.shape[:2]
    small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


# ---------------------------------------------------------------- batches


@dataclass
class _View:
    rgb: np.ndarray  # at the working size
    mask: np.ndarray | None  # (H, W) float in [0, 1]; None: not known (format-1 fakes)


class BatchSampler:
    """Balanced batches: `fake_fraction` fakes, drawn evenly over the stored fake
    families plus fresh online fakes of real training crops (`online_sbi` of the
    fakes; SBI's lesson: endless new blends), each online fake from one of the pure
    families (`online_families`). Families in `exclude_families` never appear."""

    def __init__(self, data: FakesSet, config: DetectorConfig, train: TrainConfig) -> None:
        self.data = data
        self.config = config
        self.train = train
        excluded = set(train.exclude_families)
        self.reals = data.select("train", label=0)
        fakes = [
            s
            for s in data.select("train", label=1)
            if s.family not in excluded and s.group not in excluded
        ]
        self.online = tuple(f for f in train.online_families if f not in excluded)
        if not self.reals or (not fakes and not (train.online_sbi and self.online)):
            raise InputError(f"{data.root.name}: its train split needs real and fake crops")
        self.families: dict[str, list[Sample]] = {}
        for s in fakes:
            self.families.setdefault(s.family, []).append(s)
        self.blendable = [s for s in self.reals if data.key_landmarks(s) is not None]
        # Each online swap/lipsync fake draws a donor of another person: one array of
        # identities makes that a vectorised compare instead of a Python scan of ~2,500
        # crops per fake (same donors, same order, so the same batches as before).
        self._blend_ids = np.array([s.identity for s in self.blendable], dtype=object)
        if len({s.identity for s in self.blendable}) < 2:
            # swap and lipsync take another person's face: none to take here.
            self.online = tuple(f for f in self.online if not needs_donor(f))
        if not (self.blendable and self.online) and not self.families:
            raise InputError(f"{data.root.name}: no fakes and no landmarks to make fakes from")
        self._pool = None
        if train.num_workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            # OpenCV and numpy release the GIL: threads are enough, and keep memory shared.
            self._pool = ThreadPoolExecutor(train.num_workers)

    def _work(self, sample: Sample, with_mask: bool = True) -> tuple[_View, np.ndarray | None]:
        """A crop at the working size (twice the input, at most the stored size: finer
        work is thrown away by the final resize), its mask, and its landmark rows."""
        rgb = self.data.read(sample)
        key = self.data.key_landmarks(sample)
        mask = None
        if with_mask:
            # A real crop changed nowhere: zeros of its size, without decoding it again.
            real = sample.label == 0 and not sample.mask
            mask = np.zeros(rgb.shape[:2], np.float32) if real else self.data.mask(sample)
        work = min(rgb.shape[0], 2 * self.config.input_size)
        if work < rgb.shape[0]:
            if key is not None:
                key = key * np.float32(work / rgb.shape[0])
            rgb = cv2.resize(rgb, (work, work), interpolation=cv2.INTER_AREA)
        if mask is not None and mask.shape[:2] != rgb.shape[:2]:
            # With the crop to its working size; a mask stored smaller (`--mask-size`)
            # is enlarged smoothly.
            shrink = mask.shape[0] > rgb.shape[0]
            how = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            mask = cv2.resize(mask, rgb.shape[1::-1], interpolation=how)
        return _View(rgb, mask), key

    def _online(self, rng: np.random.Generator, target: Sample | None = None) -> _View:
        family = self.online[int(rng.integers(len(self.online)))]
        if target is None:
            target = self.blendable[int(rng.integers(len(self.blendable)))]
        view, key = self._work(target, with_mask=False)
        donor = donor_key = None
        if needs_donor(family):
            others = np.flatnonzero(self._blend_ids != target.identity)
            pick = self.blendable[int(others[int(rng.integers(len(others)))])]
            donor_view, donor_key = self._work(pick, False)
            donor = donor_view.rgb
        made = make_forgery(family, view.rgb, key, rng, donor=donor, donor_lm=donor_key)
        return _View(made.image, made.mask)

    def _fake(self, rng: np.random.Generator) -> _View:
        online = (
            self.blendable
            and self.online
            and (not self.families or rng.random() < self.train.online_sbi)
        )
        if online:
            return self._online(rng)
        names = sorted(self.families)
        pool = self.families[names[int(rng.integers(len(names)))]]
        return self._work(pool[int(rng.integers(len(pool)))])[0]

    def _one(
        self, label: float, seed: list[int], pair: Sample | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One augmented crop; `pair` (a blendable real crop) makes the slot that real
        crop itself, or an online fake of it."""
        rng = np.random.default_rng(seed)
        if pair is not None:
            view = self._online(rng, pair) if label else self._work(pair)[0]
        elif label:
            view = self._fake(rng)
        else:
            view = self._work(self.reals[int(rng.integers(len(self.reals)))])[0]
        smooth = self.train.augment.real_smooth
        if not label and smooth > 0 and rng.random() < smooth:
            view = replace(view, rgb=softened(view.rgb, rng))
        if view.mask is None:
            return augment(view.rgb, self.train.augment, rng, self.config.input_size), None
        return augment(view.rgb, self.train.augment, rng, self.config.input_size, view.mask)

    def _pairs(self, labels: np.ndarray, rng: np.random.Generator) -> list[Sample | None]:
        """Per slot, the real crop it is paired with (None: drawn on its own). A `paired`
        share of the fake slots each take one real slot's crop and become an online fake
        of it; with `paired` 0 nothing is drawn here, so batches are as before."""
        pairs: list[Sample | None] = [None] * len(labels)
        if not (self.train.paired and self.blendable and self.online):
            return pairs
        reals = list(np.flatnonzero(labels == 0))
        for i in np.flatnonzero(labels == 1):
            if not reals or rng.random() >= self.train.paired:
                continue
            j = reals.pop(0)
            pairs[i] = pairs[j] = self.blendable[int(rng.integers(len(self.blendable)))]
        return pairs

    def batch(self, step: int, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (B, 3, S, S) float in [0, 1], labels (B,) float)."""
        images, labels, _, _ = self.dense_batch(step, batch_size)
        return images, labels

    def dense_batch(
        self, step: int, batch_size: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images, labels, masks (B, S, S) float in [0, 1], mask_known (B,) float: 0
        where a stored fake has no mask)."""
        n = batch_size or self.train.batch_size
        seed = self.train.seed
        rng = np.random.default_rng([seed, step])
        n_fake = int(round(n * self.train.fake_fraction))
        labels = np.array([1] * n_fake + [0] * (n - n_fake), np.float32)
        rng.shuffle(labels)
        pairs = self._pairs(labels, rng)
        # Each crop has its own generator, so threads cannot change what it becomes.
        seeds = [[seed, step, i] for i in range(n)]
        if self._pool is not None:
            made = list(self._pool.map(self._one, labels, seeds, pairs))
        else:
            made = [self._one(*slot) for slot in zip(labels, seeds, pairs, strict=True)]
        size = self.config.input_size
        masks = np.zeros((n, size, size), np.float32)
        known = np.zeros(n, np.float32)
        for i, (_, mask) in enumerate(made):
            if mask is not None:
                masks[i], known[i] = mask, 1.0
        x = torch.from_numpy(np.stack([m[0] for m in made])).permute(0, 3, 1, 2).float()
        return (
            x.div_(255.0),
            torch.from_numpy(labels),
            torch.from_numpy(masks),
            torch.from_numpy(known),
        )


def evaluation_images(
    data: FakesSet, samples: list[Sample], size: int, scale: float = 1.0
) -> np.ndarray:
    """Crops as the detector sees them at scan time: no augmentation, resized; with
    `scale` < 1, as a face that much smaller in the frame would give them (`shrunk`)."""
    out = np.empty((len(samples), size, size, 3), np.uint8)
    for i, s in enumerate(samples):
        out[i] = resize_to(shrunk(data.read(s), scale), size)
    return out


def subsample(samples: list[Sample], limit: int, seed: int = 0) -> list[Sample]:
    """At most `limit` samples, whole videos kept together where possible (a fixed
    draw, so every checkpoint is measured on the same crops)."""
    if len(samples) <= limit:
        return list(samples)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(samples), size=limit, replace=False))
    return [samples[i] for i in idx]
