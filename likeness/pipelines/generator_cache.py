"""One loaded generator per weights file and device, reused by every animate job of a
process.

`likeness animate` loads the model once anyway; a long-lived process (`likeness serve`,
a Python user calling `likeness.animate` in a loop) would otherwise read and build it
again for every request: about 10 s per animate on this 2-core CPU under load, measured
by the web app's tests. The key holds the weights file's size and modification time, so
replacing the weights in place is picked up. The model keeps no per-job state (the
appearance and keypoints of a job live in the job), so jobs can share it; callers that
render from several threads at once must serialise themselves (the web app does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from likeness.generator.model import GeneratorModel

T = TypeVar("T")
_LOCK = threading.Lock()
_MODELS: dict[str, dict[tuple, object]] = {}  # kind -> key -> loaded model


def cached_load(
    kind: str, folder: Path, device: str, load: Callable[[Path, str], T], keep: int
) -> T:
    """`load(folder, device)`, once per weights file (path, size, modification time) and
    device in this process, keeping the `keep` latest of this `kind`. Missing weights go
    straight to `load`, which says what is missing in its own words."""
    from likeness.weights_io import WEIGHTS_NAME

    try:
        stat = (folder / WEIGHTS_NAME).stat()
    except OSError:
        return load(folder, device)
    key = (str(folder.resolve()), device, stat.st_size, stat.st_mtime_ns)
    with _LOCK:
        models = _MODELS.setdefault(kind, {})
        model = models.get(key)
        if model is None:
            model = load(folder, device)
            while len(models) >= keep:
                models.pop(next(iter(models)))
            models[key] = model
        return model  # type: ignore[return-value]


def load_generator(weights: Path | None, device: str) -> GeneratorModel:
    """`GeneratorModel.from_pretrained(weights, device)`, loaded once per process; the
    shipped folder and one more stay loaded."""
    from likeness.generator.model import DEFAULT_WEIGHTS, GeneratorModel

    folder = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    return cached_load("generator", folder, device, GeneratorModel.from_pretrained, keep=2)
