"""Read a training pack (format in pack_format.py) with numpy and OpenCV only.

Training runs on machines without PyAV, LiteRT or c2pa, so this module imports nothing
from likeness but its errors and the format constants.

>>> pack = Pack.open("corpus-pack")
>>> for item in pack.select(split="train", kind="video"):
...     frames = pack.frames(item, size=128)     # (N, 128, 128, 3) uint8 RGB
...     arrays = pack.arrays(item).scaled(128 / pack.crop_size)
"""

from __future__ import annotations

import hashlib
import json
import os
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from likeness.datasets.pack_format import (
    ARRAY_NAMES,
    KINDS,
    MANIFEST_NAME,
    PACK_FORMAT,
    PACK_VERSION,
    SPLITS,
)
from likeness.errors import InputError


@dataclass(frozen=True)
class PackItem:
    id: str
    kind: str  # 'video' | 'photo'
    identity: str
    split: str  # 'train' | 'val' | 'test'
    file: str  # relative to the pack root
    arrays: str
    frames: int  # rows in the clip and in its arrays
    fps: float  # of the clip (the source's divided by `every`); 0 for photos
    every: int
    source: str
    source_sha256: str
    frames_without_face: int = 0


@dataclass
class PackArrays:
    """Per-frame arrays of one item; coordinates in pixels of a crop_size crop."""

    landmarks: np.ndarray  # (N, L, 3) float32
    irises: np.ndarray  # (N, 2, 3) float32, subject's right eye first
    pose: np.ndarray  # (N, 3) float32 yaw, pitch, roll in degrees
    frame_index: np.ndarray  # (N,) int32, frame in the source video
    params: np.ndarray  # (N, 4) float32 crop in source pixels: cx, cy, half side, angle

    def __len__(self) -> int:
        return len(self.frame_index)

    def scaled(self, factor: float) -> PackArrays:
        """The same arrays for crops resized by `factor` (e.g. 128 / 256): landmark and
        iris x, y and z scale together; pose, frame index and source-space params do not."""
        return PackArrays(
            landmarks=self.landmarks * np.float32(factor),
            irises=self.irises * np.float32(factor),
            pose=self.pose,
            frame_index=self.frame_index,
            params=self.params,
        )

    def rows(self, index) -> PackArrays:
        """A subset of rows (an index, slice or mask), e.g. the frames of a training pair."""
        return PackArrays(
            self.landmarks[index],
            self.irises[index],
            self.pose[index],
            self.frame_index[index],
            self.params[index],
        )


_ITEM_FIELDS = {f.name: f for f in fields(PackItem)}


