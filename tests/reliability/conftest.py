"""Fixtures for trying to break likeness: a tiny generator, keys in a private home, and
the `likeness` command run as a real child process (so a kill, a crash or a leaked
traceback is seen as a user would see it)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests import samples
from tests.conftest import MODELS_ROOT

PHOTO_SIZE = 256


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def child_env(home: Path) -> dict[str, str]:
    """The environment of a child `likeness`: this home, one torch thread (two cores are
    shared with the test runner), no colour or terminal tricks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIKENESS_")}
    env.update(
        LIKENESS_HOME=str(home),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="200",
        PYTHONUNBUFFERED="1",
    )
    return env


def likeness_argv(*args: object) -> list[str]:
    return [sys.executable, "-m", "likeness.cli", *(str(a) for a in args)]


def run_likeness(home: Path, *args: object, timeout: float = 180, cwd: Path | None = None) -> Run:
    """`likeness ARGS` in a child process with LIKENESS_HOME=home."""
    proc = subprocess.run(
        likeness_argv(*args),
        env=child_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def make_home(path: Path) -> Path:
    """A LIKENESS_HOME whose face models point at the installed ones."""
    path.mkdir(parents=True, exist_ok=True)
    models = path / "models"
    if MODELS_ROOT.is_dir() and not models.exists():
        models.symlink_to(MODELS_ROOT, target_is_directory=True)
    return path


def tiny_detector(folder: Path) -> Path:
    """An untrained tiny detector that never says manipulated (plumbing, not verdicts)."""
    import torch

    from likeness.detector.calibrate import Calibration
    from likeness.detector.config import preset
    from likeness.detector.model import Decision, save_weights
    from likeness.detector.network import FaceClassifier

    torch.manual_seed(0)
    decision = Decision(calibration=Calibration("platt", 1.0, 0.0), threshold=1.0)
    save_weights(FaceClassifier(preset("tiny")), folder, decision)
    return folder


def make_keyed_home(path: Path) -> Path:
    """`make_home`, then `likeness keys init --no-passphrase` in it."""
    home = make_home(path)
    result = run_likeness(home, "keys", "init", "--no-passphrase")
    assert result.code == 0, result.text
    return home


@pytest.fixture(scope="session")
def keyed_home(tmp_path_factory) -> Path:
    """A home with keys (no passphrase), shared by the tests that only need to sign."""
    return make_keyed_home(tmp_path_factory.mktemp("keyed-home"))


@pytest.fixture(scope="session")
def portrait(tmp_path_factory, astronaut: np.ndarray) -> Path:
    """A 256 px one-face photo."""
    folder = tmp_path_factory.mktemp("portrait")
    small = cv2.resize(astronaut, (PHOTO_SIZE, PHOTO_SIZE), interpolation=cv2.INTER_AREA)
    path = folder / "photo.png"
    path.write_bytes(samples.png_bytes(small))
    return path


@pytest.fixture(scope="session")
def driving_clip(tmp_path_factory, astronaut: np.ndarray) -> Path:
    """A 12-frame 256 px face clip with audio."""
    folder = tmp_path_factory.mktemp("driving")
    return samples.face_video(folder / "driving.mp4", astronaut, frames=12, size=PHOTO_SIZE,
                              audio=True)  # fmt: skip
