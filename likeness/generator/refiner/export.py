"""Choosing how a trained refiner is used, on the val split, and writing the folder that
ships: DDIM steps and residual strength are picked by held-out figures (never the test
split's), the weights copied as they are.

    python -m likeness.generator.refiner.export --weights RUN/best --pairs PAIRS --out FOLDER

The choice: among the settings whose eye and mouth sharpness are both closer to the
truth's than the unrefined renders' (|log ratio| smaller) and whose face L1 is not
worse, the lowest face L1; if none qualifies, the lowest face L1 overall (and the
report says the rule was not met on val).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np

from likeness.generator.refiner.metrics import masked_l1, sharpness_ratio
from likeness.generator.refiner.model import RefinerModel
from likeness.generator.refiner.pairs import Pairs, load_pairs
from likeness.weights_io import CONFIG_NAME, WEIGHTS_NAME

STEPS = (1, 2)
STRENGTHS = (0.25, 0.5, 0.75, 1.0)


def figures(frames: np.ndarray, pairs: Pairs, masks: np.ndarray) -> dict[str, float]:
    l1 = [
        masked_l1(f, t, (m > 0) & (v > 0))
        for f, t, m, v in zip(frames, pairs.target, masks, pairs.valid, strict=True)
    ]
    sharp = [
        sharpness_ratio(f, t, k) for f, t, k in zip(frames, pairs.target, pairs.kp, strict=True)
    ]
    return {
        "face_l1": float(np.nanmean(l1)),
        "eyes": float(np.nanmean([s["eyes"] for s in sharp])),
        "mouth": float(np.nanmean([s["mouth"] for s in sharp])),
    }


def _gap(ratio: float) -> float:
    return abs(math.log(ratio)) if ratio > 0 else math.inf


def qualifies(row: dict, base: dict) -> bool:
    return (
        _gap(row["eyes"]) < _gap(base["eyes"])
        and _gap(row["mouth"]) < _gap(base["mouth"])
        and row["face_l1"] <= base["face_l1"]
    )


def choose(weights: Path, pairs_root: Path, limit: int | None = None) -> dict:
    model = RefinerModel.from_pretrained(weights)
    val = load_pairs(pairs_root, "val", limit)
    masks = model.masks(val.kp, val.render.shape[1])
    base = figures(val.render, val, masks)
    rows = []
    for steps, strength in itertools.product(STEPS, STRENGTHS):
        model.config = dataclasses.replace(model.config, strength=strength)
        out = np.concatenate(
            [
                model.refine(val.render[i : i + 8], val.kp[i : i + 8], steps)
                for i in range(0, len(val), 8)
            ]
        )
        rows.append({"steps": steps, "strength": strength, **figures(out, val, masks)})
    ok = [r for r in rows if qualifies(r, base)]
    best = min(ok or rows, key=lambda r: r["face_l1"])
    return {
        "val_pairs": len(val),
        "unrefined": base,
        "rows": rows,
        "chosen": best,
        "rule_met_on_val": bool(ok),
    }


def export(weights: Path, pairs_root: Path, out: Path, limit: int | None = None) -> dict:
    """Write OUT/config.json (with the chosen steps and strength) and OUT/model.safetensors."""
    from likeness.generator.refiner.config import RefinerConfig
    from likeness.weights_io import write_text_atomic

    report = choose(weights, pairs_root, limit)
    config = RefinerConfig.load(Path(weights) / CONFIG_NAME)
    chosen = report["chosen"]
    config = dataclasses.replace(config, steps=chosen["steps"], strength=chosen["strength"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(weights) / WEIGHTS_NAME, out / WEIGHTS_NAME)
    write_text_atomic(out / CONFIG_NAME, config.to_json())
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description="Pick steps and strength on val; write the folder."
    )
    parser.add_argument("--weights", type=Path, required=True, help="a run's best/ folder")
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None, help="val pairs used")
    args = parser.parse_args(argv)
    print(json.dumps(export(args.weights, args.pairs, args.out, args.limit), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
