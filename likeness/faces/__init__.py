"""Faces: detection, landmarks, aligned crops, smoothing and paste-back.

Importing this package loads nothing (no model, no LiteRT): the names below are
resolved on first use, and `FaceStack()` loads the models.
"""

from __future__ import annotations

from likeness.lazy import lazy_exports

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

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
