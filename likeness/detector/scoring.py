"""A crop's score: the classifier's logit plus the dense head's evidence. Pure numpy.

The dense head predicts, cell by cell, where a crop was changed; its strongest cells
say "something here was blended or re-rendered" whatever the classifier's single logit
makes of the whole crop. The evidence is the logit of the mean probability of the
highest `mask_top` share of cells (a few cells, so a small changed region such as a
mouth counts), added to the classifier's logit with weight `mask_weight`.

Measured on the shipped v3 (2026-12-07, the fakes set's splits, people never trained
on; video AUC, all families against all real videos, 16-frame window pooling), chosen
on the validation split among mask_top 0.05 / 0.1 / 0.2 / 0.4 x weight 1-6 and the
mask alone: logit alone val 0.873, test 0.790; weight 2, top 0.1: val 0.897 (the
best), test 0.836, every family up on test (generator 0.892 -> 0.908, sbi 0.786 ->
0.850, swap 0.826 -> 0.851, lip-sync 0.709 -> 0.789, low-res 0.682 -> 0.741); the mask
alone: val 0.874, test 0.852. The head was trained beside the classifier all along
(`TrainConfig.mask_weight`) and never read at scoring time until then.

Not the default yet, because of what it does to the tail. v3 recalibrated with it (a
zero-step run from v3, the same weights; `likeness bench detector`, test split): video
AUC all 0.805 -> 0.839 (sbi 0.796 -> 0.857, swap 0.824 -> 0.851, lip-sync 0.748 ->
0.794, low-res 0.657 -> 0.747, generator 0.926 -> 0.908), real videos flagged 3/29 ->
2/28 (the grayscale photo no longer), but TPR at 1 % FPR 0.235 -> 0.097 (the webcam
clip, flagged either way, scores 0.97 instead of 0.91 and sets that cut) and, with
the crops at half size, 8 of 28 real videos over the threshold instead of 4 of 29:
blurrier real faces light the dense head up. A threshold fitted on the validation
reals at both sizes cures the second (weight 2: 1/28 flagged as they are, 2/28 at half
size; the logit alone 2/28 and 3/28) at the cost of catches at the threshold (25 % of
fake test videos against 35 %). And it does not transfer: the reenactment-held-out
run of the leave-one-family-out protocol, read both ways (same weights: a paired
comparison), holds reenactment out at 0.547 with the logit, 0.558 with weight 2, 0.569
with the evidence alone.

That calibration, measured on 2026-12-08 (`TrainConfig.threshold_scales`: the threshold
over the real validation videos as they are and at half size; v3, weight 2, zero-step
recalibration): threshold 0.879, test video AUC 0.839 (every family up, as above), 1 of
28 real test videos flagged (the webcam photo), 2 at half size, grey photos and GRID
MPEG-1 clips 0 of 5 (the logit alone: 3 of 28, 4 at half size, 2 of 5); but 25 % of fake
test videos caught at the threshold against 41 %, TPR at 1 % FPR 0.097 against 0.150,
and the scan test's stripped clip above it for 11 of 12 signing keys (0.865 once; with
the logit alone 0.853-0.892 against 0.731). A shipped detector must catch that clip
every time, so the logit alone still ships.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from likeness.config import JsonConfig
from likeness.errors import LikenessError, ModelError

EPS = 1e-4  # probabilities are clipped to [EPS, 1 - EPS] before their logit


@dataclass(frozen=True)
class ScoreConfig(JsonConfig):
    """Defaults keep the classifier's logit alone (a calibration.json written before
    this field existed scores as it always did)."""

    config_name: ClassVar[str] = "detector crop score"
    config_error: ClassVar[type[LikenessError]] = ModelError  # read from shipped weights

    mask_weight: float = 0.0  # weight of the dense head's evidence; 0: the logit alone
    mask_top: float = 0.1  # share of the map's cells, highest first, that are averaged

    def validate(self) -> None:
        w, top = self.mask_weight, self.mask_top
        if type(w) not in (int, float) or not 0 <= w <= 100:
            raise ModelError("detector score mask_weight must be a number in [0, 100]")
        if type(top) not in (int, float) or not 0 < top <= 1:
            raise ModelError("detector score mask_top must be a number in (0, 1]")


def mask_evidence(maps: np.ndarray, top: float) -> np.ndarray:
    """(N, h, w) changed-region probabilities -> (N,) logit of the mean of each map's
    highest `top` share of cells."""
    flat = np.asarray(maps, np.float64).reshape(len(maps), -1)
    if flat.shape[1] == 0:
        return np.zeros(len(flat))
    k = max(1, int(round(top * flat.shape[1])))
    p = np.clip(np.sort(flat, axis=1)[:, -k:].mean(axis=1), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def crop_scores(logits: np.ndarray, maps: np.ndarray | None, config: ScoreConfig) -> np.ndarray:
    """The classifier's logits (N,) plus `mask_weight` times the maps' evidence; the
    logits as they are without maps or with weight 0."""
    logits = np.asarray(logits, np.float64)
    if maps is None or config.mask_weight == 0 or len(logits) == 0:
        return logits.astype(np.float32)
    return (logits + config.mask_weight * mask_evidence(maps, config.mask_top)).astype(np.float32)


def uses_maps(config: ScoreConfig, has_mask_head: bool) -> bool:
    return has_mask_head and config.mask_weight > 0
