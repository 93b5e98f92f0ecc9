"""Generator configuration: one dataclass for the networks, one for training.

Shipped weights carry their `GeneratorConfig` as JSON beside the safetensors, and
loading reads it first, so code and weights cannot drift apart silently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from likeness.config import JsonConfig
from likeness.errors import InputError
from likeness.generator.eye_detail import EyeDetailConfig
from likeness.generator.gaze import GazeConfig
from likeness.generator.keypoints import N_KEYPOINTS


@dataclass(frozen=True)
class GeneratorConfig(JsonConfig):
    config_name = "generator config"

    name: str = "likeness-portrait-s"
    image_size: int = 128  # the networks see the crop at this size
    output_size: int = 256  # the source is warped and the result composed at this size
    num_keypoints: int = N_KEYPOINTS
    # Appearance encoder: stem, then two stride-2 stages -> features at image_size / 4.
    encoder_channels: tuple[int, int, int] = (32, 64, 96)
    encoder_blocks: int = 1
    volume_channels: int = 16
    volume_depth: int = 8
    depth_scale: float = 2.0  # keypoint depth (crop units) -> volume depth coordinates
    # Dense motion U-Net at the feature resolution.
    motion_channels: tuple[int, int, int] = (64, 96, 128)
    heatmap_sigma: float = 0.06  # keypoint heatmap width, crop units ([-1, 1] wide)
    tps_regularization: float = 0.01
    decoder_channels: tuple[int, int, int] = (96, 48, 24)
    decoder_blocks: int = 1
    # The decoder works at image_size; above that band the output takes the warped
    # source's own detail, so an L1-trained decoder cannot blur the face.
    detail_from_warp: bool = True
    # Motion extractor: a timm backbone trained from scratch.
    extractor_backbone: str = "mobilenetv3_small_100"
    extractor_size: int = 128
    pose_bins: int = 66  # 3-degree bins over [-99, 99)
    retarget_hidden: int = 256
    # After the render, each iris slides inside its eye to where the driving iris
    # keypoints put it (`gaze.retarget_gaze`); no network, no weights.
    gaze: GazeConfig = field(default_factory=GazeConfig)
    # Before that, the eyes take the photo's iris, sclera and lash structure above the
    # render's local mean (`eye_detail.restore_eyes`); no network, no weights.
    eye_detail: EyeDetailConfig = field(default_factory=EyeDetailConfig)

    def validate(self) -> None:
        if self.num_keypoints != N_KEYPOINTS:
            raise InputError(
                f"weights use {self.num_keypoints} keypoints, this likeness uses {N_KEYPOINTS}"
            )


PRESETS: dict[str, GeneratorConfig] = {
    # The shipped CPU-trainable model.
    "small": GeneratorConfig(),
    # For tests and smoke runs: trains in a minute on a laptop CPU.
    "tiny": GeneratorConfig(
        name="likeness-portrait-tiny",
        image_size=64,
        output_size=64,
        encoder_channels=(8, 16, 24),
        encoder_blocks=1,
        volume_channels=4,
        volume_depth=4,
        motion_channels=(16, 24, 32),
        decoder_channels=(24, 16, 8),
        decoder_blocks=1,
        extractor_backbone="mobilenetv3_small_050",
        extractor_size=64,
        retarget_hidden=64,
    ),
    # A larger model for a GPU: 256 px features, twice the width.
    "base": GeneratorConfig(
        name="likeness-portrait-b",
        image_size=256,
        output_size=256,
        encoder_channels=(48, 96, 128),
        volume_channels=32,
        volume_depth=16,
        motion_channels=(96, 128, 192),
        decoder_channels=(128, 96, 48),
        encoder_blocks=2,
        decoder_blocks=3,
        extractor_backbone="resnet18d",
        extractor_size=192,
    ),
}


def preset(name: str) -> GeneratorConfig:
    if name not in PRESETS:
        raise InputError(f"unknown generator preset {name!r}: use {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class LossWeights(JsonConfig):
    config_name = "loss weights"

    l1: float = 1.0
    pyramid: float = 1.0  # L1 at 1/2, 1/4, 1/8
    ssim: float = 0.5
    regions: float = 2.0  # extra L1 inside eye and mouth boxes
    mouth: float = 0.0  # extra L1 inside the mouth box, on top of `regions`
    iris: float = 0.0  # render's iris position (losses.iris_loss) against the target's
    # The render's luminance across the mouth against the target's
    # (`losses.mouth_profile_loss`). Measured 2026-12-08: the shipped recipe (decoder
    # frozen, mouth 2, iris 1, gan 0.05, feature matching 0.5, 400 steps, lr 1e-4, seed
    # 5) with it at 4 and without: the term itself 0.0253 both (steps 75-400), and on 8
    # test clips x 40 consecutive frames (`bench.eyes_mouth --consecutive`) mouth-open
    # correlation 0.775 / 0.771 (shipped 0.771), gain 0.562 / 0.568, PSNR 26.64 /
    # 26.65: no effect. Off.
    mouth_profile: float = 0.0
    gan: float = 0.0  # patch GAN (with feature matching); off until reconstruction converges
    feature_matching: float = 0.0


@dataclass(frozen=True)
class ExtractorAugment(JsonConfig):
    """Image damage and geometry per view for TrainConfig.mode "extractor"
    (`extractor_data`); probabilities unless said otherwise."""

    config_name = "extractor augmentation"

    rotation: float = 12.0  # degrees, uniform +-; the roll target moves with it
    scale: float = 0.1  # relative, uniform +-
    shift: float = 0.06  # of the crop side, uniform +- in x and y
    colour: float = 0.2  # gain and bias amplitude per channel
    grey: float = 0.05
    blur: float = 0.3  # Gaussian, sigma 0.4-1.6 px at 256
    noise: float = 0.2  # Gaussian, sigma up to 4 grey levels
    lowres: float = 0.2  # down to 1/4-1/2 and back up
    jpeg: float = 0.3  # quality 25-90

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            if not 0 <= getattr(self, f.name) <= (90 if f.name == "rotation" else 1):
                raise InputError(f"{self.config_name} {f.name} out of range")


@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    config_name = "training config"

    preset: str = "small"
    batch_size: int = 8
    lr: float = 2e-4
    extractor_lr: float = 5e-4
    weight_decay: float = 1e-4
    steps: int = 20000  # total, across resumed chunks
    warmup: int = 200
    checkpoint_every: int = 500
    sample_every: int = 500  # grid PNG with each checkpoint
    log_every: int = 25
    seed: int = 0
    photo_fraction: float = 0.15  # pairs made from photos by synthetic motion
    # Video pairs whose driving frame is the source frame itself: a driver that does not
    # move must give back the source (random pairs almost never teach that).
    still_fraction: float = 0.1
    flip: float = 0.5
    colour_jitter: float = 0.1
    extractor_weight: float = 1.0  # the extractor trains beside the renderer, own loss
    retarget_weight: float = 1.0
    gan_start: int = 0  # step at which the GAN loss switches on (when weights.gan > 0)
    losses: LossWeights = field(default_factory=LossWeights)
    num_workers: int = 0
    num_threads: int = 0  # torch CPU threads; 0 leaves torch's default
    max_frames_per_clip: int | None = None  # cap decoded frames (tests, small machines)
    # "joint": renderer and extractor train side by side (the extractor on its own loss).
    # "extractor": only the motion extractor trains, on single frames in their own
    # aligned crops (as `animate --keypoints learned` feeds it) against the mesh
    # keypoints, with the equivariance loss; the renderer and the retargeting MLPs are
    # frozen and not run (a step costs the extractor alone).
    mode: str = "joint"
    # A generator weights folder (config.json + model.safetensors) a new run starts
    # from: its config replaces the preset's and every network loads its weights.
    init: str = ""
    # Parameter-name prefixes (e.g. "renderer.decoder") that keep their loaded weights:
    # a fine-tune of the motion and warp alone leaves the decoder's look as it was.
    freeze: tuple[str, ...] = ()
    # A new run's extractor input size (0: the model config's); the weights carry it.
    extractor_size: int = 0
    augment: ExtractorAugment = field(default_factory=ExtractorAugment)  # mode "extractor"
    equivariance: float = 1.0  # mode "extractor": weight of the two-view agreement
    expression_weight: float = 3.0  # mode "extractor": lids, lips, irises in the keypoint L1

    def validate(self) -> None:
        if self.mode not in ("joint", "extractor"):
            raise InputError(f"training mode must be joint or extractor, got {self.mode!r}")
        if self.extractor_size and not 32 <= self.extractor_size <= 512:
            raise InputError(f"extractor_size must be 0 or 32-512, got {self.extractor_size}")
