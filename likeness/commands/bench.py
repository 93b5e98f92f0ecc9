"""`likeness bench NAME`: benchmarks, each writing a JSON file of figures."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import typer

from likeness.errors import InputError
from likeness.ui import console, safe

# name -> module under likeness.bench exposing run(out_dir: Path, quick: bool) -> Path
BENCHMARKS = {
    "faces": "Decode, face detection, mesh+iris and crop speed on a 512x512 clip.",
    "watermark": "Watermark embed/detect speed, PSNR and robustness to attacks.",
    "provenance": "C2PA sign/verify and store timings.",
    "generator": "Generator quality on held-out identities vs two baselines, and its fps.",
    "detector": "Detector AUC/AP/EER/TPR on held-out people (--pack FAKES or PACK), scan speed.",
    "detector_lofo": "Leave-one-family-out: train without each fake kind, test on it "
    "(--pack FAKES, --steps per run).",
    "scan": "Scan files/min: local 1 and 2 workers, Ray 2 workers (--clips N, default 20); "
    "POST /v1/scan latency of likeness serve.",
    "refiner": "Diffusion refiner on vs off on held-out identities (--pack PACK or --pairs "
    "PAIRS; --weights a refiner folder): L1, PSNR, SSIM, eye/mouth sharpness, fps.",
}


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_command(
        name: str = typer.Argument(..., help=f"One of: {', '.join(BENCHMARKS)}."),
        out_dir: Path = typer.Option(
            Path("bench-results"), "-o", "--out", help="Folder for results."
        ),
        quick: bool = typer.Option(False, help="Fewer repetitions (for smoke runs)."),
        weights: Path | None = typer.Option(
            None,
            "--weights",
            help="generator: model folder (config.json + model.safetensors); detector: the "
            "detector to measure; detector_lofo: start every run from this detector; "
            "refiner: the refiner folder; default: the shipped model.",
        ),
        pack: Path | None = typer.Option(
            None,
            "--pack",
            help="generator: take held-out crops from a pack's test split instead of "
            "running the face stack on ../shared/corpus; refiner: render its test pairs.",
        ),
        steps: int | None = typer.Option(
            None, "--steps", min=1, help="detector_lofo: training steps per run (default 600)."
        ),
        clips: int | None = typer.Option(
            None, "--clips", min=1, help="scan: corpus clips to scan (default 20; --quick 6)."
        ),
        rounds: int | None = typer.Option(
            None, "--rounds", min=1, help="scan: runs of each backend, taking turns (default 2)."
        ),
        input_size: int | None = typer.Option(
            None,
            "--input-size",
            min=32,
            max=512,
            help="detector_lofo: the network's input resolution for every run (default: the "
            "preset's, 160 px; the crop is 256).",
        ),
        kind: list[str] = typer.Option(
            [],
            "--kind",
            help="detector_lofo: hold out only this kind (repeatable; default every kind); "
            "the reference run is always made.",
        ),
        config: Path | None = typer.Option(
            None,
            "--config",
            help="detector_lofo: a training recipe JSON for every run (TrainConfig fields, "
            'e.g. {"augment": {"sharpen": 0.3}}); the protocol\'s own fields are fixed.',
        ),
        seed: int | None = typer.Option(
            None,
            "--seed",
            min=0,
            help="detector_lofo: the random seed of every run (default 0); the same "
            "protocol under another draw says how much of a difference is noise.",
        ),
        seeds: int | None = typer.Option(
            None,
            "--seeds",
            min=1,
            help="detector_lofo: run the whole protocol this many times (seeds --seed "
            "onwards, each in OUT/seed-K) and report each cell's mean and standard "
            "deviation: runs of one recipe differ by about 0.10 in a cell.",
        ),
        pairs: Path | None = typer.Option(
            None,
            "--pairs",
            help="refiner: cached render/real pairs (python -m likeness.generator.refiner."
            "pairs) instead of rendering the --pack's test split.",
        ),
    ) -> None:
        """Run a benchmark and write its JSON (and charts) into --out.

        Figures are measured on this machine; compare ratios from one run, not absolute
        times across machines.
        """
        if name not in BENCHMARKS:
            raise InputError(f"unknown benchmark {name!r}: choose from {', '.join(BENCHMARKS)}")
        try:
            module = importlib.import_module(f"likeness.bench.{name}")
        except ModuleNotFoundError as err:
            raise InputError(
                f"benchmark {name!r} is not available in this build ({err.name})"
            ) from err
        given = {"weights": weights, "pack": pack, "steps": steps, "clips": clips,
                 "rounds": rounds, "pairs": pairs, "input_size": input_size,
                 "kinds": kind or None, "config": config,
                 "seed": seed, "seeds": seeds}  # fmt: skip
        options = {k: v for k, v in given.items() if v is not None}
        accepted = inspect.signature(module.run).parameters
        for key in options:
            if key not in accepted:
                flag = {"kinds": "kind"}.get(key, key).replace("_", "-")
                raise InputError(f"--{flag} does not apply to the {name} benchmark")
        out_dir.mkdir(parents=True, exist_ok=True)
        path = module.run(out_dir, quick=quick, **options)
        console.print(f"{name} benchmark written to {safe(path)}")
