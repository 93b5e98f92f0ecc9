"""Single-frame batches for training the motion extractor alone (TrainConfig.mode
"extractor"): each frame in its own aligned crop, as `animate --keypoints learned`
shows it to the extractor, with its mesh keypoints as the target.

Every frame comes as two views, each through its own random similarity (rotation,
scale, shift; the keypoints and the head roll follow it exactly) and its own image
damage (colour, grey, blur, noise, low resolution, JPEG), so the extractor learns to
read motion from real footage and the equivariance loss can ask that the two views'
predictions agree up to the known map between them. Seeded by (seed, step) like
`data.PairSampler`, so a resumed run sees the batches it would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from likeness.errors import InputError
from likeness.faces.geometry import affine_scale, apply_affine_3d
from likeness.generator import keypoints as kpt
from likeness.generator.config import ExtractorAugment
from likeness.generator.data import Clip, _flip
from likeness.media.codecs import jpeg_roundtrip


@dataclass
class FrameBatch:
    images: torch.Tensor  # (2B, 3, S, S) in [0, 1]: views a of B frames, then views b
    keypoints: torch.Tensor  # (2B, K, 3) normalised to each view
    angles: torch.Tensor  # (2B, 3) yaw, pitch, roll of each view
    canonical: torch.Tensor  # (2B, K, 3) the clip's mean pose-free shape
    a_to_b: torch.Tensor  # (B, 2, 3) view a -> view b, normalised coordinates
    depth_scale: torch.Tensor  # (B,) view b depth over view a depth

    def to(self, device) -> FrameBatch:
        return FrameBatch(
            *(getattr(self, f).to(device, non_blocking=True) for f in self.__dataclass_fields__)
        )


def view_matrix(
    rng: np.random.Generator, size: int, aug: ExtractorAugment
) -> tuple[np.ndarray, float]:
    """A random similarity (2x3, crop pixels -> view pixels) about the crop centre, and
    its rotation in degrees (positive from x towards y, the roll convention)."""
    turn = rng.uniform(-aug.rotation, aug.rotation)
    scale = 1 + rng.uniform(-aug.scale, aug.scale)
    shift = rng.uniform(-aug.shift, aug.shift, 2) * size
    rad = np.deg2rad(turn)
    lin = scale * np.array([[np.cos(rad), -np.sin(rad)], [np.sin(rad), np.cos(rad)]])
    centre = np.array([size / 2 - 0.5, size / 2 - 0.5])
    matrix = np.concatenate([lin, (centre - lin @ centre + shift)[:, None]], axis=1)
    return matrix, turn


def normalised_map(matrix: np.ndarray, size: int) -> np.ndarray:
    """A 2x3 map of crop pixels -> the same map in normalised coordinates
    (`keypoints.normalise`: x_n = (x + 0.5) / size * 2 - 1)."""
    to_n = np.array([[2 / size, 0, 1 / size - 1], [0, 2 / size, 1 / size - 1], [0, 0, 1]])
    full = np.vstack([matrix, [0, 0, 1]])
    return (to_n @ full @ np.linalg.inv(to_n))[:2]


def damage(image: np.ndarray, rng: np.random.Generator, aug: ExtractorAugment) -> np.ndarray:
    """Colour, grey, blur, noise, low resolution and JPEG, each at its own rate."""
    size = image.shape[0]
    x = image.astype(np.float32)
    gain = 1 + rng.uniform(-aug.colour, aug.colour, 3)
    bias = rng.uniform(-aug.colour, aug.colour, 3) * 0.5 * 255
    x = x * gain + bias
    if rng.random() < aug.grey:
        x[:] = x.mean(axis=2, keepdims=True)
    if rng.random() < aug.blur:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.4, 1.6) * size / 256)
    if rng.random() < aug.noise:
        x = x + rng.normal(0, rng.uniform(0, 4), x.shape)
    out = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < aug.lowres:
        small = max(8, int(size * rng.uniform(0.25, 0.5)))
        tiny = cv2.resize(out, (small, small), interpolation=cv2.INTER_AREA)
        out = cv2.resize(tiny, (size, size))
    if rng.random() < aug.jpeg:
        # Through the project's one JPEG round trip: OpenCV codes BGR, and RGB handed to
        # it straight would have its chroma subsampled on swapped channels.
        out = jpeg_roundtrip(out, int(rng.integers(25, 91)))
    return out


class FrameSampler:
    def __init__(
        self,
        clips: list[Clip],
        batch_size: int,
        seed: int,
        photo_fraction: float,
        flip: float,
        aug: ExtractorAugment,
    ) -> None:
        self.videos = [c for c in clips if len(c.frames) > 1]
        self.photos = [c for c in clips if len(c.frames) == 1]
        if not self.videos and not self.photos:
            raise InputError("no training clips")
        sizes = np.sqrt([len(c.frames) for c in self.videos])
        # As PairSampler: long clips count more, sub-linearly.
        self.weights = sizes / sizes.sum() if len(sizes) else sizes
        self.batch_size, self.seed = batch_size, seed
        self.photo_fraction, self.flip, self.aug = photo_fraction, flip, aug
        self.perm = kpt.mirror_permutation()

    def _frame(self, rng: np.random.Generator):
        use_photo = self.photos and (not self.videos or rng.random() < self.photo_fraction)
        if use_photo:
            clip = self.photos[rng.integers(len(self.photos))]
        else:
            clip = self.videos[rng.choice(len(self.videos), p=self.weights)]
        i = rng.integers(len(clip.frames))
        image, kp = clip.frames[i], clip.keypoints[i]
        ang, canon = clip.angles[i].astype(np.float32).copy(), clip.canonical.copy()
        if rng.random() < self.flip:
            image, kp, canon = image[:, ::-1], _flip(kp, self.perm), _flip(canon, self.perm)
            ang[0], ang[2] = -ang[0], -ang[2]
        return np.ascontiguousarray(image), kp, ang, canon

    def view(self, image, kp, ang, rng):
        """One augmented view: image, keypoints, angles, and its 2x3 pixel map."""
        size = image.shape[0]
        matrix, turn = view_matrix(rng, size, self.aug)
        warped = cv2.warpAffine(
            image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
        moved = kpt.normalise(apply_affine_3d(matrix, kpt.to_pixels(kp, size)), size)
        angles = ang.copy()
        angles[2] += turn
        return damage(warped, rng, self.aug), moved, angles, matrix

    def batch(self, step: int, batch_size: int | None = None, seed: int | None = None):
        b = batch_size or self.batch_size
        rng = np.random.default_rng([self.seed if seed is None else seed, step])
        views: dict[str, list] = {k: [[], []] for k in ("images", "kp", "angles", "canon")}
        maps, depth = [], []
        for _ in range(b):
            image, kp, ang, canon = self._frame(rng)
            size = image.shape[0]
            mats = []
            for v in range(2):
                img, moved, angles, matrix = self.view(image, kp, ang, rng)
                views["images"][v].append(img.transpose(2, 0, 1))
                views["kp"][v].append(moved)
                views["angles"][v].append(angles)
                views["canon"][v].append(canon)
                mats.append(np.vstack([matrix, [0, 0, 1]]))
            between = (mats[1] @ np.linalg.inv(mats[0]))[:2]
            maps.append(normalised_map(between, size))
            depth.append(affine_scale(between))

        def stacked(name: str) -> torch.Tensor:
            return torch.from_numpy(np.stack(views[name][0] + views[name][1]).astype(np.float32))

        return FrameBatch(
            stacked("images") / 255.0,
            stacked("kp"),
            stacked("angles"),
            stacked("canon"),
            torch.from_numpy(np.stack(maps).astype(np.float32)),
            torch.from_numpy(np.asarray(depth, np.float32)),
        )
