"""`likeness bench detector_lofo`: leave-one-family-out generalisation of the detector.

    likeness bench detector_lofo --pack FAKES -o bench-results [--steps 600]

The project's own measure of how the detector does on manipulation methods it never
saw (the outside world's generators are, by definition, not in our training set). For
each kind of fake K (reenact = both generator families, sbi, swap, lipsync, lowres): a
detector is trained from scratch on the FAKES folder's train split with K left out
everywhere (stored fakes, online fakes, validation and calibration), for `steps`
steps, then scored on the test split (identities never trained on): video AUC, AP and
TPR at 1 % FPR on K's fakes against all real test videos (the unseen cell), and on
every other kind (seen in training). One more run with nothing left out is the
reference row. Same preset, seed and schedule for every run, so rows differ only in
what was left out. With `--weights`, every run starts from that detector (a CPU can
afford a fine-tune where it cannot afford training from scratch), and only kinds the
starting detector never saw are held out. With `--config`, every run trains with that
recipe (TrainConfig fields, e.g. `{"augment": {"sharpen": 0.3}}`) under the protocol's
own fields, which the recipe may not set. With `--seed`, every run draws from that seed
instead of 0 (the same protocol again under another draw: how much of a difference
between two tables is run-to-run noise). With `--seeds N`, the whole protocol runs N
times (seeds SEED .. SEED+N-1, each in OUT/seed-K with its own JSON and PNG) and
OUT/detector_lofo.json holds every cell's mean and standard deviation over the seeds.
Why: four runs of one recipe held reenactment out at 0.37-0.59 (standard deviation
0.10, 2026-12-02), so one run tells recipes apart only by about 0.15 in a cell; a mean
of four halves that training noise. The test split's own sampling noise (bootstrap
standard deviation 0.07-0.09 a cell) is not averaged away, but it is the same test
split for every recipe compared on it.

Writes detector_lofo.json (the matrix, per-run details, a Markdown table) and
detector_lofo.png (held-out kind x tested kind, video AUC, the unseen cells outlined),
both rewritten after every run (`complete` says whether every row is in). Each run
lives in OUT/detector_lofo-runs/KIND and checkpoints as it goes: the same command again
resumes an interrupted run and reuses finished ones (a run made under another protocol
is refused: delete its folder).

Every cell carries a 95 % bootstrap interval of its video AUC (`auc_ci95`, real and
fake test videos resampled): with 28 real test videos a cell's interval is about 0.3
wide, so tables differ meaningfully only where intervals barely overlap.

Target (issue 12): video AUC >= 0.85 on every held-out kind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

from likeness.bench.common import machine_info, write_json
from likeness.bench.detector import _group_metrics, _video_scores
from likeness.datasets.fakes_format import kinds
from likeness.errors import InputError
from likeness.training import CHECKPOINT
from likeness.weights_io import write_text_atomic

# Held-out kind -> the families it stands for: reenact, sbi, swap, lipsync, lowres.
KINDS = kinds()
TARGET = 0.85
DEFAULT_STEPS = 600
CELL = 92
RUNS = "detector_lofo-runs"
# Validate and checkpoint this many times in a run: an interrupted run resumes from its
# last quarter, and validation costs about 3 s of a 600-step run's 6 minutes.
CHECKPOINTS = 4
# TrainConfig fields the protocol sets for every run (a --config recipe may not).
PROTOCOL_FIELDS = frozenset(
    {"init", "preset", "steps", "warmup", "checkpoint_every", "exclude_families", "seed",
     "input_size"}
)  # fmt: skip


# What the first shipped detector (likeness-detector-s v1, before dense supervision)
# trained on, from its MODEL_CARD: its calibration does not list it.
V1_FAMILIES = ("reenact", "sbi")


def init_families(weights: Path) -> tuple[str, ...]:
    """The kinds of fake the detector in `weights` was trained on."""
    from likeness.detector.model import DetectorModel

    listed = DetectorModel.from_pretrained(weights).decision.validation.get("families")
    return tuple(listed) if listed else V1_FAMILIES


def _train(
    data: Path,
    out: Path,
    left_out: str | None,
    steps: int,
    quick: bool,
    init: Path | None,
    input_size: int | None = None,
    recipe: dict | None = None,
    seed: int = 0,
) -> tuple[Path, float]:
    """Train (or resume, or reuse) the run in `out`; its final weights and the training
    time it took over all its chunks."""
    from likeness.detector.train import Trainer

    protocol = {
        "init": str(init) if init else "",
        "preset": "tiny" if quick else "small",
        "steps": steps,
        "warmup": max(1, min(100, steps // 10)),
        "checkpoint_every": max(1, steps // CHECKPOINTS),
        "exclude_families": [left_out] if left_out else [],
        "seed": seed,
    }
    if input_size:
        # Only when asked: runs made before the option keep matching their protocol.json.
        protocol["input_size"] = input_size
    # The recipe first, so that runs without one keep matching their protocol.json.
    overrides = {**(recipe or {}), **protocol}
    marker = out / "protocol.json"
    resume = (out / CHECKPOINT).is_file()
    if resume:
        try:
            earlier = json.loads(marker.read_text())
        except (OSError, ValueError):
            earlier = None
        if earlier != overrides:
            raise InputError(
                f"{out} holds a run of another protocol (steps, preset, start or left-out "
                "kind differ): delete it or choose another -o"
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(marker, json.dumps(overrides, indent=1))
    trainer = Trainer(data, out, overrides=overrides, resume=resume)
    if trainer.state.step < steps:
        state = trainer.run(steps=steps - trainer.state.step)
        if state.step < steps:
            # The trainer stops a run cleanly on SIGINT/SIGTERM; the bench stops with
            # it instead of going on to the next kind (the same command resumes it).
            raise KeyboardInterrupt
    return out / "weights", trainer.state.seconds


def read_recipe(path: Path) -> dict:
    """The training recipe in the JSON file `path`: TrainConfig fields the protocol leaves
    free (checked here, before the first run starts, not an hour into the bench)."""
    from likeness.detector.config import TrainConfig
    from likeness.detector.train import config_overrides

    recipe = config_overrides(path)
    fixed = sorted(set(recipe) & PROTOCOL_FIELDS)
    if fixed:
        raise InputError(
            f"--config {Path(path).name}: {', '.join(fixed)} are fixed by the protocol "
            "(use --steps, --input-size, --weights)"
        )
    TrainConfig.from_dict(recipe)  # unknown fields and bad values fail now
    return recipe


def _score(weights: Path, data, samples) -> dict:
    """Video-level metrics per kind of the detector in `weights` on `samples`."""
    from likeness.detector.model import DetectorModel

    # A run still worse than chance on its validation split is saved uncalibrated (the
    # trainer refuses to fit an inverted calibration): its AUC and AP are what this
    # protocol reads, so it is scored as it is, and its cells say so (seen with the tiny
    # preset at 10-20 steps).
    model = DetectorModel.from_pretrained(weights, uncalibrated=True)
    crops = np.stack([data.read(s) for s in samples])
    probs = model.probabilities(crops)
    decision = model.decision
    _, scores, labels, families = _video_scores(samples, probs, decision.pooling)
    cells = {
        kind: _group_metrics(labels, scores, families, fams, decision.threshold, interval=True)
        for kind, fams in KINDS.items()
    }
    if not model.calibrated:
        for cell in cells.values():
            if cell:
                cell["uncalibrated"] = True
    return cells


def _best_checkpoint(run: Path) -> tuple[Path, int] | None:
    """The run's checkpoint of best validation video AUC (what a shipped model would be
    chosen by) and its step, or None when validation never kept one."""
    marker = run / "best" / "best.json"
    try:
        step = int(json.loads(marker.read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return run / "best", step


def _best_payload(best_rows: dict[str, dict]) -> dict:
    """The same matrix for each run's best-validation checkpoint. Why both: two runs of
    one recipe and seed (one and two threads) held reenactment out at 0.585 and 0.454,
    and one run's checkpoints 300 steps apart at 0.526 and 0.454 (2026-12-02), so one
    read of a held-out cell is noisy; a second read of each run shows how noisy."""
    # A row's "step" is not a kind: the table and the held-out cells read kinds only.
    unseen = {k: (best_rows[k].get(k) or {}).get("auc") for k in best_rows if k in KINDS}
    return {
        "matrix_best_checkpoint": best_rows,
        "held_out_video_auc_best_checkpoint": unseen,
        "table_markdown_best_checkpoint": _table(best_rows) if best_rows else "",
    }


def _matrix_png(path: Path, rows: dict[str, dict]) -> None:
    """Held-out kind (rows) x tested kind (columns), video AUC; unseen cells outlined."""
    kinds = list(KINDS)
    names = list(rows)
    left, top = 130, 60
    img = np.full((top + CELL * len(names) + 20, left + CELL * len(kinds) + 20, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for j, kind in enumerate(kinds):
        cv2.putText(img, kind, (left + j * CELL + 8, top - 12), font, 0.45, (0, 0, 0), 1)
    for i, name in enumerate(names):
        y = top + i * CELL
        cv2.putText(img, f"- {name}", (8, y + CELL // 2 + 5), font, 0.45, (0, 0, 0), 1)
        for j, kind in enumerate(kinds):
            x = left + j * CELL
            value = (rows[name].get(kind) or {}).get("auc")
            ok = value is not None and value == value
            shade = int(round(255 * (1 - max(0.0, (value - 0.5) * 2)))) if ok else 235
            colour = (shade, 255, shade) if ok and value >= TARGET else (shade, shade, 255)
            fill = colour if ok else (235, 235, 235)
            cv2.rectangle(img, (x, y), (x + CELL - 2, y + CELL - 2), fill, -1)
            if name == kind:
                cv2.rectangle(img, (x, y), (x + CELL - 2, y + CELL - 2), (0, 0, 0), 3)
            text = f"{value:.2f}" if ok else "-"
            cv2.putText(img, text, (x + 24, y + CELL // 2 + 6), font, 0.55, (0, 0, 0), 1)
    cv2.imwrite(str(path), img)


def _auc_text(cell: dict) -> str:
    auc = cell.get("auc")
    return "–" if auc is None or auc != auc else f"{auc:.3f}"


def _table(rows: dict[str, dict], text=_auc_text) -> str:
    """Left-out kind x tested kind, `text(cell)` in each cell, the held-out one bold."""
    head = "| left out | " + " | ".join(KINDS) + " |"
    lines = [head, "| --- |" + " --- |" * len(KINDS)]
    for name, cells in rows.items():
        values = []
        for kind in KINDS:
            shown = text(cells.get(kind) or {})
            values.append(f"**{shown}**" if name == kind else shown)
        lines.append(f"| {name} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def run(
    out_dir: Path,
    quick: bool = False,
    pack: Path | None = None,
    steps: int | None = None,
    weights: Path | None = None,
    input_size: int | None = None,
    kinds: list[str] | None = None,
    config: Path | None = None,
    seed: int = 0,
    seeds: int = 1,
) -> Path:
    """Train one detector per left-out kind (and one with none left out) on the FAKES
    folder `pack`, test each on its test split, write detector_lofo.json and .png.

    Args:
        out_dir: folder for the results.
        quick: the tiny preset and 40 steps (smoke runs, tests).
        pack: a FAKES folder from `likeness dataset fakes` (with every kind in it).
        steps: training steps per run (default 600; quick 40).
        weights: start every run from this detector instead of from scratch (cheaper on
            a CPU); kinds it was trained on cannot be held out and are skipped.
        input_size: the network's input resolution in every run (default the preset's).
        kinds: hold out only these kinds (default every kind in the set); the reference
            run (nothing held out) is always made.
        config: a training recipe JSON (TrainConfig fields other than the protocol's)
            for every run.
        seed: the random seed of every run (default 0).
        seeds: run the protocol this many times, seeds `seed` onwards, each in its own
            subfolder, and write their mean and standard deviation per cell.
    Returns:
        The path of detector_lofo.json.
    Raises:
        InputError: no --pack, not a FAKES folder, or a kind missing from its test split.
    """
    from likeness.datasets.fakes_format import FakesSet

    if pack is None:
        raise InputError(
            "bench detector_lofo needs --pack: a training set (likeness dataset fakes)"
        )
    steps = steps or (40 if quick else DEFAULT_STEPS)
    if steps < 1:
        raise InputError(f"--steps must be 1 or more, got {steps}")
    if seeds < 1:
        raise InputError(f"--seeds must be 1 or more, got {seeds}")
    if seeds > 1:
        options = dict(quick=quick, pack=pack, steps=steps, weights=weights,
                       input_size=input_size, kinds=kinds, config=config)  # fmt: skip
        paths = [
            run(Path(out_dir) / f"seed-{s}", seed=s, **options) for s in range(seed, seed + seeds)
        ]
        combined = combine_seeds(paths)
        _matrix_png(Path(out_dir) / "detector_lofo.png", combined["matrix"])
        return write_json(Path(out_dir), "detector_lofo", combined)
    recipe = read_recipe(config) if config is not None else {}
    started = time.perf_counter()
    data = FakesSet.open(pack)
    samples = data.select("test")
    present = {k for k, fams in KINDS.items() if any(s.family in fams for s in samples)}
    if not data.select("test", label=0) or not present:
        raise InputError(f"{Path(pack).name} has no real and fake crops in its test split")
    seen_by_init = init_families(weights) if weights is not None else ()
    if kinds:
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            raise InputError(f"--kind: unknown {', '.join(unknown)}; use {', '.join(KINDS)}")
        missing = sorted(set(kinds) - present)
        if missing:
            raise InputError(f"--kind: {', '.join(missing)} not in the test split of {pack}")
        present = set(kinds)
    held = sorted(present - set(seen_by_init), key=list(KINDS).index)
    if not held:
        raise InputError(f"--weights {weights} was trained on every kind in the set")
    rows: dict[str, dict] = {}
    best_rows: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    out_dir = Path(out_dir)
    runs = out_dir / RUNS
    order = [*held, None]
    protocol = {
        "steps_per_run": steps,
        "preset": "tiny" if quick else "small",
        "input_size": input_size or "the preset's",
        "from": f"the detector in {weights}" if weights else "scratch",
        "init_trained_on": list(seen_by_init),
        "seed": seed,
        "recipe": recipe,
        "test": "test split of the FAKES folder (identities never trained on)",
        "kinds": {k: list(v) for k, v in KINDS.items()},
        "runs": str(runs),
    }
    training: dict[str, float] = {}
    for left_out in order:
        name = left_out or "none (reference)"
        t0 = time.perf_counter()
        folder = runs / (left_out or "all")
        trained, training[name] = _train(
            Path(pack), folder, left_out, steps, quick, weights, input_size, recipe, seed
        )
        rows[name] = _score(trained, data, samples)
        best = _best_checkpoint(folder)
        if best is not None:
            best_rows[name] = {"step": best[1], **_score(best[0], data, samples)}
        seconds[name] = round(time.perf_counter() - t0, 1)
        complete = len(rows) == len(order)
        payload = _payload(rows, protocol, pack, len(samples), quick, complete)
        # This invocation's wall time per run (a reused run: its scoring only), and the
        # training time of each run over all the chunks that made it.
        payload.update(_best_payload(best_rows))
        payload["seconds_per_run"] = seconds
        payload["training_seconds_per_run"] = {k: round(v, 1) for k, v in training.items()}
        payload["training_hours"] = round(sum(training.values()) / 3600, 2)
        payload["seconds"] = round(time.perf_counter() - started, 1)
        _matrix_png(out_dir / "detector_lofo.png", rows)
        path = write_json(out_dir, "detector_lofo", payload)
    return path


def combine_seeds(paths: list[Path]) -> dict:
    """One table from the same protocol run under several seeds: each cell's video AUC
    as mean, standard deviation (n - 1) and the values, and the held-out cells' means."""
    results = [json.loads(Path(p).read_text()) for p in paths]
    first = results[0]
    matrix: dict[str, dict] = {}
    for name in first["matrix"]:
        row: dict[str, dict] = {}
        for kind in KINDS:
            values = [(r["matrix"].get(name, {}).get(kind) or {}).get("auc") for r in results]
            values = [v for v in values if v is not None and v == v]
            if values:
                sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
                row[kind] = {"auc": float(np.mean(values)), "auc_sd": sd, "aucs": values}
            else:
                row[kind] = {}
        matrix[name] = row
    unseen = {k: (matrix[k].get(k) or {}).get("auc") for k in matrix if k in KINDS}
    spread = {k: (matrix[k].get(k) or {}).get("auc_sd") for k in matrix if k in KINDS}
    return {
        "benchmark": "detector_lofo",
        "quick": first["quick"],
        "complete": all(r["complete"] for r in results),
        "machine": machine_info(),
        "protocol": {**first["protocol"], "seed": [r["protocol"]["seed"] for r in results]},
        "data": first["data"],
        "method": __doc__,
        "seeds": [r["protocol"]["seed"] for r in results],
        "per_seed": [str(p) for p in paths],
        "matrix": matrix,
        "held_out_video_auc": unseen,
        "held_out_video_auc_sd": spread,
        "target": TARGET,
        "met": {k: (v is not None and v >= TARGET) for k, v in unseen.items()},
        "table_markdown": _table(
            matrix, lambda c: f"{c['auc']:.3f} ± {c['auc_sd']:.3f}" if c else "–"
        ),
        "png": "detector_lofo.png",
        "training_hours": round(sum(r.get("training_hours", 0.0) for r in results), 2),
    }


def _payload(
    rows: dict[str, dict], protocol: dict, pack: Path, n_test: int, quick: bool, complete: bool
) -> dict:
    unseen = {k: (rows[k].get(k) or {}).get("auc") for k in rows if k in KINDS}
    return {
        "benchmark": "detector_lofo",
        "quick": quick,
        "complete": complete,
        "machine": machine_info(),
        "protocol": protocol,
        "data": {"source": str(pack), "test_crops": n_test},
        "method": __doc__,
        "matrix": rows,
        "held_out_video_auc": unseen,
        "target": TARGET,
        "met": {k: (v is not None and v >= TARGET) for k, v in unseen.items()},
        "table_markdown": _table(rows),
        "png": "detector_lofo.png",
    }
