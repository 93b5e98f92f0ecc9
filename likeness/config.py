"""Where likeness keeps its files, and which device it computes on."""

from __future__ import annotations

import os
from pathlib import Path

from likeness.errors import InputError


def home() -> Path:
    """LIKENESS_HOME, else $XDG_DATA_HOME/likeness, else ~/.local/share/likeness."""
    explicit = os.environ.get("LIKENESS_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "likeness"


def models_dir() -> Path:
    return home() / "models"


def keys_dir() -> Path:
    return home() / "keys"


def store_path() -> Path:
    return home() / "store.sqlite"


def choose_device(name: str = "auto") -> str:
    """Map `auto|cpu|cuda` to a torch device string; torch is imported only here."""
    name = name.lower()
    if name not in {"auto", "cpu", "cuda"}:
        raise InputError(f"unknown device {name!r}: use auto, cpu or cuda")
    if name == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if name == "cuda":
        raise InputError("--device cuda was asked for but no CUDA device is available")
    return "cpu"
