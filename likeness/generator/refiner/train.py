"""Training the refiner on cached (render, real frame) pairs: the diffusion objective
on the residual (truth - render, scaled), inside the face mask and where the real frame
has pixels, with extra weight on the eyes and mouth.

    python -m likeness.generator.refiner.train --pairs PAIRS --out RUN [--resume] [--minutes N]

RUN holds `checkpoint.pt` (everything needed to continue exactly), `loss.csv`,
`weights/` (the latest exportable model) and `best/` with `best.json`: the model with
the lowest face L1 on the val split's pairs, refined by the shipped sampler (the same
steps and fixed noise as inference), which is what ships. Half the training timesteps
are the sampler's own few (the rest uniform): a 2-step sampler only ever asks the
network about those.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch

from likeness import training
from likeness.errors import InputError
from likeness.generator.refiner.config import RefinerConfig, RefinerTrainConfig, preset
from likeness.generator.refiner.data import CropSampler
from likeness.generator.refiner.metrics import masked_l1, sharpness_ratio
from likeness.generator.refiner.model import RefinerModel, make_scheduler, save_weights
from likeness.generator.refiner.network import RefinerNetwork
from likeness.generator.refiner.pairs import load_pairs
from likeness.training import RunState, open_run, run_chunk, save_checkpoint

CSV_FIELDS = (
    "step",
    "time_s",
    "loss",
    "lr",
    "val_l1",
    "val_l1_render",
    "val_eyes",
    "val_mouth",
    "val_eyes_render",
    "val_mouth_render",
)
BEST = "best.json"


class RefinerTrainer:
    def __init__(
        self,
        pairs_root: Path,
        out: Path,
        train: RefinerTrainConfig | None = None,
        *,
        overrides: dict | None = None,
        device: str = "cpu",
        resume: bool = False,
        limit: int | None = None,
    ) -> None:
        """A new run from `train` (default RefinerTrainConfig) with `overrides`, or with
        `resume` the run in `out` (its own configs, `overrides` on top). `limit` caps
        the training pairs read (tests, smoke runs).

        Raises:
            InputError: no pairs, a bad config, `out` holding a run without `resume`.
        """
        self.out = Path(out)
        self.pairs_root = Path(pairs_root)
        self.device = torch.device(device)
        ckpt, train, config = open_run(
            self.out, resume, train, overrides, RefinerTrainConfig, RefinerConfig, preset
        )
        self.train: RefinerTrainConfig = train
        self.config: RefinerConfig = config
        if train.num_threads > 0:
            torch.set_num_threads(train.num_threads)
        torch.manual_seed(train.seed)
        self.sampler = CropSampler(load_pairs(self.pairs_root, "train", limit), config, train)
        try:
            self.val = load_pairs(self.pairs_root, "val", train.val_pairs)
        except InputError:
            self.val = None
        self.net = RefinerNetwork(config).to(self.device)
        if train.crop % self.net.multiple:
            raise InputError(f"refiner crop {train.crop} must divide by {self.net.multiple}")
        self.opt = torch.optim.AdamW(
            self.net.parameters(), lr=train.lr, weight_decay=train.weight_decay
        )
        self.scheduler = make_scheduler(config)
        self.scheduler.set_timesteps(config.steps)
        self.sampler_t = self.scheduler.timesteps.clone().long()
        self.state = RunState()
        self.best: dict = {"val_l1": math.inf}
        self._render_val: dict[str, float] | None = None
        if ckpt is not None:
            self.net.load_state_dict(ckpt["network"])
            self.opt.load_state_dict(ckpt["opt"])
            self.state = RunState(**ckpt["state"])
            self.best = ckpt.get("best", self.best)

    # ------------------------------------------------------------ steps

    def _timesteps(self, n: int, gen: torch.Generator) -> torch.Tensor:
        uniform = torch.randint(0, self.config.train_timesteps, (n,), generator=gen)
        pick = self.sampler_t[torch.randint(0, len(self.sampler_t), (n,), generator=gen)]
        use_pick = torch.rand(n, generator=gen) < 0.5
        return torch.where(use_pick, pick, uniform)

    def loss(self, batch: dict[str, torch.Tensor], gen: torch.Generator) -> torch.Tensor:
        c = self.config
        b = {k: v.to(self.device) for k, v in batch.items()}
        x0 = (b["target"] - b["render"]) * b["valid"] * c.residual_scale
        noise = torch.randn(x0.shape, generator=gen).to(self.device)
        t = self._timesteps(len(x0), gen).to(self.device)
        noisy = self.scheduler.add_noise(x0, noise, t)
        if c.prediction_type == "v_prediction":
            want = self.scheduler.get_velocity(x0, noise, t)
        elif c.prediction_type == "epsilon":
            want = noise
        else:
            want = x0
        pred = self.net(b["render"], b["guide"], noisy, t)
        weight = b["mask"] * b["valid"] * (1 + self.train.region_weight * b["region"])
        err = (pred - want).abs() if self.train.loss == "l1" else (pred - want) ** 2
        return (err * weight).sum() / (weight.sum() * 3 + 1.0)

    def step(self) -> dict[str, float]:
        tr = self.train
        step = self.state.step
        gen = torch.Generator().manual_seed(tr.seed * 1_000_003 + step)
        batch = self.sampler.batch(step)
        lr = training.warmup_cosine(step, tr.lr, tr.warmup, tr.steps, floor=0.1)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.net.train()
        loss = self.loss(batch, gen)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.opt.step()
        self.state.step += 1
        return {"loss": loss.item(), "lr": lr}

    # ------------------------------------------------------------ validation

    def validate(self) -> dict[str, float]:
        """Face L1 and eye/mouth sharpness ratio of the val pairs refined as at
        inference (and, once, of the unrefined renders)."""
        if self.val is None or not len(self.val):
            return {}
        model = RefinerModel(self.net, str(self.device))
        v = self.val
        refined = np.concatenate(
            [model.refine(v.render[i : i + 8], v.kp[i : i + 8]) for i in range(0, len(v), 8)]
        )
        self.net.train()
        masks = model.masks(v.kp, v.render.shape[1])
        if self._render_val is None:
            self._render_val = _scores(v.render, v.target, v.valid, v.kp, masks, "_render")
        return {**_scores(refined, v.target, v.valid, v.kp, masks, ""), **self._render_val}

    def checkpoint(self, final: bool = False) -> dict[str, float]:
        metrics = self.validate()
        if metrics and metrics["val_l1"] < self.best["val_l1"]:
            self.best = {"step": self.state.step, "train_pairs": len(self.sampler.pairs), **metrics}
            save_weights(self.net, self.out / "best")
            (self.out / BEST).write_text(json.dumps(self.best, indent=1))
        ckpt = {
            "network": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "state": dataclasses.asdict(self.state),
            "train": dataclasses.asdict(self.train),
            "config": dataclasses.asdict(self.config),
            "best": self.best,
            "pairs": {"root": str(self.pairs_root), "train": len(self.sampler.pairs)},
        }
        save_checkpoint(self.out, ckpt)
        save_weights(self.net, self.out / "weights")
        return metrics

    def run(
        self, minutes: float | None = None, steps: int | None = None, progress=None
    ) -> RunState:
        """Train until `train.steps`, `steps` more steps, or `minutes` pass; checkpoint
        every `checkpoint_every` steps and at the end (also on SIGTERM/SIGINT)."""
        return run_chunk(self, CSV_FIELDS, minutes=minutes, steps=steps, progress=progress)


def _scores(pred, target, valid, kp, masks, suffix: str) -> dict[str, float]:
    l1 = [
        masked_l1(p, t, (m > 0) & (va > 0))
        for p, t, m, va in zip(pred, target, masks, valid, strict=True)
    ]
    sharp = [sharpness_ratio(p, t, k) for p, t, k in zip(pred, target, kp, strict=True)]
    return {
        f"val_l1{suffix}": float(np.nanmean(l1)),
        f"val_eyes{suffix}": float(np.nanmean([s["eyes"] for s in sharp])),
        f"val_mouth{suffix}": float(np.nanmean([s["mouth"] for s in sharp])),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description="Train the diffusion refiner on cached render/real pairs.",
        epilog="example: python -m likeness.generator.refiner.train --pairs "
        "/work/data/refiner-pairs --out runs/refiner --minutes 60 (then --resume)",
    )
    parser.add_argument("--pairs", type=Path, required=True, help="folder from refiner.pairs")
    parser.add_argument("--out", type=Path, required=True, help="the run folder")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--steps", type=int, default=None, help="at most this many more steps")
    parser.add_argument("--preset", default=None, help="small (default), apertures or tiny")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=JSON", help="training config field"
    )
    parser.add_argument("--limit", type=int, default=None, help="read at most N train pairs")
    args = parser.parse_args(argv)
    from likeness.errors import LikenessError
    from likeness.ui import progress_bar

    try:
        overrides = training.parse_sets(args.set)
        if args.preset:
            overrides["preset"] = args.preset
        trainer = RefinerTrainer(
            args.pairs, args.out, overrides=overrides, resume=args.resume, limit=args.limit
        )
        state = trainer.run(args.minutes, args.steps, progress=progress_bar)
    except LikenessError as err:
        print(f"error: {err}")
        return err.exit_code
    summary = {"step": state.step, "seconds": round(state.seconds, 1), "best": trainer.best}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
