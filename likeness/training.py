"""What the generator's and the detector's training runs share: the run state, the
loss CSV, training-config overrides (file, --preset, --set), and the loop that trains
one chunk and always leaves a checkpoint behind, whether it ends by step count,
deadline or signal (so `--minutes` chunks and `kill` both resume exactly).

Imports the standard library (torch and likeness.fsio inside the checkpoint
functions), never PyAV: the GPU machine runs training without it.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from likeness.errors import InputError
from likeness.jsonio import read_json_object
from likeness.ui import Progress, no_progress

LOSS_CSV = "loss.csv"
CHECKPOINT = "checkpoint.pt"


@dataclass
class RunState:
    step: int = 0
    seconds: float = 0.0  # training time spent, across chunks


class WeightAverage:
    """An exponential moving average of a network's weights and buffers (BatchNorm's
    running statistics too), kept beside the trained network: what is validated and
    exported when a run asks for it. Started from the network as it is (for a
    fine-tune: the weights it starts from), so early on it stays close to them; WiSE-FT's
    lesson (interpolating a fine-tune with its start holds up better on data neither
    saw) without choosing the mix by hand."""

    def __init__(self, network, decay: float) -> None:
        import copy

        self.decay = decay
        self.network = copy.deepcopy(network).eval()
        for p in self.network.parameters():
            p.requires_grad_(False)

    def update(self, network) -> None:
        import torch

        with torch.no_grad():
            live = network.state_dict()
            for name, mine in self.network.state_dict().items():
                if mine.is_floating_point():
                    mine.mul_(self.decay).add_(live[name].to(mine.dtype), alpha=1 - self.decay)
                else:
                    mine.copy_(live[name])


def warmup_cosine(step: int, base: float, warmup: int, steps: int, floor: float) -> float:
    """The learning rate at `step`: linear warm-up to `base` over `warmup` steps, then a
    cosine down to `floor * base` at `steps`."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


class Trainable(Protocol):
    """What `run_chunk` needs of a trainer; `train` has `steps`, `log_every` and
    `checkpoint_every`."""

    out: Path
    state: RunState
    train: object

    def step(self) -> dict[str, float]: ...

    def checkpoint(self, final: bool = False) -> dict[str, float]:
        """Validate, save, and return the validation figures for the loss CSV."""
        ...


class LossLog:
    """Appends rows to RUN/loss.csv; floats kept to 6 significant digits."""

    def __init__(self, run: Path, fields: Sequence[str]) -> None:
        self.path = Path(run) / LOSS_CSV
        self.fields = tuple(fields)

    def append(self, row: dict) -> None:
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )


def trim_losses(run: Path, step: int) -> None:
    """Cut RUN/loss.csv back to its whole rows of steps up to `step`, the checkpoint a
    resumed run starts from: rows are logged between checkpoints, so after a kill those
    steps are trained (and logged) again, and a kill mid-write leaves half a row."""
    from likeness.fsio import atomic_output

    path = Path(run) / LOSS_CSV
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    keep = lines[:1]
    width = len(next(csv.reader(keep), []))
    for line in lines[1:]:
        row = next(csv.reader([line]), [])
        whole = line.endswith(("\n", "\r")) and len(row) == width
        if whole and row[0].isdigit() and int(row[0]) <= step:
            keep.append(line)
    if keep != lines:
        with atomic_output(path) as tmp:
            Path(tmp).write_text("".join(keep))


