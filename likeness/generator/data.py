"""Training pairs from a pack: source and driving frames of one person.

Videos give (source, driving) frames of the same clip; photos give pairs through a
random smooth warp (synthetic motion), so identities seen only in photos still teach
the model. Every batch is drawn from a generator seeded by (seed, step), so a resumed
run sees exactly the batches it would have seen. numpy, OpenCV and torch only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from likeness.datasets.pack_reader import Pack, PackItem
from likeness.errors import InputError
from likeness.faces.align import AlignParams, params_to_matrix
from likeness.faces.geometry import apply_affine_3d, invert_affine
from likeness.generator import keypoints as kpt
from likeness.generator import motion
from likeness.generator.config import GeneratorConfig, TrainConfig


@dataclass
class Clip:
    item: PackItem
    frames: np.ndarray  # (N, S, S, 3) uint8 at the model's output size
    keypoints: np.ndarray  # (N, K, 3) normalised
    angles: np.ndarray  # (N, 3) yaw, pitch, roll
    canonical: np.ndarray  # (K, 3) the clip's mean pose-free shape
    matrices: np.ndarray  # (N, 2, 3) source-video pixels -> crop pixels, per frame


@dataclass
class Batch:
    source: torch.Tensor  # (B, 3, S, S) in [0, 1], output size
    driving: torch.Tensor
    valid: torch.Tensor  # (B, 1, S, S): 1 where the driving frame has real pixels
    kp_source: torch.Tensor  # (B, K, 3)
    kp_driving: torch.Tensor
    angles_driving: torch.Tensor  # (B, 3)
    canonical_driving: torch.Tensor  # (B, K, 3)
    eye_delta: torch.Tensor  # (B, K, 3) driving eyes moved into the source's head frame
    lip_delta: torch.Tensor
    eyes: torch.Tensor  # (B, 2, 2): openness of source, driving
    lips: torch.Tensor  # (B, 2, 2): mouth shape of source, driving

    def to(self, device) -> Batch:
        return Batch(
            *(getattr(self, f).to(device, non_blocking=True) for f in self.__dataclass_fields__)
        )


def local_shape(kp: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Keypoints with head pose, place and size removed: R^T (x - t) / s."""
    rot = motion.euler_to_matrix(*angles)
    centred = kp - kp.mean(0)
    scale = np.sqrt((centred**2).sum(1).mean()) + 1e-6
    return centred @ rot / scale


def load_clips(
    pack: Pack,
    split: str,
    config: GeneratorConfig,
    max_frames: int | None = None,
    size: int | None = None,
) -> list[Clip]:
    """The split's items with frames at `size` (default: the model's output size)."""
    clips = []
    items = pack.select(split=split)
    if not items:
        raise InputError(f"pack {pack.root} has no {split} items")
    for item in items:
        frames = pack.frames(item, size=size or config.output_size)
        arrays = pack.arrays(item)
        kp = kpt.from_pack_arrays(arrays.landmarks, arrays.irises, pack.crop_size)
        angles = np.asarray(arrays.pose, np.float64)
        size = frames.shape[1]
        matrices = np.stack(
            [params_to_matrix(AlignParams(*map(float, p)), size) for p in arrays.params]
        )
        if max_frames is not None and len(frames) > max_frames:
            pick = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
            frames, kp, angles, matrices = frames[pick], kp[pick], angles[pick], matrices[pick]
        shapes = np.stack([local_shape(k, a) for k, a in zip(kp, angles, strict=True)])
        clips.append(Clip(item, frames, kp, angles.astype(np.float32), shapes.mean(0), matrices))
    return clips


def _jitter(rng: np.random.Generator, amount: float) -> tuple[np.ndarray, np.ndarray]:
    gain = 1 + rng.uniform(-amount, amount, 3)
    bias = rng.uniform(-amount, amount, 3) * 0.5
    return gain.astype(np.float32), bias.astype(np.float32)


