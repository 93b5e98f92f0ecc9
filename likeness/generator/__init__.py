"""Portrait animation: implicit-keypoint warping of a 3D appearance volume.

`networks/` holds one `nn.Module` per block, `model.py` the wrapper that owns weights
and device, `train.py` training; files, faces and writing are `likeness.pipelines.animate`'s.
Importing this package loads nothing: the names below resolve on first use.
"""

from __future__ import annotations

from likeness.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "likeness.generator.config": ("GeneratorConfig", "TrainConfig", "preset"),
        "likeness.generator.model": ("GeneratorModel", "GeneratorNetworks", "save_weights"),
        "likeness.generator.motion": ("MotionTransfer", "TransferConfig"),
        "likeness.generator.train": ("Trainer",),
    },
)