def read_losses(run: Path) -> list[dict]:
    with (Path(run) / LOSS_CSV).open() as fh:
        return [
            {k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
            for row in csv.DictReader(fh)
        ]


def parse_sets(items: Sequence[str]) -> dict:
    """`--set key=value` items as config overrides; a value that reads as JSON is that
    JSON (numbers, booleans, lists), any other value a string."""
    import json

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set wants key=value, got {item!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def config_overrides(
    path: Path | None,
    preset_name: str | None,
    overrides: dict | None,
    check_preset: Callable[[str], object],
) -> dict:
    """Training config fields from a JSON file, --preset and --set, later ones winning;
    `check_preset` raises on an unknown preset name."""
    data = read_json_object(path, "training config") if path is not None else {}
    if preset_name:
        check_preset(preset_name)
        data["preset"] = preset_name
    data.update(overrides or {})
    return data


def open_run(
    out: Path,
    resume: bool,
    train: object | None,
    overrides: dict | None,
    train_cls: type,
    config_cls: type,
    preset: Callable[[str], object],
) -> tuple[dict | None, object, object]:
    """(checkpoint or None, training config, model config) for a run folder. A new run
    starts from `train` (or the defaults) with `overrides` and the model of its preset,
    and refuses a folder that already holds a run; `resume` takes the checkpoint's own
    configs, `overrides` on top."""
    import torch

    path = Path(out) / CHECKPOINT
    if resume:
        if not path.is_file():
            raise InputError(f"--resume: no {CHECKPOINT} in {out}")
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        config = train_cls.from_dict({**ckpt["train"], **(overrides or {})})
        trim_losses(out, int(ckpt["state"]["step"]))
        return ckpt, config, config_cls.from_dict(ckpt["config"])
    if path.exists():
        raise InputError(f"{out} already holds a run: pass --resume or another --out")
    base = dataclasses.asdict(train or train_cls())
    config = train_cls.from_dict({**base, **(overrides or {})})
    return None, config, preset(config.preset)


def save_checkpoint(out: Path, checkpoint: dict) -> None:
    """RUN/checkpoint.pt, replaced only when completely written."""
    import torch

    from likeness.fsio import atomic_output

    Path(out).mkdir(parents=True, exist_ok=True)
    # Through a Python file: torch's own path writer turns a full disk into an opaque
    # RuntimeError, while a file object's OSError stays in the chain for the CLI.
    with atomic_output(Path(out) / CHECKPOINT) as tmp, open(tmp, "wb") as fh:
        torch.save(checkpoint, fh)


def run_chunk(
    trainer: Trainable,
    csv_fields: Sequence[str],
    *,
    minutes: float | None = None,
    steps: int | None = None,
    progress: Progress | None = None,
) -> RunState:
    """Train until `train.steps`, `steps` more steps, or `minutes` pass. Logs the mean of
    each `log_every` steps to RUN/loss.csv, checkpoints every `checkpoint_every` and once
    more at the end unless the last step was one; SIGTERM/SIGINT finish the step, save
    and return. `progress` (a `likeness.ui.Progress`) counts the run's steps, from the
    step it resumed at."""
    tr = trainer.train
    state = trainer.state
    stop_at = tr.steps if steps is None else min(tr.steps, state.step + steps)
    deadline = time.monotonic() + minutes * 60 if minutes else None
    with (progress or no_progress)("training", stop_at) as advance:
        advance(state.step)
        _train_until(trainer, LossLog(trainer.out, csv_fields), stop_at, deadline, advance)
    return state


def _train_until(trainer: Trainable, log: LossLog, stop_at: int, deadline, advance) -> None:
    tr, state = trainer.train, trainer.state
    interrupted = False

    def _handler(signum, frame):
        nonlocal interrupted
        interrupted = True

    old = {s: signal.signal(s, _handler) for s in (signal.SIGTERM, signal.SIGINT)}
    running: dict[str, float] = {}
    count = 0
    saved_at = -1
    try:
        while state.step < stop_at and not interrupted:
            t0 = time.monotonic()
            metrics = trainer.step()
            state.seconds += time.monotonic() - t0
            for k, v in metrics.items():
                running[k] = running.get(k, 0.0) + v
            count += 1
            advance()
            # The chunk's last step checkpoints here, in its one loss.csv row: logged
            # first and checkpointed after the loop, it would get a second row.
            last = (
                state.step >= stop_at
                or interrupted
                or (deadline is not None and time.monotonic() > deadline)
            )
            at_checkpoint = state.step % tr.checkpoint_every == 0 or last
            if state.step % tr.log_every == 0 or at_checkpoint:
                row = {k: v / count for k, v in running.items()}
                if at_checkpoint:
                    row.update(trainer.checkpoint(final=last))
                    saved_at = state.step
                log.append({"step": state.step, "time_s": state.seconds, **row})
                running, count = {}, 0
            if last:
                break
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if saved_at != state.step:
            row = {k: v / count for k, v in running.items()} if count else {}
            row.update(trainer.checkpoint(final=True))
            log.append({"step": state.step, "time_s": state.seconds, **row})
