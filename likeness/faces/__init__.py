"""Faces: detection, landmarks, aligned crops, smoothing and paste-back.

Importing this package loads nothing (no model, no LiteRT): the names below are
resolved on first use, and `FaceStack()` loads the models.
"""

from __future__ import annotations

from likeness.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "likeness.faces.align": ("AlignConfig", "AlignedCrop", "align_face", "warp_crop"),
        "likeness.faces.geometry": ("affine_scale",),
        "likeness.faces.paste": ("PasteConfig", "paste_back"),
        "likeness.faces.stack": (
            "FaceStack",
            "FaceStackConfig",
            "FaceTracker",
            "TrackerConfig",
            "pick_face",
        ),
        "likeness.faces.types": ("Detection", "Face", "HeadPose"),
    },
)
