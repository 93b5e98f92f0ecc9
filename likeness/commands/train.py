"""`likeness train ...`: train the generator (and, later, the detector)."""

from __future__ import annotations

from pathlib import Path

import typer

from likeness.training import parse_sets
from likeness.ui import console, progress_bar, safe


def register(app: typer.Typer) -> None:
    train_app = typer.Typer(help="Train likeness's models from a pack.", no_args_is_help=True)
    app.add_typer(train_app, name="train")

    @train_app.command("generator")
    def train_generator(
        pack: Path = typer.Option(..., "--pack", help="A pack from `likeness dataset pack`."),
        out: Path = typer.Option(
            ..., "--out", help="Run folder: checkpoint, loss.csv, samples/, weights/."
        ),
        resume: bool = typer.Option(
            False,
            "--resume",
            help="Continue the run in --out exactly where its last checkpoint left it.",
        ),
        minutes: float | None = typer.Option(
            None, "--minutes", help="Stop (and checkpoint) after this much wall time."
        ),
        steps: int | None = typer.Option(
            None,
            "--steps",
            help="Stop after this many more steps (the run's total stays in the config).",
        ),
        config: Path | None = typer.Option(
            None,
            "--config",
            help="Training config JSON (fields of TrainConfig; see generator/config.py).",
        ),
        preset: str | None = typer.Option(
            None, "--preset", help="Model size: tiny, small (shipped, CPU) or base (GPU)."
        ),
        set_: list[str] = typer.Option(
            [], "--set", help="Override one config field, e.g. --set batch_size=16 (repeatable)."
        ),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    ) -> None:
        """Train the portrait generator by self-supervised reconstruction.

        Source and driving frames come from the same clip (photos through synthetic
        motion); the model learns to redraw the driving frame from the source and both
        frames' keypoints. No pretrained network is used. Resumable: run it in chunks
        with `--minutes`, then `--resume`. `--set init=WEIGHTS` starts a new run from a
        generator weights folder; `--set mode=extractor` trains the motion extractor
        alone (`--keypoints learned`) against the mesh keypoints, the renderer frozen.

        Example: `likeness train generator --pack pack/ --out runs/g1 --minutes 10`
        """
        from likeness.config import choose_device
        from likeness.generator.train import Trainer, config_overrides

        overrides = config_overrides(config, preset, parse_sets(set_))
        trainer = Trainer(
            pack, out, overrides=overrides, device=choose_device(device), resume=resume
        )
        tr = trainer.train
        console.print(
            f"training {safe(trainer.config.name)} from step {trainer.state.step} "
            f"to {tr.steps} on {trainer.device} "
            f"({len(trainer.clips)} train clips)"
        )
        _stopped(trainer, _run(trainer, minutes, steps))

    _register_detector(train_app)


def _run(trainer, minutes: float | None, steps: int | None):
    """One chunk of `trainer.run` behind a progress bar from the run's current step."""
    return trainer.run(minutes=minutes, steps=steps, progress=progress_bar)


def _stopped(trainer, state) -> None:
    console.print(
        f"stopped at step {state.step} after {state.seconds / 60:.1f} min of "
        f"training; weights in {safe(trainer.out / 'weights')}"
    )


def _register_detector(train_app: typer.Typer) -> None:
    @train_app.command("detector")
    def train_detector(
        data: Path = typer.Option(
            ..., "--data", help="A training set from `likeness dataset fakes`."
        ),
        out: Path = typer.Option(
            ..., "--out", help="Run folder: checkpoint, loss.csv, weights/ (calibrated)."
        ),
        resume: bool = typer.Option(
            False, "--resume", help="Continue the run in --out exactly where it left off."
        ),
        minutes: float | None = typer.Option(
            None, "--minutes", help="Stop (and checkpoint) after this much wall time."
        ),
        steps: int | None = typer.Option(None, "--steps", help="Stop after this many more steps."),
        config: Path | None = typer.Option(
            None, "--config", help="Training config JSON (TrainConfig fields, detector/config.py)."
        ),
        preset: str | None = typer.Option(
            None, "--preset", help="Model size: tiny (tests), small (CPU) or base (GPU)."
        ),
        set_: list[str] = typer.Option(
            [], "--set", help="Override one config field, e.g. --set batch_size=64 (repeatable)."
        ),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    ) -> None:
        """Train the face-manipulation detector (real vs fake crops), then calibrate it.

        A timm backbone from scratch (or `--set init=WEIGHTS` to start from another
        detector) with a dense head that learns each fake's mask; batches half real,
        half fake (stored fakes by family, plus fresh fakes of the pure families:
        self-blend, swap, lip-sync, low-res); augmentations alike for both classes. At
        every checkpoint it is validated on the val split (people never trained on),
        calibrated, and its threshold set at 1 % false positives on real val videos;
        RUN/weights is then a complete detector for `likeness scan --weights`, and
        RUN/best the checkpoint with the best validation video AUC so far.
        `--set exclude_families=swap` leaves a family out (leave-one-family-out).

        Example: `likeness train detector --data fakes/ --out runs/d1 --minutes 30`
        """
        from likeness.config import choose_device
        from likeness.detector.train import Trainer, config_overrides

        overrides = config_overrides(config, preset, parse_sets(set_))
        trainer = Trainer(
            data, out, overrides=overrides, device=choose_device(device), resume=resume
        )
        tr = trainer.train
        console.print(
            f"training {safe(trainer.config.name)} ({safe(trainer.config.backbone)}) from step "
            f"{trainer.state.step} to {tr.steps} on {trainer.device} "
            f"({len(trainer.sampler.reals)} real train crops, "
            f"{sum(len(v) for v in trainer.sampler.families.values())} stored fakes, "
            f"{len(trainer.val)} val crops)"
        )
        state = _run(trainer, minutes, steps)
        val = trainer.last_validation
        if val:
            text = f"val AUC {val['val_auc']:.3f} (crops)"
            if "threshold" in val:
                fpr = trainer.decision.validation["video_fpr"]
                text += (
                    f", {val['val_video_auc']:.3f} (videos); threshold {val['threshold']:.3f} "
                    f"(real val video false positives {fpr:.1%})"
                )
            console.print(text)
        if trainer.calibration_note:
            console.print(f"[yellow]{safe(trainer.calibration_note)}[/]")
        _stopped(trainer, state)
