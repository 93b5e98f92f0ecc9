"""Training crops of cached (render, real frame) pairs: square crops around the face
(the refiner changes nothing outside it), horizontally flipped at random, with the face
mask, the valid-pixel mask and the eye/mouth boxes. Every batch is drawn by
(seed, step), so a resumed run sees the batches it would have seen. numpy and torch."""

from __future__ import annotations

import numpy as np
import torch

from likeness.errors import InputError
from likeness.generator.refiner.config import RefinerConfig, RefinerTrainConfig
from likeness.generator.refiner.mask import apertures, face_mask, region_mask
from likeness.generator.refiner.pairs import Pairs


class CropSampler:
    def __init__(self, pairs: Pairs, config: RefinerConfig, train: RefinerTrainConfig) -> None:
        if not len(pairs):
            raise InputError("no refiner pairs to train on")
        self.pairs = pairs
        self.train = train
        size = pairs.render.shape[1]
        if train.crop > size:
            raise InputError(f"refiner crop {train.crop} is larger than the pairs ({size} px)")
        self.size = size
        masks = [face_mask(k, size, config.mask_grow, config.mask_feather) for k in pairs.kp]
        self.masks = np.stack([(m * 255).round().astype(np.uint8) for m in masks])
        self.regions = np.stack([region_mask(k, size).astype(np.uint8) for k in pairs.kp])
        # The guide's channels after the face mask (`model.guide`), as uint8.
        extra = config.guide_channels - 1
        self.apertures = (
            np.stack([(apertures(k, size) * 255).round().astype(np.uint8) for k in pairs.kp])
            if extra
            else np.zeros((len(pairs), 0, size, size), np.uint8)
        )
        # The face's box per pair: crops are centred inside it.
        self.boxes = []
        for m in self.masks:
            ys, xs = np.nonzero(m)
            if len(ys):
                self.boxes.append((ys.min(), ys.max(), xs.min(), xs.max()))
            else:
                self.boxes.append((0, size - 1, 0, size - 1))

    def batch(
        self, step: int, batch_size: int | None = None, seed: int | None = None
    ) -> dict[str, torch.Tensor]:
        tr = self.train
        b = batch_size or tr.batch_size
        c, s = tr.crop, self.size
        rng = np.random.default_rng([tr.seed if seed is None else seed, step])
        keys = ("render", "target", "valid", "mask", "region", "guide")
        cols: dict[str, list] = {k: [] for k in keys}
        for _ in range(b):
            i = int(rng.integers(len(self.pairs)))
            y_lo, y_hi, x_lo, x_hi = self.boxes[i]
            cy, cx = rng.integers(y_lo, y_hi + 1), rng.integers(x_lo, x_hi + 1)
            y0 = int(np.clip(cy - c // 2, 0, s - c))
            x0 = int(np.clip(cx - c // 2, 0, s - c))
            win = (slice(y0, y0 + c), slice(x0, x0 + c))
            parts = {
                "render": self.pairs.render[i][win].astype(np.float32) / 255.0,
                "target": self.pairs.target[i][win].astype(np.float32) / 255.0,
                "valid": self.pairs.valid[i][win][..., None].astype(np.float32),
                "mask": self.masks[i][win][..., None].astype(np.float32) / 255.0,
                "region": self.regions[i][win][..., None].astype(np.float32),
            }
            extra = self.apertures[i][(slice(None), *win)].transpose(1, 2, 0) / np.float32(255)
            parts["guide"] = np.concatenate([parts["mask"], extra], axis=-1)
            flip = rng.random() < tr.flip
            for k, v in parts.items():
                v = v[:, ::-1] if flip else v
                cols[k].append(np.ascontiguousarray(v.transpose(2, 0, 1)))
        return {k: torch.from_numpy(np.stack(v)) for k, v in cols.items()}