class PairSampler:
    def __init__(self, clips: list[Clip], config: GeneratorConfig, train: TrainConfig) -> None:
        self.config = config
        self.train = train
        self.videos = [c for c in clips if len(c.frames) > 1]
        self.photos = [c for c in clips if len(c.frames) == 1]
        if not self.videos and not self.photos:
            raise InputError("no training clips")
        sizes = np.array([len(c.frames) for c in self.videos], np.float64)
        # Long clips count more, but sub-linearly: a 1500-frame clip of one person
        # should not drown the 60-frame clips of others.
        self.weights = np.sqrt(sizes) / np.sqrt(sizes).sum() if len(sizes) else sizes
        self.perm = kpt.mirror_permutation()

    def _photo_pair(self, rng: np.random.Generator):
        """A photo against a randomly warped copy of itself (both warped, so the
        model never learns that sources are undistorted)."""
        from likeness.datasets.synthetic_motion import random_warp

        clip = self.photos[rng.integers(len(self.photos))]
        size = clip.frames.shape[1]
        image, kp = clip.frames[0], clip.keypoints[0]
        px = kpt.to_pixels(kp, size)
        a_img, a_px = random_warp(image, px, rng, strength=0.5)
        b_img, b_px = random_warp(image, px, rng, strength=1.0)
        valid = np.ones((size, size), np.float32)
        return (
            a_img,
            kpt.normalise(a_px, size),
            b_img,
            kpt.normalise(b_px, size),
            clip.angles[0],
            clip.canonical,
            valid,
        )

    def _video_pair(self, rng: np.random.Generator):
        """Two frames of one clip, the driving frame seen through the source frame's
        crop window: the background stays put and the head moves inside the window,
        as at inference, where the photo's crop is fixed."""
        clip = self.videos[rng.choice(len(self.videos), p=self.weights)]
        n = len(clip.frames)
        i, j = rng.integers(n), rng.integers(n)
        if rng.random() < self.train.still_fraction:
            j = i
        size = clip.frames.shape[1]
        to_source = clip.matrices[i] @ np.vstack([invert_affine(clip.matrices[j]), [0, 0, 1]])
        driving = cv2.warpAffine(
            clip.frames[j],
            to_source,
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        valid = cv2.warpAffine(
            np.ones((size, size), np.float32),
            to_source,
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderValue=0.0,
        )
        kp_d = kpt.normalise(
            apply_affine_3d(to_source, kpt.to_pixels(clip.keypoints[j], size)), size
        )
        return (
            clip.frames[i],
            clip.keypoints[i],
            driving,
            kp_d,
            clip.angles[j],
            clip.canonical,
            valid,
        )

    def batch(self, step: int, batch_size: int | None = None, seed: int | None = None) -> Batch:
        b = batch_size or self.train.batch_size
        rng = np.random.default_rng([self.train.seed if seed is None else seed, step])
        cols: dict[str, list] = {k: [] for k in Batch.__dataclass_fields__}
        for _ in range(b):
            use_photo = self.photos and (
                not self.videos or rng.random() < self.train.photo_fraction
            )
            src, kp_s, drv, kp_d, ang, canon, valid = (
                self._photo_pair(rng) if use_photo else self._video_pair(rng)
            )
            ang = np.asarray(ang, np.float32).copy()
            canon = canon.copy()
            if rng.random() < self.train.flip:
                src, drv, valid = src[:, ::-1], drv[:, ::-1], valid[:, ::-1]
                kp_s, kp_d = _flip(kp_s, self.perm), _flip(kp_d, self.perm)
                canon = _flip(canon, self.perm)
                ang[0], ang[2] = -ang[0], -ang[2]
            gain, bias = _jitter(rng, self.train.colour_jitter)
            for name, img in (("source", src), ("driving", drv)):
                x = np.ascontiguousarray(img, np.float32) / 255.0 * gain + bias
                cols[name].append(np.clip(x, 0, 1).transpose(2, 0, 1))
            cols["valid"].append(np.ascontiguousarray(valid)[None])
            cols["kp_source"].append(kp_s)
            cols["kp_driving"].append(kp_d)
            cols["angles_driving"].append(ang)
            cols["canonical_driving"].append(canon)
            # Retargeting targets: driving moved into the source's head frame, so only
            # the expression difference is left.
            aligned = motion.head_fit(kp_d, kp_s)(kp_d.astype(np.float64)).astype(np.float32)
            delta = aligned - kp_s
            cols["eye_delta"].append(delta)
            cols["lip_delta"].append(delta)
            cols["eyes"].append(np.stack([kpt.eye_openness(kp_s), kpt.eye_openness(aligned)]))
            cols["lips"].append(np.stack([kpt.mouth_shape(kp_s), kpt.mouth_shape(aligned)]))
        return Batch(
            *(
                torch.from_numpy(np.stack(cols[k]).astype(np.float32))
                for k in Batch.__dataclass_fields__
            )
        )


def _flip(kp: np.ndarray, perm: np.ndarray) -> np.ndarray:
    out = kp[perm].copy()
    out[:, 0] = -out[:, 0]
    return out


def grid_image(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Tile equal-sized uint8 RGB images into one picture (rows of columns)."""
    lines = [np.concatenate(r, axis=1) for r in rows]
    width = max(line.shape[1] for line in lines)
    lines = [
        cv2.copyMakeBorder(line, 0, 0, 0, width - line.shape[1], cv2.BORDER_CONSTANT)
        for line in lines
    ]
    return np.concatenate(lines, axis=0)
