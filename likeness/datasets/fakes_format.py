"""The detector's training set on disk (a FAKES folder): its format, reader and writer.
numpy and OpenCV only (no torch): the fakes pipeline writes it, detector training reads it.

A FAKES folder, written by `likeness dataset fakes` (pipelines/fakes.py), format 2
(format 1, without masks, is still read):

    FAKES/
      manifest.json    {"format": "likeness-fakes", "version": 1, "watermarked": false,
                        "pack": {...}, "settings": {...}, "counts": {...}, ...}
      samples.csv      one row per crop, columns SAMPLE_COLUMNS
      landmarks.npz    "rows" (M,) int32 sample rows, "landmarks" (M, L, 3) float16: the
                       pack's KEY_LANDMARKS in crop pixels, for the real crops (fresh
                       self-blends are made from them during training)
      images/<split>/<row>.jpg   256 px aligned face crops, JPEG
      masks/<split>/<row>.png    for fakes: where and how much the crop was changed
                                 (8-bit, 255 = replaced), what the dense head learns

Sample columns: label (0 real, 1 fake), family (real, or a fake family: FAMILIES),
identity (the person whose face the crop shows), split (train, val, test: the
pack's identity-disjoint split), video (the crops that form one video: the sampled
frames of one clip, or one fake made from it), frame (the crop's place in that video:
the row of the clip it shows or follows), item (that clip or photo in the pack),
source and source_frame (the pack item and row whose appearance a generator fake
animates; for real and self-blended crops the item and frame themselves), weights (tag
of the generator checkpoint), encoding (the lossy round trip every crop of that video
went through, e.g. h264-crf23, jpeg-q81), mask (the mask file, empty for real crops and
fakes made without one).

Families group into the fake kinds that leave-one-family-out holds out together
(`family_group`): both generator families are one kind, `reenact`.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from likeness.errors import InputError, OutputError
from likeness.faces.regions import mesh_from_key_landmarks
from likeness.fsio import install_dir, make_temp_dir
from likeness.media import codecs

log = logging.getLogger(__name__)

FAKES_FORMAT = "likeness-fakes"
FAKES_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST_NAME = "manifest.json"
SAMPLES_NAME = "samples.csv"
LANDMARKS_NAME = "landmarks.npz"
IMAGES_DIR = "images"
MASKS_DIR = "masks"
REAL = "real"
FAMILIES = ("generator-self", "generator-cross", "sbi", "swap", "lipsync", "lowres")
# Family -> the kind of manipulation it stands for (what leave-one-family-out holds out).
GROUPS = {"generator-self": "reenact", "generator-cross": "reenact"}
SPLITS = ("train", "val", "test")
SAMPLE_COLUMNS = (
    "file",
    "label",
    "family",
    "identity",
    "split",
    "video",
    "frame",
    "item",
    "source",
    "source_frame",
    "weights",
    "encoding",
    "mask",
)


@dataclass(frozen=True)
class Sample:
    row: int
    file: str
    label: int
    family: str
    identity: str
    split: str
    video: str
    frame: int
    item: str
    source: str = ""
    source_frame: int = -1
    weights: str = ""
    encoding: str = ""
    mask: str = ""

    @property
    def group(self) -> str:
        return family_group(self.family)


def family_group(family: str) -> str:
    """The kind of fake a family stands for: `reenact` for both generator families."""
    return GROUPS.get(family, family)


def kinds() -> dict[str, tuple[str, ...]]:
    """Kind of fake -> its families, in FAMILIES order (`reenact`: both generator ones)."""
    out: dict[str, tuple[str, ...]] = {}
    for family in FAMILIES:
        out[family_group(family)] = (*out.get(family_group(family), ()), family)
    return out


class FakesSet:
    """An opened FAKES folder: rows listed, JPEG bytes read on demand (and cached)."""

    def __init__(self, root: Path, manifest: dict, samples: list[Sample], landmarks: dict):
        self.root = root
        self.manifest = manifest
        self.samples = samples
        self.landmark_indices = tuple(manifest.get("landmark_indices") or ())
        self._landmarks = landmarks  # sample row -> (L, 3) float32
        self._bytes: dict[int, bytes] = {}

    @classmethod
    def open(cls, path: str | Path) -> FakesSet:
        root = Path(path)
        if not (root / MANIFEST_NAME).is_file():
            raise InputError(f"{root} is not a detector training set (no {MANIFEST_NAME})")
        try:
            manifest = json.loads((root / MANIFEST_NAME).read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"cannot read {root / MANIFEST_NAME}: {err}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FAKES_FORMAT:
            raise InputError(f"{root} is not a detector training set ({MANIFEST_NAME} is not one)")
        if manifest.get("version") not in READABLE_VERSIONS:
            raise InputError(
                f"{root.name} is training-set format {manifest.get('version')}; this likeness "
                f"reads {FAKES_VERSION}: rebuild it with `likeness dataset fakes`"
            )
        samples = _read_samples(root)
        landmarks: dict[int, np.ndarray] = {}
        if (root / LANDMARKS_NAME).is_file():
            try:
                with np.load(root / LANDMARKS_NAME, allow_pickle=False) as data:
                    rows, marks = data["rows"], data["landmarks"].astype(np.float32)
            except (OSError, ValueError, KeyError) as err:
                raise InputError(f"cannot read {root / LANDMARKS_NAME}: {err}") from None
            landmarks = {int(r): m for r, m in zip(rows, marks, strict=True)}
        return cls(root, manifest, samples, landmarks)

    def select(self, split: str | None = None, label: int | None = None) -> list[Sample]:
        return [
            s
            for s in self.samples
            if (split is None or s.split == split) and (label is None or s.label == label)
        ]

    def read(self, sample: Sample) -> np.ndarray:
        data = self._bytes.get(sample.row)
        if data is None:
            path = self.root / sample.file
            try:
                data = path.read_bytes()
            except OSError as err:
                raise InputError(f"cannot read {path}: {err.strerror or err}") from None
            self._bytes[sample.row] = data
        rgb = codecs.decode_image(data)
        if rgb is None:
            raise InputError(f"{self.root.name}: {sample.file} does not decode")
        return rgb

    def mesh(self, sample: Sample) -> np.ndarray | None:
        """(468, 3) landmarks in crop pixels for a real crop, None when not stored."""
        key = self.key_landmarks(sample)
        if key is None:
            return None
        return mesh_from_key_landmarks(key, self.landmark_indices)

    def key_landmarks(self, sample: Sample) -> np.ndarray | None:
        """The pack's landmark rows (L, 3) in crop pixels, None when not stored."""
        key = self._landmarks.get(sample.row)
        if key is None or not self.landmark_indices:
            return None
        return key

    def mask(self, sample: Sample) -> np.ndarray | None:
        """(H, W) float32 in [0, 1]: where a fake crop was changed (smaller than the
        crop when the set was made with `--mask-size`); zeros for a real crop; None for a
        fake stored without one (format 1)."""
        if sample.label == 0:
            return None if sample.mask else np.zeros(self.read(sample).shape[:2], np.float32)
        if not sample.mask:
            return None
        path = self.root / sample.mask
        try:
            data = path.read_bytes()
        except OSError as err:
            raise InputError(f"cannot read {path}: {err.strerror or err}") from None
        grey = codecs.decode_grey(data)
        if grey is None:
            raise InputError(f"{self.root.name}: {sample.mask} does not decode")
        return grey.astype(np.float32) / 255.0


