"""The training pack: a folder of aligned face-crop clips and their per-frame arrays.

Written by `likeness dataset pack`, read by generator and detector training with
OpenCV and numpy only (the GPU machine has no PyAV). Layout, format version 1:

    PACK/
      manifest.json
      clips/<id>.mp4     H.264 yuv420p, crop_size x crop_size, one row per frame below
      clips/<id>.npz     per-frame arrays of that clip
      photos/<id>.png    one aligned crop of a photo
      photos/<id>.npz    its arrays (N = 1)

manifest.json:

    {"format": "likeness-pack", "version": 1,
     "created_utc": "...", "likeness": "0.1.0",
     "crop": {"size": 256, "scale": 1.0, "shift": 0.1},
     "landmark_indices": [...],         # mesh indices stored, = faces.regions.KEY_LANDMARKS
     "split": {"file": "split.tsv", "sha256": "..."},
     "items": [{"id": "st2-obama-clip1", "kind": "video" | "photo",
                "source": "videos/st2-obama-clip1.mp4", "source_sha256": "...",
                "identity": "obama", "split": "train" | "val" | "test",
                "file": "clips/st2-obama-clip1.mp4", "arrays": "clips/st2-obama-clip1.npz",
                "frames": 301, "fps": 12.5, "every": 2, "frames_without_face": 0}, ...]}

Arrays in each .npz, N rows (row k = frame k of the clip; frames without a face are
left out of both):

    landmarks    (N, L, 3) float16  KEY_LANDMARKS in crop pixels; z in the same pixel
                                    scale as x and y (mesh depth, relative)
    irises       (N, 2, 3) float16  iris centres, subject's right eye then left, crop px
    pose         (N, 3)    float32  yaw, pitch, roll in degrees (faces.pose conventions)
    frame_index  (N,)      int32    index of the frame in the source video
    params       (N, 4)    float32  crop in source pixels: cx, cy, half side, angle (rad)
"""

from __future__ import annotations

PACK_FORMAT = "likeness-pack"
PACK_VERSION = 1
MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "val", "test")
KINDS = ("video", "photo")
ARRAY_NAMES = ("landmarks", "irises", "pose", "frame_index", "params")
CLIPS_DIR = "clips"
PHOTOS_DIR = "photos"
SPLIT_NAME = "split.tsv"  # the split file, copied into the pack
# dtype of each array in an item's .npz, as written (readers widen float16 to float32).
ARRAY_DTYPES = {
    "landmarks": "float16",
    "irises": "float16",
    "pose": "float32",
    "frame_index": "int32",
    "params": "float32",
}
