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
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from likeness.generator.model import GeneratorModel

_LOCK = threading.Lock()
_MODELS: dict[tuple, GeneratorModel] = {}
_KEEP = 2  # weights folders kept loaded (the shipped one and one more)


def load_generator(weights: Path | None, device: str) -> GeneratorModel:
    """`GeneratorModel.from_pretrained(weights, device)`, loaded once per process."""
    from likeness.generator.model import DEFAULT_WEIGHTS, WEIGHTS_NAME, GeneratorModel

    folder = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    try:
        stat = (folder / WEIGHTS_NAME).stat()
        key = (str(folder.resolve()), device, stat.st_size, stat.st_mtime_ns)
    except OSError:
        # Missing weights: from_pretrained says so in its own words.
        return GeneratorModel.from_pretrained(folder, device)
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = GeneratorModel.from_pretrained(folder, device)
            while len(_MODELS) >= _KEEP:
                _MODELS.pop(next(iter(_MODELS)))
            _MODELS[key] = model
        return model
