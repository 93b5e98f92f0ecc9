"""Detector configuration: one dataclass for the network, one for training.

Shipped weights carry their `DetectorConfig` as JSON beside the safetensors (and the
calibration beside both), and loading reads the config first, so code and weights
cannot drift apart silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from likeness.config import JsonConfig
from likeness.detector.scoring import ScoreConfig
from likeness.errors import InputError


@dataclass(frozen=True)
class DetectorConfig(JsonConfig):
    """Field defaults never change meaning: a config.json written before a field
    existed must still build the network its weights were trained as (new fields
    default to the old behaviour; presets carry the choices)."""

    config_name: ClassVar[str] = "detector config"

    name: str = "likeness-detector"
    # A timm model name, always built with pretrained=False (no download, no foreign weights).
    backbone: str = "resnet10t"
    # Stage widths for timm ResNets; None: the model's own.
    channels: tuple[int, ...] | None = None
    # The aligned 256 px crop (FFHQ framing, as packs and `align_face` cut it) is resized
    # to this; the whole crop is kept because paste-back seams lie near its border.
    input_size: int = 160
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    # A dense head that predicts where the crop was changed (network.MaskHead).
    mask_head: bool = False

    def validate(self) -> None:
        # A hand-edited file may hold any JSON type here; only an int is a size.
        if type(self.input_size) is not int or not 32 <= self.input_size <= 512:
            raise InputError(f"detector input_size must be 32-512, got {self.input_size}")


PRESETS: dict[str, DetectorConfig] = {
    # Tests and smoke runs: timm's own 0.37 M-parameter test ResNet, which (unlike a
    # MobileNet this small) learns self-blended fakes within ~100 steps on one thread.
    "tiny": DetectorConfig(
        name="likeness-detector-tiny", backbone="test_resnet", input_size=64, mask_head=True
    ),
    # The CPU-trainable model: ResNet-10-T at 3/4 width (ImageNet's widths are for 1000
    # classes; ours must also fit 8 MiB), 2.8 M parameters, 5.3 MiB in float16. From
    # scratch on self-blends, plain ResNets (BatchNorm, ReLU) started learning within a
    # few hundred steps where MobileNetV3 and RegNetY did not (val AUC 0.65 vs 0.48 and
    # 0.55 after 200-400 steps at 128 px, one CPU thread).
    "small": DetectorConfig(
        name="likeness-detector-s",
        backbone="resnet10t",
        channels=(48, 96, 192, 384),
        input_size=160,
        drop_rate=0.2,
        mask_head=True,
    ),
    # For a GPU: ResNet-18-D at 9/16 width, 224 px, 3.6 M parameters, 6.8 MiB.
    "base": DetectorConfig(
        name="likeness-detector-b",
        backbone="resnet18d",
        channels=(36, 72, 144, 288),
        input_size=224,
        drop_rate=0.3,
        drop_path_rate=0.05,
        mask_head=True,
    ),
}


def preset(name: str) -> DetectorConfig:
    if name not in PRESETS:
        raise InputError(f"unknown detector preset {name!r}: use {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class AugmentConfig(JsonConfig):
    """Training-time changes, applied alike to real and fake crops (each with its own
    probability), so that none of them tells the classes apart."""

    flip: float = 0.5
    crop: float = 0.06  # random crop: up to this fraction off each side, then resized back
    colour: float = 0.6  # probability of a brightness/contrast/saturation/hue change
    blur: float = 0.15  # probability of a Gaussian blur (sigma 0.4-1.6 px at 256 px)
    resize: float = 0.25  # probability of a down-and-up resize (to 35-90 %)
    jpeg: float = 0.35  # probability of JPEG re-encoding at quality 35-95
    h264: float = 0.15  # probability of H.264 re-encoding at CRF 20-36 (needs PyAV)
    noise: float = 0.1  # probability of Gaussian noise (sigma 1-5 levels)
    # The kinds of real footage v3 flagged in the test split (benchmarks/detector.json,
    # real_fpr_by_kind: a webcam clip 0.91, a GRID MPEG-1 speaker 0.87, a grayscale photo
    # 0.74 against the 0.731 threshold): grey crops, and the whole crop through a
    # low-quality chain (down to 20-45 %, sensor noise, JPEG 15-40 at that size, back up),
    # the look of small, heavily compressed faces upsampled into the 256 px crop. Both
    # classes alike, so neither tells real from fake; a lowres fake keeps its seam.
    grayscale: float = 0.0  # probability of turning the crop grey
    degrade: float = 0.0  # probability of the low-quality chain
    # Probability of an unsharp mask (sigma 0.6-1.5 px at 256 px, amount 0.5-1.5), both
    # classes alike. Why: detectors trained without reenactment score a crop higher the
    # more high-frequency energy its face holds (correlation 0.48 on real test crops),
    # and this generator's faces hold less than real ones (Laplacian variance 0.62x), so
    # they rank below real footage (held-out AUC 0.537 at 160 px, 0.330 at 256). Off by
    # default: at 0.3 the whole leave-one-family-out table (benchmarks/
    # detector_lofo_sharpen) held its kinds out at a mean AUC of 0.606 against 0.626
    # without, and two runs of one recipe and seed differ by more than that (the model
    # card, 2026-12-02). Drawn only when above 0, so runs without it keep their stream.
    sharpen: float = 0.0
    # Probability that a *real* crop is softened (Gaussian blur, sigma 0.5-1.3 px at 256
    # px) before the common chain: the one change not applied alike, because the classes
    # differ there by how the fakes are made. Most fake families hold less fine detail
    # than real crops (Laplacian variance of the face: this generator 0.62x, self-blends
    # and low-res faces 0.6x, swaps and lip-sync 0.8-0.9x; the card, 2026-12-02), so a
    # detector can learn "smooth = fake", which flags soft real footage (a webcam
    # interview frame scores 0.94 with v3) and passes crisp fakes. Softening some reals
    # makes smoothness say less about the label. Drawn only when above 0. Measured
    # 2026-12-08 and left off: in training batches "smoother = fake" alone separates
    # the classes at AUC 0.608 (0.5: 0.515), but a 600-step fine-tune of the 12-07
    # from-scratch run with 0.5 against the same without it (lr 2e-4, one thread each)
    # lost validation video AUC at every checkpoint (0.826 -> 0.726 against 0.847 ->
    # 0.830) and test AUC on every family (all 0.792 -> 0.738), and the real test
    # crops' score still rose with their detail (correlation 0.145 against 0.141;
    # v3 0.09): these detectors call crisp real faces fake, not soft ones.
    real_smooth: float = 0.0


@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    config_name: ClassVar[str] = "detector training config"

    preset: str = "small"
    # Input resolution of the network, overriding the preset's (0 keeps it). The crop is
    # 256 px and the small preset reads it at 160, which drops the highest frequencies a
    # blend or a renderer leaves; chosen by what transfers (leave-one-family-out,
    # `benchmarks/detector_lofo_256`, 1,200 steps a run): at 256 px reenactment held out
    # fell 0.537 -> 0.330 and the reference run lost on four kinds of five, so 160 stays.
    input_size: int = 0
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    steps: int = 6000  # total, across resumed chunks
    warmup: int = 200
    checkpoint_every: int = 250
    log_every: int = 25
    seed: int = 0
    # Share of each batch that is fake; the fakes' share that is a fresh self-blend of a
    # real training crop made on the fly (SBI's recipe: endless new blends), the rest
    # drawn from the stored fakes.
    fake_fraction: float = 0.5
    online_sbi: float = 0.35
    # Share of the online fakes made from a real crop that is also in the same batch
    # (SBI's pairing): the pair differs only by the manipulation, so identity, footage,
    # codec and resolution cannot tell the classes apart. Unpaired, the detector learnt
    # the training people and their footage (it flagged unseen GRID MPEG-1 speakers).
    paired: float = 0.0
    label_smoothing: float = 0.05
    augment: AugmentConfig = AugmentConfig()
    val_max: int = 2000  # validation crops scored at each checkpoint (all splits' val)
    calibration: str = "platt"  # platt | isotonic
    target_fpr: float = 0.01  # on real validation videos, for the threshold
    calibration_chunk: int = 16  # real val videos are also cut into runs of this many crops
    # Smaller sizes (a share of the crop's side) at which the real validation videos are
    # also scored for the threshold: its false-positive quantile is then taken over them
    # all and over the videos as they are, so a small face (`data.shrunk`) is flagged no
    # more often than a large one. Blurrier real faces score higher, the dense head's
    # evidence most. Measured on v3, 2026-12-08 (zero-step recalibrations; test split,
    # 28 real videos; `likeness bench detector`): logit + 2 x evidence calibrated as
    # they are: 2 real test videos flagged as they are, 8 at half size; with 0.5: 1 and
    # 2, but the threshold 0.62 -> 0.88 catches 25 % of fake test videos instead of 54 %
    # and the scan test's stripped clip 11 of 12 keys (0.865 once); the logit alone with
    # 0.5: threshold 0.731 -> 0.768, 3 -> 2 flagged, 4 -> 3 at half size, caught 41 % ->
    # 35 %. Off by default: the shipped v3 was calibrated without it.
    threshold_scales: tuple[float, ...] = ()
    num_threads: int = 0  # torch CPU threads; 0 leaves torch's default
    num_workers: int = 0  # threads making batches (decode, self-blend, augment)
    # Worker processes making whole batches ahead (`detector.prefetch`; 0 or 1: in the
    # trainer's process). For a GPU, whose steps outrun one CPU core's ~50 crops a
    # second; the batches are the same either way.
    batch_processes: int = 0
    # Dense head: weight of its per-cell BCE against the fakes' masks (reals: all zero).
    mask_weight: float = 1.0
    # Share of the online fakes made by each pure family (fresh every batch, from the
    # real training crops' landmarks; swap and lipsync take another person as donor).
    online_families: tuple[str, ...] = ("sbi", "swap", "lipsync", "lowres")
    # Families left out of training altogether (stored and online): leave-one-out runs.
    exclude_families: tuple[str, ...] = ()
    # A detector weights folder to start from (its backbone; a new head starts fresh).
    init: str = ""
    # Decay per step of a moving average of the weights (training.WeightAverage), which
    # is then what is validated, calibrated and exported; 0: the trained weights as they
    # are. Why: fine-tunes of v3 lost test video AUC as they went (d7, lr 3e-4, 200
    # steps: 0.787 -> 0.725), but the halfway mix of v3 and that fine-tune scored 0.811,
    # better than either on every family (test split, 2026-12-01).
    ema: float = 0.0
    # How a crop's score is made from the network's outputs, for validation, model
    # selection and calibration (and so for `scan`, which reads it from the weights'
    # calibration.json). Off (the logit alone) by default: validation's choice, the
    # logit plus twice the dense head's evidence (`detector.scoring`), raised v3's
    # video AUC on every family but flagged more real videos at half size and lowered
    # TPR at 1 % FPR at the threshold calibrated as it is; a run turns it on with
    # `{"score": {"mask_weight": 2.0}}`.
    score: ScoreConfig = field(default_factory=ScoreConfig)

    @classmethod
    def from_dict(cls, data: dict, what: str | None = None) -> TrainConfig:
        data = dict(data) if isinstance(data, dict) else data
        for name in ("online_families", "exclude_families"):
            if isinstance(data, dict) and isinstance(data.get(name), str):
                # --set exclude_families=swap,lowres
                data[name] = [v.strip() for v in data[name].split(",") if v.strip()]
        return super().from_dict(data, what)

    def model(self) -> DetectorConfig:
        """The network a new run of this config builds: its preset, with `input_size`
        in place of the preset's when set."""
        model = preset(self.preset)
        return replace(model, input_size=self.input_size) if self.input_size else model

    def validate(self) -> None:
        self.model().validate()
        if self.calibration not in ("platt", "isotonic"):
            raise InputError(f"calibration must be platt or isotonic, not {self.calibration!r}")
        if not 0 < self.target_fpr < 1:
            raise InputError(f"target_fpr must be between 0 and 1, got {self.target_fpr}")
        if not 0 < self.fake_fraction < 1:
            raise InputError(f"fake_fraction must be between 0 and 1, got {self.fake_fraction}")
        if not 0 <= self.ema < 1:
            raise InputError(f"ema must be in [0, 1), got {self.ema}")
        if not 0 <= self.batch_processes <= 256:
            raise InputError(f"batch_processes must be 0-256, got {self.batch_processes}")
        scales = self.threshold_scales
        if any(type(v) not in (int, float) or not 0 < v < 1 for v in scales):
            raise InputError(f"threshold_scales must be numbers in (0, 1), got {list(scales)}")
        _check_families(self)


def _check_families(config: TrainConfig) -> None:
    from likeness.datasets.fakes_format import FAMILIES
    from likeness.datasets.families import FAMILY_NAMES

    pure = [f for f in FAMILY_NAMES if f != "reenact"]
    bad = [f for f in config.online_families if f not in pure]
    if bad:
        raise InputError(f"online_families: unknown {bad}; use {', '.join(pure)}")
    known = {*FAMILIES, *FAMILY_NAMES}
    bad = [f for f in config.exclude_families if f not in known]
    if bad:
        raise InputError(f"exclude_families: unknown {bad}; use {', '.join(sorted(known))}")
