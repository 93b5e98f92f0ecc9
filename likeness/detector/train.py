"""Detector training: real vs fake aligned face crops, then calibration on validation.

    likeness train detector --data FAKES --out RUN [--resume] [--minutes N]

RUN holds `checkpoint.pt` (everything needed to continue exactly), `loss.csv` (training
loss and, at each checkpoint, validation loss, AUC overall and per fake family, the
threshold) and `weights/` (the exportable detector: config.json, model.safetensors and
calibration.json, refreshed at every checkpoint). Calibration and the threshold come
from the validation split (identities never trained on): Platt or isotonic on crop
logits, then the threshold at `target_fpr` on real validation videos (each cut into
runs of `calibration_chunk` crops, pooled as `likeness scan` pools them), scored as
they are and at each of `threshold_scales` (smaller faces).
Imports only torch, numpy, OpenCV, timm, safetensors and scikit-learn.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from likeness import training
from likeness.datasets.fakes_format import FAMILIES, FakesSet, Sample, family_group
from likeness.detector import metrics
from likeness.detector.calibrate import (
    Calibration,
    fit_calibration,
    fitted_threshold_at_fpr,
    threshold_at_fpr,
)
from likeness.detector.config import DetectorConfig, TrainConfig, preset
from likeness.detector.data import BatchSampler, evaluation_images, subsample
from likeness.detector.model import Decision, save_weights
from likeness.detector.network import FaceClassifier
from likeness.detector.pooling import PoolingConfig, pool_scores
from likeness.detector.prefetch import BatchPrefetcher
from likeness.detector.scoring import crop_scores, uses_maps
from likeness.errors import InputError
from likeness.jsonio import json_safe
from likeness.tensors import to_tensor
from likeness.training import RunState, WeightAverage, open_run, run_chunk, save_checkpoint
from likeness.weights_io import write_text_atomic

CSV_FIELDS = (
    "step",
    "time_s",
    "loss",
    "acc",
    "lr",
    "val_loss",
    "val_auc",
    "val_ap",
    "val_auc_generator_self",
    "val_auc_generator_cross",
    "val_auc_sbi",
    "val_auc_swap",
    "val_auc_lipsync",
    "val_auc_lowres",
    "mask_loss",
    "val_video_auc",
    "threshold",
    "val_video_tpr",
)


def _lr(train: TrainConfig, step: int) -> float:
    return training.warmup_cosine(step, train.lr, train.warmup, train.steps, floor=0.02)


def _mask_loss(mask_logits: torch.Tensor, masks: torch.Tensor, known: torch.Tensor):
    """Per-cell BCE against the masks, area-averaged to the head's grid, over the
    crops whose mask is known. Cells are weighted so that the changed area and the rest
    count alike in each fake (a mask covers a fifth of a crop at most, and an
    unweighted loss is won by predicting nothing)."""
    target = F.adaptive_avg_pool2d(masks[:, None], mask_logits.shape[-2:])[:, 0]
    changed = (target > 0.05).float()
    share = changed.mean(dim=(1, 2), keepdim=True).clamp(0.05, 0.95)
    weight = torch.where(changed > 0, 0.5 / share, 0.5 / (1 - share))
    cell = F.binary_cross_entropy_with_logits(mask_logits, target, reduction="none")
    per_crop = (cell * weight).mean(dim=(1, 2))
    return (per_crop * known).sum() / known.sum().clamp(min=1)


def init_backbone(network: FaceClassifier, folder: Path) -> None:
    """Start from another detector's weights: every tensor whose name and shape match
    (the backbone and classifier of an earlier model); a new mask head starts fresh."""
    from safetensors.torch import load_file

    from likeness.weights_io import WEIGHTS_NAME

    path = folder / WEIGHTS_NAME if folder.is_dir() else folder
    try:
        state = load_file(str(path))
    except Exception as err:  # SafetensorError, OSError
        raise InputError(f"--set init: cannot read detector weights {path}: {err}") from None
    own = network.state_dict()
    fits = {k: v.float() for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fits:
        raise InputError(f"--set init: {path} shares no tensor with this detector")
    network.load_state_dict(fits, strict=False)


def _chunks(samples: list[Sample], size: int) -> list[list[int]]:
    """Indices of `samples` grouped by video, in frame order, cut into runs of `size`."""
    by_video: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_video.setdefault(s.video, []).append(i)
    out = []
    for idx in by_video.values():
        idx.sort(key=lambda i: samples[i].frame)
        out += [idx[k : k + size] for k in range(0, len(idx), size)]
    return out


class Trainer:
    def __init__(
        self,
        data_path: Path,
        out: Path,
        train: TrainConfig | None = None,
        *,
        overrides: dict | None = None,
        device: str = "cpu",
        resume: bool = False,
    ) -> None:
        """A new run from `train` with `overrides`; or, with `resume`, the run in `out`
        with its own config and `overrides` on top."""
        self.out = Path(out)
        self.device = torch.device(device)
        ckpt, train, config = open_run(
            self.out, resume, train, overrides, TrainConfig, DetectorConfig, preset
        )
        if ckpt is None:
            config = train.model()  # the preset, with this run's input_size
        self.train, self.config = train, config
        if train.num_threads > 0:
            torch.set_num_threads(train.num_threads)
        torch.manual_seed(train.seed)
        self.data = FakesSet.open(data_path)
        self.sampler = BatchSampler(self.data, config, train)
        self._prefetch: BatchPrefetcher | None = None
        if train.batch_processes > 1:
            self._prefetch = BatchPrefetcher(self.data.root, config, train, train.batch_processes)
        # A left-out family stays out of model selection and calibration too.
        excluded = set(train.exclude_families)
        val = [
            s
            for s in self.data.select("val")
            if s.family not in excluded and s.group not in excluded
        ]
        self.val = subsample(val, train.val_max, seed=train.seed)
        self._val_images: np.ndarray | None = None
        self._small_val_images: dict[float, np.ndarray] = {}
        self.network = FaceClassifier(config).to(self.device)
        if train.init and ckpt is None:
            init_backbone(self.network, Path(train.init))
        self.opt = torch.optim.AdamW(
            self.network.parameters(), lr=train.lr, weight_decay=train.weight_decay
        )
        self.state = RunState()
        self.last_validation: dict = {}
        self.decision: Decision | None = None
        self.calibration_note = ""
        if ckpt is not None:
            try:
                self.network.load_state_dict(ckpt["network"])
                self.opt.load_state_dict(ckpt["opt"])
            except (RuntimeError, ValueError, KeyError):
                raise InputError(
                    f"--resume: the checkpoint in {self.out} does not fit this detector "
                    f"({config.backbone}, as its config says): start a new run"
                ) from None
            self.state = RunState(**ckpt["state"])
        # After the checkpoint: a resumed run's average goes on from where it was (or,
        # switched on at resume, starts from the weights it resumes).
        self.average = WeightAverage(self.network, train.ema) if train.ema > 0 else None
        if self.average is not None and ckpt is not None and "average" in ckpt:
            self.average.network.load_state_dict(ckpt["average"])
        self.amp = self.device.type == "cuda"

    # ------------------------------------------------------------ steps

    def step(self) -> dict[str, float]:
        tr = self.train
        step = self.state.step
        torch.manual_seed(tr.seed * 1_000_003 + step)  # dropout: same on resume
        batches = self._prefetch or self.sampler
        images, labels, masks, known = (t.to(self.device) for t in batches.dense_batch(step))
        lr = _lr(tr, step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.network.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits, mask_logits = self.network.forward_dense(images)
        logits = logits.float()
        targets = labels * (1 - tr.label_smoothing) + 0.5 * tr.label_smoothing
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        mask_loss = torch.zeros((), device=self.device)
        if mask_logits is not None and tr.mask_weight > 0 and known.sum() > 0:
            mask_loss = _mask_loss(mask_logits.float(), masks, known)
            loss = loss + tr.mask_weight * mask_loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), 5.0)
        self.opt.step()
        if self.average is not None:
            self.average.update(self.network)
        self.state.step += 1
        acc = ((logits.detach() > 0).float() == labels).float().mean().item()
        return {"loss": loss.item(), "acc": acc, "lr": lr, "mask_loss": mask_loss.item()}

    @property
    def exported(self) -> FaceClassifier:
        """The network that is validated, calibrated and written to weights/."""
        return self.average.network if self.average is not None else self.network

    def val_logits(self) -> np.ndarray:
        """Crop scores (`TrainConfig.score`) of the validation split as it is."""
        if self._val_images is None:
            self._val_images = evaluation_images(self.data, self.val, self.config.input_size)
        return self._crop_scores(self._val_images)

    def _real_val_scores(self, indices: list[int], scale: float) -> np.ndarray:
        """Crop scores of the real validation crops `indices` at `scale` of their size."""
        if scale not in self._small_val_images:
            samples = [self.val[i] for i in indices]
            self._small_val_images[scale] = evaluation_images(
                self.data, samples, self.config.input_size, scale
            )
        return self._crop_scores(self._small_val_images[scale])

    @torch.no_grad()
    def _crop_scores(self, images: np.ndarray) -> np.ndarray:
        network = self.exported.eval()
        dense = uses_maps(self.train.score, network.mask_head is not None)
        out = []
        for start in range(0, len(images), 64):
            x = to_tensor(images[start : start + 64], self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                if dense:
                    logits, mask = network.forward_dense(x)
                    maps = torch.sigmoid(mask.float()).cpu().numpy()
                    out.append(crop_scores(logits.float().cpu().numpy(), maps, self.train.score))
                else:
                    out.append(network(x).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def validate(self) -> dict[str, float]:
        """Validation loss and AUCs (all fakes, and each family against all reals),
        then calibration and threshold; empty when the set has no validation split."""
        if not self.val:
            self.calibration_note = "no validation split: weights saved uncalibrated"
            return {}
        logits = self.val_logits()
        labels = np.array([s.label for s in self.val])
        row = {
            "val_loss": float(
                F.binary_cross_entropy_with_logits(
                    torch.from_numpy(logits), torch.from_numpy(labels.astype(np.float32))
                )
            ),
            "val_auc": metrics.auc(labels, logits),
            "val_ap": metrics.average_precision(labels, logits),
        }
        families = np.array([s.family for s in self.val])
        for family in FAMILIES:
            keep = (families == family) | (labels == 0)
            if (families == family).any():
                row[f"val_auc_{family.replace('-', '_')}"] = metrics.auc(labels[keep], logits[keep])
        self.decision = self._calibrate(logits, labels)
        if self.decision is not None:
            row.update(
                threshold=self.decision.threshold,
                val_video_auc=self.decision.validation.get("video_auc", float("nan")),
                val_video_tpr=self.decision.validation.get("video_tpr", float("nan")),
            )
        self.last_validation = row
        return row

    def _calibrate(self, logits: np.ndarray, labels: np.ndarray) -> Decision | None:
        tr = self.train
        try:
            calibration = fit_calibration(logits, labels, tr.calibration)
        except InputError as err:
            self.calibration_note = f"not calibrated: {err}"
            return None
        probs = calibration(logits)
        pooling = PoolingConfig()
        runs = _chunks(self.val, tr.calibration_chunk)
        video_scores = np.array([pool_scores(probs[idx], pooling) for idx in runs])
        video_labels = np.array([self.val[idx[0]].label for idx in runs])
        real = video_scores[video_labels == 0]
        if len(real) == 0:
            self.calibration_note = "not calibrated: no real validation videos"
            return None
        real_at = {1.0: real} | self._small_real_video_scores(
            runs, video_labels, calibration, pooling
        )
        real_all = np.concatenate(list(real_at.values()))
        empirical = threshold_at_fpr(real_all, tr.target_fpr)
        fitted = (
            fitted_threshold_at_fpr(real_all, tr.target_fpr) if len(real_all) >= 3 else empirical
        )
        threshold = max(empirical, fitted)
        fake = video_scores[video_labels == 1]
        self.calibration_note = ""
        validation = {
            "step": self.state.step,
            "frame_auc": metrics.auc(labels, logits),
            "video_auc": metrics.auc(video_labels, video_scores),
            "real_videos": int(len(real)),
            "fake_videos": int(len(fake)),
            "video_run": tr.calibration_chunk,
            "video_fpr": float(np.mean(real > threshold)),
            # the real videos and runs at each size the threshold was fitted over
            "video_fpr_by_scale": {
                f"{scale:g}": float(np.mean(scores > threshold))
                for scale, scores in real_at.items()
            },
            # threshold: the higher of the empirical quantile and a logit-normal tail fit
            "threshold_empirical": empirical,
            "threshold_fitted": fitted,
            "video_tpr": float(np.mean(fake > threshold)) if len(fake) else float("nan"),
            "crops": int(len(labels)),
            # What training saw: leave-one-family-out runs that start from these weights
            # must not hold out a kind in this list.
            "families": sorted(
                {family_group(f) for f in self.sampler.families}
                | {family_group(f) for f in self.sampler.online}
            ),
            "data": {
                "folder": self.data.root.name,
                "pack": self.data.manifest.get("pack", {}),
                "created_utc": self.data.manifest.get("created_utc"),
            },
        }
        return Decision(
            calibration=calibration,
            threshold=threshold,
            target_fpr=tr.target_fpr,
            pooling=pooling,
            validation=json_safe(validation),
            score=tr.score,
        )

    def _small_real_video_scores(
        self,
        runs: list[list[int]],
        labels: np.ndarray,
        calibration: Calibration,
        pooling: PoolingConfig,
    ) -> dict[float, np.ndarray]:
        """Pooled probabilities of the real validation videos and runs at each of
        `threshold_scales`, as `_calibrate` pools them as they are."""
        real_runs = [idx for idx, label in zip(runs, labels, strict=True) if label == 0]
        indices = sorted({i for idx in real_runs for i in idx})
        position = {i: k for k, i in enumerate(indices)}
        out: dict[float, np.ndarray] = {}
        for scale in self.train.threshold_scales:
            probs = calibration(self._real_val_scores(indices, scale))
            out[scale] = np.array(
                [pool_scores(probs[[position[i] for i in idx]], pooling) for idx in real_runs]
            )
        return out

    # ------------------------------------------------------------ checkpoints

    def save(self) -> None:
        ckpt = {
            "network": self.network.state_dict(),
            "opt": self.opt.state_dict(),
            "state": dataclasses.asdict(self.state),
            "train": dataclasses.asdict(self.train),
            "config": dataclasses.asdict(self.config),
            "data": {"root": str(self.data.root), "samples": len(self.data.samples)},
        }
        if self.average is not None:
            ckpt["average"] = self.average.network.state_dict()
        save_checkpoint(self.out, ckpt)
        decision = self.decision
        save_weights(self.exported, self.out / "weights", decision)
        stale = self.out / "weights" / "calibration.json"
        if decision is None and stale.exists():
            stale.unlink()  # a calibration from other weights would be wrong for these

    def checkpoint(self, final: bool = False) -> dict[str, float]:
        metrics = self.validate()
        self.save()
        self._keep_best(metrics)
        return metrics

    def _keep_best(self, metrics: dict[str, float]) -> None:
        """Weights of the checkpoint with the best validation video AUC so far go to
        `best/` (the last checkpoint is not always the best one to ship)."""
        score = metrics.get("val_video_auc")
        if score is None or not math.isfinite(score) or self.decision is None:
            return
        marker = self.out / "best" / "best.json"
        try:
            best = json.loads(marker.read_text())["val_video_auc"]
        except (OSError, ValueError, KeyError, TypeError):
            best = -1.0
        if score > best:
            save_weights(self.exported, self.out / "best", self.decision)
            write_text_atomic(marker, json.dumps({"val_video_auc": score, "step": self.state.step}))

    def run(
        self, minutes: float | None = None, steps: int | None = None, progress=None
    ) -> RunState:
        """Train until `train.steps`, `steps` more steps, or `minutes` pass; validate,
        calibrate and checkpoint every `checkpoint_every` and at the end (also on
        SIGTERM/SIGINT)."""
        try:
            return run_chunk(self, CSV_FIELDS, minutes=minutes, steps=steps, progress=progress)
        finally:
            if self._prefetch is not None:
                self._prefetch.close()
                self._prefetch = None


def config_overrides(
    path: Path | None, preset_name: str | None = None, overrides: dict | None = None
) -> dict:
    """Training config fields from a JSON file, --preset and --set, later ones winning."""
    return training.config_overrides(path, preset_name, overrides, preset)