class Pack:
    """An opened pack: its manifest checked, its items listed; pixels load on demand."""

    def __init__(self, root: Path, manifest: dict, items: list[PackItem]) -> None:
        self.root = root
        self.manifest = manifest
        self.crop_size = int(manifest["crop"]["size"])
        self.landmark_indices: tuple[int, ...] = tuple(manifest["landmark_indices"])
        self.items = items
        self._by_id = {item.id: item for item in items}

    # --- opening ------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], split_file: str | os.PathLike[str] | None = None
    ) -> Pack:
        """Open and validate a pack; with `split_file`, also require that the pack was
        split by exactly that file (see `check_split`)."""
        root = Path(path)
        if not root.is_dir():
            what = "no such folder" if not root.exists() else "not a folder"
            raise InputError(f"cannot open pack {root}: {what}")
        manifest = _read_manifest(root)
        items = [_parse_item(root, raw, n) for n, raw in enumerate(manifest["items"])]
        seen: set[str] = set()
        for item in items:
            if item.id in seen:
                raise InputError(f"pack {root.name}: item id {item.id!r} appears twice")
            seen.add(item.id)
        pack = cls(root, manifest, items)
        if split_file is not None:
            pack.check_split(split_file)
        return pack

    def check_split(self, split_file: str | os.PathLike[str]) -> None:
        """Raise unless the pack was split by this file (same sha256): splits are never
        changed silently; a new split needs a new pack."""
        path = Path(split_file)
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise InputError(f"cannot read split file {path}: {exc.strerror or exc}") from None
        recorded = self.manifest.get("split", {}).get("sha256")
        if digest != recorded:
            raise InputError(
                f"pack {self.root.name} was split by a different split file than {path.name} "
                f"(sha256 {str(recorded)[:12]}..., this one {digest[:12]}...): re-pack with "
                "--split-file to use it"
            )

    # --- items --------------------------------------------------------------------

    def select(self, split: str | None = None, kind: str | None = None) -> list[PackItem]:
        if split is not None and split not in SPLITS:
            raise InputError(f"unknown split {split!r}: use {', '.join(SPLITS)}")
        if kind is not None and kind not in KINDS:
            raise InputError(f"unknown kind {kind!r}: use {', '.join(KINDS)}")
        return [
            item
            for item in self.items
            if (split is None or item.split == split) and (kind is None or item.kind == kind)
        ]

    def item(self, item_id: str) -> PackItem:
        try:
            return self._by_id[item_id]
        except KeyError:
            raise InputError(f"pack {self.root.name} has no item {item_id!r}") from None

    # --- pixels and arrays --------------------------------------------------------

    def frames(self, item: PackItem, size: int | None = None) -> np.ndarray:
        """All frames of an item as (N, s, s, 3) uint8 RGB, s = size or crop_size."""
        path = self.root / item.file
        if item.kind == "photo":
            try:
                bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            except cv2.error:  # OpenCV refuses some damaged headers (e.g. huge sizes) by raising
                bgr = None
            if bgr is None:
                raise InputError(f"pack {self.root.name}: cannot decode {item.file}")
            images = [bgr]
        else:
            images = _decode_video(path, self.root.name, item.file)
        side = self.crop_size
        if any(image.shape[:2] != (side, side) for image in images):
            # Checked before allocating the output: a damaged manifest may claim any size.
            raise InputError(
                f"pack {self.root.name}: {item.file} does not match the crop size "
                f"{side}x{side} in {MANIFEST_NAME}"
            )
        if len(images) != item.frames:
            raise InputError(
                f"pack {self.root.name}: {item.file} has {len(images)} frames, "
                f"the manifest says {item.frames}"
            )
        out = np.empty((len(images), *(2 * (size or self.crop_size,)), 3), dtype=np.uint8)
        for k, bgr in enumerate(images):
            out[k] = cv2.cvtColor(_resized(bgr, size), cv2.COLOR_BGR2RGB)
        return out

    def arrays(self, item: PackItem) -> PackArrays:
        path = self.root / item.arrays
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [name for name in ARRAY_NAMES if name not in data.files]
                if missing:
                    raise InputError(
                        f"pack {self.root.name}: {item.arrays} lacks {', '.join(missing)}"
                    )
                expected = self._expected_shapes(item)
                for name in ARRAY_NAMES:
                    # numpy allocates what a header claims before reading: check it first.
                    shape = _declared_shape(data, name)
                    if shape != expected[name]:
                        raise InputError(
                            f"pack {self.root.name}: {item.arrays} {name} has shape {shape}, "
                            f"expected {expected[name]}"
                        )
                raw = {name: data[name] for name in ARRAY_NAMES}
        # A damaged .npz fails in zipfile (BadZipFile, bad CRC; NotImplementedError for
        # flags or versions it does not support) or zlib, not only in numpy; numpy
        # tokenizes a damaged .npy header (TokenError).
        except (
            OSError,
            ValueError,
            EOFError,
            NotImplementedError,
            zipfile.BadZipFile,
            zlib.error,
            tokenize.TokenError,
        ) as exc:
            raise InputError(f"pack {self.root.name}: cannot read {item.arrays}: {exc}") from None
        arrays = PackArrays(
            landmarks=np.ascontiguousarray(raw["landmarks"], dtype=np.float32),
            irises=np.ascontiguousarray(raw["irises"], dtype=np.float32),
            pose=np.ascontiguousarray(raw["pose"], dtype=np.float32),
            frame_index=np.ascontiguousarray(raw["frame_index"], dtype=np.int32),
            params=np.ascontiguousarray(raw["params"], dtype=np.float32),
        )
        self._check_shapes(item, arrays)
        return arrays

    def _expected_shapes(self, item: PackItem) -> dict[str, tuple[int, ...]]:
        n, count = item.frames, len(self.landmark_indices)
        return {
            "landmarks": (n, count, 3),
            "irises": (n, 2, 3),
            "pose": (n, 3),
            "frame_index": (n,),
            "params": (n, 4),
        }

    def _check_shapes(self, item: PackItem, arrays: PackArrays) -> None:
        for name, shape in self._expected_shapes(item).items():
            got = getattr(arrays, name).shape
            if got != shape:
                raise InputError(
                    f"pack {self.root.name}: {item.arrays} {name} has shape {got}, expected {shape}"
                )


