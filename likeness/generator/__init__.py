"""Portrait animation: implicit-keypoint warping of a 3D appearance volume.

`networks/` holds one `nn.Module` per block, `model.py` the wrapper that owns weights
and device, `train.py` training; files, faces and writing are `likeness.pipelines.animate`'s.
Importing this package loads nothing: the names below resolve on first use.
"""

from __future__ import annotations

from likeness.lazy import lazy_exports

_EXPORTS = {
    "GeneratorConfig": "likeness.generator.config",
    "TrainConfig": "likeness.generator.config",
    "preset": "likeness.generator.config",
    "GeneratorModel": "likeness.generator.model",
    "GeneratorNetworks": "likeness.generator.model",
    "save_weights": "likeness.generator.model",
    "MotionTransfer": "likeness.generator.motion",
    "TransferConfig": "likeness.generator.motion",
    "Trainer": "likeness.generator.train",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
