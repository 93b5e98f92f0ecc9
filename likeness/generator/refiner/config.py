"""Refiner configuration: the network and sampler (shipped beside the weights) and the
training run."""

from __future__ import annotations

from dataclasses import dataclass

from likeness.config import JsonConfig
from likeness.errors import InputError

PREDICTIONS = ("v_prediction", "epsilon", "sample")


@dataclass(frozen=True)
class RefinerConfig(JsonConfig):
    config_name = "refiner config"

    name: str = "likeness-refiner-s"
    # UNet2DModel on 4x4 pixel blocks (pixel unshuffle: 7 channels in per pixel, the
    # render RGB, face mask and noisy residual RGB, become 112 per block): one UNet step
    # on a 256 px render took 2.6 s at full resolution with (32, 64, 96, 128) channels
    # and 0.46 s on blocks with (64, 96, 128), on this loaded 2-core CPU; the target is
    # >= 1 fps end to end. (32, 64, 96) halves it again (CPU time of one training step
    # of 8 crops of 128 px: 0.41 s against 0.86 s; of one inference step on a 192 px
    # face box: 58 ms against 106 ms), which is what an hour of a shared CPU can train.
    # Plain conv blocks, no attention, for the same reason.
    unshuffle: int = 4
    block_out_channels: tuple[int, ...] = (32, 64, 96)
    layers_per_block: int = 1
    norm_num_groups: int = 8
    # The residual (truth - render, in [0, 1] units) is multiplied by this before noise
    # is added, so that it has about unit scale as the scheduler's betas assume.
    residual_scale: float = 8.0
    # The network predicts the (scaled) residual itself: a v-prediction run with the
    # same data, 150 steps in, refined the val pairs to face L1 0.0554 against the
    # unrefined 0.0327, its 2-step samples full of leftover noise (eye sharpness 8x the
    # truth's); predicting the sample, the last DDIM step returns the network's own
    # estimate, with no noise left over to add.
    prediction_type: str = "sample"
    train_timesteps: int = 1000
    steps: int = 2  # DDIM steps at inference (trailing spacing; zero terminal SNR)
    # The sampled residual is added times this (chosen on the val split by
    # `refiner.export`, with the steps): 1 trusts the network fully.
    strength: float = 1.0
    # Face mask: the keypoints' hull grown by `mask_grow` and feathered by `mask_feather`
    # (fractions of the crop side); outside it the render is left as it is.
    mask_grow: float = 0.02
    mask_feather: float = 0.03
    # Also read the driving keypoints' eye apertures and inner-lip opening (two more
    # channels per pixel, `mask.apertures`): the render alone cannot tell a mouth it
    # left shut from one the driver shut.
    apertures: bool = False

    @property
    def guide_channels(self) -> int:
        """Channels beside the render and the noisy residual: the face mask, and the
        apertures when asked."""
        return 3 if self.apertures else 1

    def validate(self) -> None:
        if self.prediction_type not in PREDICTIONS:
            raise self.config_error(
                f"refiner prediction_type {self.prediction_type!r}: use {', '.join(PREDICTIONS)}"
            )
        if not 1 <= self.steps <= 50:
            raise self.config_error(f"refiner steps must be 1-50, got {self.steps}")
        if self.unshuffle not in (1, 2, 4, 8):
            raise self.config_error(f"refiner unshuffle must be 1, 2, 4 or 8, got {self.unshuffle}")
        if not 0.0 <= self.strength <= 2.0:
            raise self.config_error(f"refiner strength must be 0-2, got {self.strength}")
        if len(self.block_out_channels) < 2:
            raise self.config_error("refiner block_out_channels needs two levels or more")
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise self.config_error("refiner block_out_channels must divide by norm_num_groups")


PRESETS: dict[str, RefinerConfig] = {
    "small": RefinerConfig(),
    # The same network reading the eye and mouth apertures too.
    "apertures": RefinerConfig(name="likeness-refiner-a", apertures=True),
    # Tests and smoke runs: a few thousand parameters, trains in seconds.
    "tiny": RefinerConfig(
        name="likeness-refiner-tiny",
        unshuffle=2,
        block_out_channels=(8, 16),
        norm_num_groups=4,
    ),
}


def preset(name: str) -> RefinerConfig:
    if name not in PRESETS:
        raise InputError(f"unknown refiner preset {name!r}: use {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class RefinerTrainConfig(JsonConfig):
    config_name = "refiner training config"

    preset: str = "small"
    crop: int = 128  # training crops (px of the 256 px render), centred near the face
    batch_size: int = 8
    lr: float = 4e-4
    weight_decay: float = 1e-4
    steps: int = 20000  # total, across resumed chunks
    warmup: int = 100
    checkpoint_every: int = 200
    log_every: int = 25
    seed: int = 0
    flip: float = 0.5
    region_weight: float = 2.0  # extra loss weight inside the eye and mouth boxes
    # l1 on the prediction: the figure the refiner is judged by, and a median is less
    # blurred than the mean an l2 loss pulls towards; l2 is the textbook objective.
    loss: str = "l1"
    val_pairs: int = 24  # held-out (val split) pairs refined at each checkpoint
    num_threads: int = 0  # torch CPU threads; 0 leaves torch's default

    def validate(self) -> None:
        if self.loss not in ("l1", "l2"):
            raise self.config_error(f"refiner loss must be l1 or l2, got {self.loss!r}")
