"""The detector wrapper: owns the network, its weights, calibration, threshold and
device, and scores aligned face crops.

A shipped detector is a folder:

    config.json         DetectorConfig
    model.safetensors   the network's weights (float16)
    calibration.json    {"calibration": {...}, "threshold": t, "target_fpr": 0.01,
                         "pooling": {...}, "validation": {...}}

The threshold was chosen for video scores pooled with that pooling, so both are read
from the folder, never from code defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from likeness.detector.calibrate import IDENTITY, Calibration
from likeness.detector.config import DetectorConfig
from likeness.detector.network import DenseOutputs, FaceClassifier
from likeness.detector.pooling import PoolingConfig
from likeness.detector.scoring import ScoreConfig, crop_scores, uses_maps
from likeness.errors import InputError, ModelError
from likeness.jsonio import read_json_object
from likeness.tensors import to_tensor
from likeness.weights_io import load_model, model_files, save_model, write_text_atomic

CALIBRATION_NAME = "calibration.json"
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "detector"
TRAIN_HINT = (
    "train one with `likeness train detector --data FAKES --out RUN` and pass --weights RUN/weights"
)


@dataclass(frozen=True)
class Decision:
    """How the network's outputs become a verdict: each crop's score (the logit, plus
    the dense head's evidence when `score` says so), calibration, pooling, threshold."""

    calibration: Calibration = IDENTITY
    threshold: float = 0.5
    target_fpr: float = 0.01
    pooling: PoolingConfig = field(default_factory=PoolingConfig)
    validation: dict = field(default_factory=dict, hash=False, compare=False)
    score: ScoreConfig = field(default_factory=ScoreConfig)

    def to_dict(self) -> dict:
        return {
            "calibration": self.calibration.to_dict(),
            "threshold": self.threshold,
            "target_fpr": self.target_fpr,
            "pooling": self.pooling.to_dict(),
            "score": self.score.to_dict(),
            "validation": self.validation,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Decision:
        try:
            return cls(
                calibration=Calibration.from_dict(data["calibration"]),
                threshold=float(data["threshold"]),
                target_fpr=float(data.get("target_fpr", 0.01)),
                pooling=PoolingConfig.from_dict(data.get("pooling") or {}),
                validation=dict(data.get("validation") or {}),
                score=ScoreConfig.from_dict(data.get("score") or {}),
            )
        # AttributeError: a section that should be an object is another JSON type.
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ModelError(f"detector calibration is damaged ({err})") from None


class DetectorModel:
    """Inference wrapper. `from_pretrained()` loads the shipped detector."""

    def __init__(
        self,
        network: FaceClassifier,
        decision: Decision,
        device: str = "cpu",
        weights_hash: str | None = None,
        batch_size: int = 32,
        calibrated: bool = True,
    ) -> None:
        self.network = network.to(device).eval()
        self.config = network.config
        self.decision = decision
        # False: loaded with `uncalibrated=True` from a folder without calibration.json
        # (its decision is the identity and 0.5: rank measures only).
        self.calibrated = calibrated
        self.device = torch.device(device)
        self.weights_hash = weights_hash
        self.batch_size = batch_size
        self._scoring: torch.nn.Module | None = None  # made on first use (`_scorer`)
        self._dense_scoring: torch.nn.Module | None = None  # likewise (`_dense_scorer`)

    @classmethod
    def from_pretrained(
        cls, folder: Path | None = None, device: str = "cpu", uncalibrated: bool = False
    ) -> DetectorModel:
        """The detector in `folder` (default: the shipped one). `uncalibrated`: a folder
        whose training could not calibrate it (a run still worse than chance on its
        validation split) loads with the identity calibration and threshold 0.5, for
        rank measures (AUC, AP) only; `scan` never asks for that."""
        folder = Path(folder) if folder is not None else DEFAULT_WEIGHTS
        what = "no shipped detector" if folder == DEFAULT_WEIGHTS else "no detector"
        optional = uncalibrated and not (folder / CALIBRATION_NAME).is_file()
        extra = () if optional else (CALIBRATION_NAME,)
        config_path, weights, *calibration = model_files(folder, what, TRAIN_HINT, *extra)
        try:
            config = DetectorConfig.load(config_path)
        except InputError as err:
            raise ModelError(str(err)) from None
        network = FaceClassifier(config)
        load_weights(network, weights)
        decision = Decision() if optional else read_decision(calibration[0])
        from likeness.hashing import sha256_file

        return cls(
            network, decision, device, weights_hash=sha256_file(weights), calibrated=not optional
        )

    @property
    def has_mask_head(self) -> bool:
        return self.network.mask_head is not None

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """Aligned crops (N, H, W, 3) uint8 RGB -> the classifier's raw logits (N,)."""
        return self.dense(crops, maps=False)[0]

    def scores(self, crops: np.ndarray) -> np.ndarray:
        """Aligned crops (N, H, W, 3) uint8 RGB -> each crop's uncalibrated score (N,):
        the logit, plus the dense head's evidence where the decision asks for it
        (`scoring.crop_scores`); what the calibration was fitted to."""
        config = self.decision.score
        if not uses_maps(config, self.has_mask_head):
            return self.logits(crops)
        logits, maps = self.dense(crops, maps=True)
        return crop_scores(logits, maps, config)

    def _scorer(self) -> torch.nn.Module:
        """The backbone for scores alone, on CPU: batch norms folded into the convolutions
        before them and channels-last tensors (oneDNN's fast layout). A batch of 16
        crops at 160 px, 2 threads, CPU time median of 6 on the loaded 2-core CPU: 0.94 s
        as trained, 0.86 s folded, 0.58 s folded and channels-last; logits within 1e-6.
        Made once, from the weights as loaded: the wrapper's network is not trained."""
        if self._scoring is None:
            self._scoring = self._fused(self.network.backbone)
        return self._scoring

    def _dense_scorer(self) -> torch.nn.Module:
        """Backbone and mask head as one module (`network.DenseOutputs`), folded and
        channels-last like `_scorer`: both outputs for about the price of the logits
        (batch of 16 at 160 px, 2 threads, median of 6: 0.385 s as trained, 0.258 s
        folded, the logits alone 0.248 s; outputs within 3e-6)."""
        if self._dense_scoring is None:
            self._dense_scoring = self._fused(
                DenseOutputs(self.network.backbone, self.network.mask_head)
            )
        return self._dense_scoring

    def _fused(self, module: torch.nn.Module) -> torch.nn.Module:
        if self.device.type == "cpu":
            from torch.fx.experimental.optimization import fuse

            try:
                return fuse(module).to(memory_format=torch.channels_last).eval()
            except Exception:  # a module torch.fx cannot trace: as it is
                pass
        return module.eval()

    @torch.inference_mode()
    def dense(self, crops: np.ndarray, maps: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Aligned crops (N, H, W, 3) uint8 RGB -> (raw logits (N,), where each crop was
        changed as probabilities (N, S/8, S/8) in crop space, or None without a mask
        head or with `maps=False`)."""
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        from likeness.detector.data import resize_to

        size = self.config.input_size
        want = maps and self.has_mask_head
        out, heat = [], []
        for start in range(0, len(crops), self.batch_size):
            # Resized as training resized them (OpenCV, area), not by the network.
            batch = np.stack([resize_to(c, size) for c in crops[start : start + self.batch_size]])
            x = self.network.prepare(to_tensor(batch, self.device))
            if self.device.type == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            if want:
                logits, mask = self._dense_scorer()(x)
                heat.append(torch.sigmoid(mask).float().cpu().numpy())
            else:
                logits = self._scorer()(x).squeeze(-1)
            out.append(logits.float().cpu().numpy())
        if not out:
            return np.zeros(0, np.float32), None
        return np.concatenate(out), (np.concatenate(heat) if want else None)

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """Calibrated probabilities that each crop is manipulated."""
        return self.decision.calibration(self.scores(crops))


def save_weights(network: FaceClassifier, folder: Path, decision: Decision | None = None) -> Path:
    """Write config.json, model.safetensors (float16) and, when given, calibration.json."""
    path = save_model(network, folder, network.config.to_json())
    if decision is not None:
        write_text_atomic(Path(folder) / CALIBRATION_NAME, json.dumps(decision.to_dict(), indent=2))
    return path


def read_decision(path: Path) -> Decision:
    return Decision.from_dict(read_json_object(path, "detector calibration", ModelError))


def load_weights(network: torch.nn.Module, path: Path) -> None:
    load_model(network, path, "detector")