def _read_samples(root: Path) -> list[Sample]:
    path = root / SAMPLES_NAME
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    samples = []
    for n, raw in enumerate(rows):
        try:
            sample = Sample(
                row=n,
                file=raw["file"],
                label=int(raw["label"]),
                family=raw["family"],
                identity=raw["identity"],
                split=raw["split"],
                video=raw["video"],
                frame=int(raw["frame"]),
                item=raw["item"],
                source=raw.get("source") or "",
                source_frame=int(raw.get("source_frame") or -1),
                weights=raw.get("weights") or "",
                encoding=raw.get("encoding") or "",
                mask=raw.get("mask") or "",
            )
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path.name}: row {n + 2} is damaged") from None
        if sample.label not in (0, 1) or sample.split not in SPLITS:
            raise InputError(
                f"{path.name}: row {n + 2} has label {sample.label}, split {sample.split}"
            )
        for rel in (sample.file, sample.mask):
            if rel and root.resolve() not in (root / rel).resolve().parents:
                raise InputError(f"{path.name}: row {n + 2} points outside the folder")
        samples.append(sample)
    if not samples:
        raise InputError(f"{root.name} holds no samples")
    return samples


class FakesWriter:
    """Writes crops into a hidden folder beside the target; `finish()` adds the CSV,
    landmarks and manifest and renames the folder into place, so a half-built set never
    sits at the target path."""

    def __init__(
        self, target: Path, quality: int = 95, force: bool = False, mask_size: int = 0
    ) -> None:
        self.target = Path(target)
        parent = self.target.parent
        if not parent.is_dir():
            raise OutputError(f"output folder {parent} does not exist")
        if self.target.exists() and not force:
            raise OutputError(f"{self.target} exists: pass --force to replace it")
        self.tmp = make_temp_dir(self.target)
        self.quality = quality
        self.mask_size = mask_size
        self.rows: list[dict] = []
        self.landmark_rows: list[int] = []
        self.landmarks: list[np.ndarray] = []
        self.bytes = 0

    def add(
        self,
        rgb: np.ndarray,
        landmarks: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        **columns,
    ) -> int:
        """One crop (and, for a fake, its float mask in [0, 1]); returns its row."""
        row = len(self.rows)
        rel = f"{IMAGES_DIR}/{columns['split']}/{row:06d}.jpg"
        self._write(rel, codecs.encode_jpeg(rgb, self.quality))
        if mask is not None:
            columns["mask"] = f"{MASKS_DIR}/{columns['split']}/{row:06d}.png"
            mask = np.asarray(mask, np.float32)
            if 0 < self.mask_size < max(mask.shape):
                # Stored smaller (a set that must travel); readers resize it to the crop.
                size = (self.mask_size, self.mask_size)
                mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
            grey = np.clip(mask * 255 + 0.5, 0, 255).astype(np.uint8)
            self._write(columns["mask"], codecs.encode_png(grey))
        self.rows.append({"file": rel, **{k: columns.get(k, "") for k in SAMPLE_COLUMNS[1:]}})
        if landmarks is not None:
            self.landmark_rows.append(row)
            self.landmarks.append(np.asarray(landmarks, np.float16))
        return row

    def finish(self, manifest: dict) -> Path:
        with (self.tmp / SAMPLES_NAME).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=SAMPLE_COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)
        if self.landmarks:
            np.savez(
                self.tmp / LANDMARKS_NAME,
                rows=np.asarray(self.landmark_rows, np.int32),
                landmarks=np.stack(self.landmarks),
            )
        (self.tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
        install_dir(self.tmp, self.target)
        return self.target

    def _write(self, rel: str, data: bytes) -> None:
        path = self.tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.bytes += len(data)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