def _declared_shape(data, name: str) -> tuple[int, ...]:
    """The shape in an .npz member's .npy header, read without loading the array."""
    with data.zip.open(f"{name}.npy") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(handle)
    return tuple(shape)


def _resized(bgr: np.ndarray, size: int | None) -> np.ndarray:
    # Not media.images.resize_square: this reader imports nothing from likeness.media.
    if size is None or bgr.shape[:2] == (size, size):
        return bgr
    # INTER_AREA averages when shrinking (no aliasing); it is bilinear when enlarging.
    return cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)


def _decode_video(path: Path, pack_name: str, rel: str) -> list[np.ndarray]:
    if not path.is_file():
        raise InputError(f"pack {pack_name}: {rel} is missing")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InputError(f"pack {pack_name}: OpenCV cannot open {rel}")
        images = []
        while True:
            ok, bgr = capture.read()
            if not ok:
                return images
            images.append(bgr)
    finally:
        capture.release()


def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise InputError(f"{root} is not a likeness pack: it has no {MANIFEST_NAME}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"{root} is not a likeness pack: cannot read {MANIFEST_NAME} ({exc})"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != PACK_FORMAT:
        raise InputError(f"{root} is not a likeness pack: {MANIFEST_NAME} is for something else")
    version = manifest.get("version")
    if version != PACK_VERSION:
        raise InputError(
            f"pack {root.name} is format version {version}; this likeness reads version "
            f"{PACK_VERSION}: re-pack it with this version"
        )
    try:
        size = int(manifest["crop"]["size"])
        indices = manifest["landmark_indices"]
        items = manifest["items"]
    except (KeyError, TypeError, ValueError):
        raise InputError(
            f"pack {root.name}: {MANIFEST_NAME} lacks crop, landmarks or items"
        ) from None
    if size <= 0 or not isinstance(items, list) or not isinstance(indices, list):
        raise InputError(f"pack {root.name}: {MANIFEST_NAME} is damaged")
    if not all(isinstance(i, int) and 0 <= i < 478 for i in indices):
        raise InputError(f"pack {root.name}: landmark_indices are not face-mesh indices")
    return manifest


def _parse_item(root: Path, raw: object, number: int) -> PackItem:
    where = f"pack {root.name}, item {number}"
    if not isinstance(raw, dict):
        raise InputError(f"{where}: not an object")
    values = {}
    for name, spec in _ITEM_FIELDS.items():
        if name not in raw:
            if name == "frames_without_face":
                continue
            raise InputError(f"{where}: missing {name!r}")
        caster = {"int": int, "float": float, "str": str}[str(spec.type)]
        try:
            values[name] = caster(raw[name])
        except (TypeError, ValueError):
            raise InputError(f"{where}: {name!r} is not a {spec.type}") from None
    item = PackItem(**values)
    if item.kind not in KINDS:
        raise InputError(f"{where}: unknown kind {item.kind!r}")
    if item.split not in SPLITS:
        raise InputError(f"{where}: unknown split {item.split!r}")
    if item.frames < 1:
        raise InputError(f"{where}: {item.frames} frames")
    for rel in (item.file, item.arrays):
        _check_inside(root, rel, where)
    return item


def _check_inside(root: Path, rel: str, where: str) -> None:
    """Files a manifest names must be inside the pack: a manifest from elsewhere must
    not make us read /etc/passwd or a neighbour's files."""
    path = (root / rel).resolve()
    if root.resolve() not in path.parents:
        raise InputError(f"{where}: {rel!r} points outside the pack")
    if not path.is_file():
        raise InputError(f"{where}: {rel} is missing")
