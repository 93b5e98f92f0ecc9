"""Faces: detection, landmarks, aligned crops, smoothing and paste-back.

Importing this package loads nothing (no model, no LiteRT): the names below are
resolved on first use, and `FaceStack()` loads the models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from likeness.faces.align import AlignConfig, AlignedCrop, align_face, warp_crop
    from likeness.faces.geometry import affine_scale
    from likeness.faces.paste import PasteConfig, paste_back
    from likeness.faces.stack import (
        FaceStack,
        FaceStackConfig,
        FaceTracker,
        TrackerConfig,
        pick_face,
    )
    from likeness.faces.types import Detection, Face, HeadPose

_EXPORTS = {
    "AlignConfig": "likeness.faces.align",
    "AlignedCrop": "likeness.faces.align",
    "align_face": "likeness.faces.align",
    "warp_crop": "likeness.faces.align",
    "affine_scale": "likeness.faces.geometry",
    "PasteConfig": "likeness.faces.paste",
    "paste_back": "likeness.faces.paste",
    "FaceStack": "likeness.faces.stack",
    "FaceStackConfig": "likeness.faces.stack",
    "FaceTracker": "likeness.faces.stack",
    "TrackerConfig": "likeness.faces.stack",
    "pick_face": "likeness.faces.stack",
    "Detection": "likeness.faces.types",
    "Face": "likeness.faces.types",
    "HeadPose": "likeness.faces.types",
}

__all__ = [
    "AlignConfig",
    "AlignedCrop",
    "Detection",
    "Face",
    "FaceStack",
    "FaceStackConfig",
    "FaceTracker",
    "HeadPose",
    "PasteConfig",
    "TrackerConfig",
    "affine_scale",
    "align_face",
    "paste_back",
    "pick_face",
    "warp_crop",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
