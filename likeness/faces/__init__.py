"""Faces: detection, landmarks, aligned crops, smoothing and paste-back.

Importing this package loads no model; `FaceStack()` does.
"""

from likeness.faces.align import AlignConfig, AlignedCrop, align_face, warp_crop
from likeness.faces.paste import PasteConfig, paste_back
from likeness.faces.stack import FaceStack, FaceStackConfig, FaceTracker, TrackerConfig, pick_face
from likeness.faces.types import Detection, Face, HeadPose

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
    "align_face",
    "paste_back",
    "pick_face",
    "warp_crop",
]
