"""`likeness dataset pack`: real videos and photos -> a training pack (pack_format.py).

Per video: the face tracker runs over every `every`-th frame, the largest face is cut
out as an aligned crop (from the tracker's smoothed landmarks, so the crop does not
jitter), the crops become one H.264 clip and the landmarks, irises, pose and crop
parameters of the same frames one .npz. A photo becomes one PNG crop and its .npz.
Frames without a face are left out of both and counted; a file without any face is
skipped with a warning.

Everything is written into a hidden folder beside the pack and renamed into place at
the end, so a pack on disk is always complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from likeness.datasets.corpus import CORPUS_MANIFEST, is_corpus, manifest_rows
from likeness.datasets.identities import SplitTable, identity_for, load_split
from likeness.datasets.pack_format import (
    ARRAY_DTYPES,
    CLIPS_DIR,
    MANIFEST_NAME,
    PACK_FORMAT,
    PACK_VERSION,
    PHOTOS_DIR,
    SPLIT_NAME,
    SPLITS,
)
from likeness.errors import InputError, NoFaceError, OutputError
from likeness.fsio import install_dir, make_temp_dir
from likeness.hashing import sha256_file
from likeness.media.suffixes import is_media_name
from likeness.ui import Progress, no_progress

if TYPE_CHECKING:
    import numpy as np

# numpy, OpenCV, PyAV and the face stack load inside the functions that use them: the
# CLI imports this module for its defaults and must start fast.


# Chosen so the corpus pack (18,600 source frames, 89 photos) stays under 20 MiB: it
# travels to a GPU machine. Measured: 19.0 MiB = clips 6.4 MB (about 700 bytes a frame
# at CRF 26; 36-39 dB PSNR against the crops written), arrays 4.5 MB, photo PNGs 8.7 MB.
# CRF 24 would add about 1.5 MB; every frame would nearly double clips and arrays.
DEFAULT_EVERY = 2
DEFAULT_CRF = 26
# x264 `slow` is a few % smaller than `medium` at the same CRF, and 256 px crops encode
# far faster than the face stack runs, so the slower preset costs almost nothing.
DEFAULT_PRESET = "slow"

# Landmark and iris coordinates are rounded to this many crop pixels (the mesh itself is
# good to about a pixel): float16's low mantissa bits become zeros and the arrays
# compress to about half (measured: 1/8 px, 414 instead of 705 bytes a frame).
COORD_STEP = 1 / 8

Warn = Callable[[str], None]


@dataclass(frozen=True)
class PackConfig:
    size: int = 256  # crop side in pixels
    every: int = DEFAULT_EVERY  # use every N-th video frame
    crf: int = DEFAULT_CRF
    preset: str = DEFAULT_PRESET
    max_frames_per_clip: int | None = None  # rows kept per video, None = all
    split_file: Path | None = None  # None = the split.tsv shipped with likeness
    force: bool = False  # replace an existing pack
    align_scale: float = 1.0  # AlignConfig.scale
    align_shift: float = 0.1  # AlignConfig.shift
    # False: each frame's own landmarks and irises are stored, not the tracker's One Euro
    # output (the crop window is still cut from smoothed ones, so it does not jitter).
    # The smoothed pack keeps only 0.35-0.83 of the mouth's motion, so a generator
    # trained on it learns to open the mouth less than its keypoints ask.
    smooth_keypoints: bool = True

    def __post_init__(self) -> None:
        if not 32 <= self.size <= 2048 or self.size % 2:
            raise InputError(f"crop size must be an even number from 32 to 2048, got {self.size}")
        if self.every < 1:
            raise InputError(f"--every must be 1 or more, got {self.every}")
        if not 0 <= self.crf <= 51:
            raise InputError(f"--crf must be between 0 and 51, got {self.crf}")
        if self.max_frames_per_clip is not None and self.max_frames_per_clip < 1:
            raise InputError(
                f"--max-frames-per-clip must be 1 or more, got {self.max_frames_per_clip}"
            )


@dataclass(frozen=True)
class Source:
    path: Path  # resolved
    name: str  # as the manifest records it: relative to the folder given, or the file name
    expected_sha256: str | None = None  # from a corpus MANIFEST.tsv


@dataclass
class PackReport:
    path: Path
    items: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # sources without any face
    bytes: int = 0
    seconds: float = 0.0

    @property
    def frames(self) -> int:
        return sum(item["frames"] for item in self.items)

    @property
    def frames_without_face(self) -> int:
        return sum(item["frames_without_face"] for item in self.items)

    def by_split(self) -> dict[str, dict[str, int]]:
        """split -> identities, videos, photos, frames (video rows only)."""
        table = {}
        for split in SPLITS:
            items = [i for i in self.items if i["split"] == split]
            table[split] = {
                "identities": len({i["identity"] for i in items}),
                "videos": sum(i["kind"] == "video" for i in items),
                "photos": sum(i["kind"] == "photo" for i in items),
                "frames": sum(i["frames"] for i in items if i["kind"] == "video"),
            }
        return table


# --- finding the inputs -------------------------------------------------------------


def find_sources(srcs: Sequence[str | os.PathLike[str]]) -> list[Source]:
    """Files as given, and the media files in folders (a corpus folder through its
    MANIFEST.tsv, any other folder recursively); each file once."""
    if not srcs:
        raise InputError("give at least one video, photo or folder to pack")
    found: dict[Path, Source] = {}
    for given in map(Path, srcs):
        if not given.exists():
            raise InputError(f"no such file or folder: {given}")
        if given.is_dir():
            listed = _corpus_sources(given) if is_corpus(given) else None
            for source in listed if listed is not None else _folder_sources(given):
                found.setdefault(source.path, source)
        else:
            from likeness.media import check_input_file

            path = check_input_file(given)
            found.setdefault(path, Source(path, given.name))
    if not found:
        names = ", ".join(str(s) for s in srcs)
        raise InputError(f"no video or photo found in {names}")
    return list(found.values())


def _corpus_sources(root: Path) -> list[Source]:
    sources = []
    for row in manifest_rows(root):
        path = root / row["file"]
        if not path.is_file():
            raise InputError(f"{CORPUS_MANIFEST} lists {row['file']} but {path} is missing")
        sources.append(Source(path.resolve(), row["file"], row.get("sha256") or None))
    return sources


def _folder_sources(root: Path) -> list[Source]:
    sources = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # Hidden folders (our own temporary packs among them) and finished packs hold
        # crops, not sources.
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not is_pack_dir(here / d)
        )
        for name in sorted(filenames):
            if name.startswith(".") or not is_media_name(name):
                continue
            path = here / name
            sources.append(Source(path.resolve(), path.relative_to(root).as_posix()))
    return sources


def is_pack_dir(path: Path) -> bool:
    try:
        manifest = json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == PACK_FORMAT


def assign_ids(names: Sequence[str], kinds: Sequence[str]) -> list[str]:
    """File stems as item ids, unique (case-insensitively, for case-folding file
    systems): videos claim their stems first, a photo that clashes becomes `<stem>-photo`,
    anything else that clashes `<stem>-2`, `<stem>-3`..."""
    ids: list[str | None] = [None] * len(names)
    taken: set[str] = set()
    order = sorted(range(len(names)), key=lambda i: kinds[i] != "video")
    for i in order:
        base = _safe_id(Path(names[i]).stem)
        candidates = [base]
        if kinds[i] == "photo":
            candidates.append(f"{base}-photo")
        candidates += (f"{base}-{n}" for n in range(2, len(names) + 3))
        chosen = next(c for c in candidates if c.lower() not in taken)
        taken.add(chosen.lower())
        ids[i] = chosen
    return ids


def _safe_id(stem: str) -> str:
    """File-name-safe id: our own names only ever come from this."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")
    return cleaned or "item"


# --- geometry -----------------------------------------------------------------------


def _iris_centres(face) -> np.ndarray:
    """(2, 3) iris centres, subject's right eye first; from the eye rings' centres when
    the iris model did not run."""
    import numpy as np

    if face.irises is not None:
        return np.asarray(face.irises[:, 0, :], dtype=np.float64)
    from likeness.faces.types import LEFT_EYE_RING, RIGHT_EYE_RING

    lm = face.landmarks
    return np.stack([lm[list(RIGHT_EYE_RING)].mean(0), lm[list(LEFT_EYE_RING)].mean(0)])


class _Rows:
    """Per-frame arrays of one item, collected as they come."""

    def __init__(self) -> None:
        self.landmarks: list[np.ndarray] = []
        self.irises: list[np.ndarray] = []
        self.pose: list[tuple[float, float, float]] = []
        self.frame_index: list[int] = []
        self.params: list[tuple[float, float, float, float]] = []

    def __len__(self) -> int:
        return len(self.frame_index)

    def add(self, face, crop, frame_index: int, indices: list[int]) -> None:
        from likeness.faces.geometry import apply_affine_3d

        self.landmarks.append(apply_affine_3d(crop.matrix, face.landmarks[indices][:, :3]))
        self.irises.append(apply_affine_3d(crop.matrix, _iris_centres(face)[:, :3]))
        pose = face.pose.as_tuple() if face.pose is not None else (float("nan"),) * 3
        self.pose.append(tuple(pose))
        self.frame_index.append(frame_index)
        p = crop.params
        self.params.append((p.cx, p.cy, p.half, p.angle))

    def save(self, path: Path) -> None:
        import numpy as np

        arrays = {
            "landmarks": np.stack(self.landmarks),
            "irises": np.stack(self.irises),
            "pose": np.asarray(self.pose),
            "frame_index": np.asarray(self.frame_index),
            "params": np.asarray(self.params),
        }
        for name in ("landmarks", "irises"):
            arrays[name] = np.round(arrays[name] / COORD_STEP) * COORD_STEP
        # Fortran order puts each coordinate's values over time side by side, which zlib
        # compresses better (np.load restores the (N, L, 3) view transparently).
        typed = {k: np.asfortranarray(v).astype(ARRAY_DTYPES[k]) for k, v in arrays.items()}
        np.savez_compressed(path, **typed)


# --- writing ------------------------------------------------------------------------


class _Packer:
    """Writes items into the temporary pack folder; one instance per pack."""

    def __init__(self, tmp: Path, config: PackConfig, stack, progress: Progress):
        from likeness.faces import AlignConfig
        from likeness.faces.regions import KEY_LANDMARKS

        self.tmp = tmp
        self.config = config
        self.stack = stack
        self.progress = progress
        self.align = AlignConfig(config.size, config.align_scale, config.align_shift)
        self.indices = list(KEY_LANDMARKS)

    def video(self, source: Source, item_id: str, info) -> dict | None:
        from likeness.faces import FaceTracker, TrackerConfig, align_face
        from likeness.media import VideoWriter, iter_frames

        cfg = self.config
        fps = (info.fps or 25.0) / cfg.every
        rel = f"{CLIPS_DIR}/{item_id}.mp4"
        rows, missing = _Rows(), 0
        tracker = FaceTracker(self.stack, TrackerConfig(smooth=cfg.smooth_keypoints))
        framing = None if cfg.smooth_keypoints else _SmoothFraming(TrackerConfig().smoothing)
        total = max(-(-info.frames // cfg.every), 1) if info.frames else None
        with contextlib.ExitStack() as exits:
            writer = None
            advance = exits.enter_context(self.progress(source.name, total))
            # closing(): stopping early (--max-frames-per-clip) closes the file now.
            # strict=False: a clip whose container promises more frames than decode
            # (the corpus' lrd-sample.mp4 declares 266, 209 decode) gives what it has;
            # one such file must not end a 20-minute pack.
            frames = exits.enter_context(
                contextlib.closing(iter_frames(source.path, every=cfg.every, strict=False))
            )
            for frame in frames:
                advance(1)
                faces = tracker.update(frame.image, frame.time)
                if not faces:
                    missing += 1
                    continue
                framed = faces[0] if framing is None else framing(faces[0], frame.time)
                crop = align_face(frame.image, framed, self.align)
                if writer is None:  # opened at the first face: no face, no file
                    writer = exits.enter_context(
                        VideoWriter(self.tmp / rel, fps, crf=cfg.crf, preset=cfg.preset)
                    )
                writer.write(crop.image)
                rows.add(faces[0], crop, frame.index, self.indices)
                if cfg.max_frames_per_clip and len(rows) >= cfg.max_frames_per_clip:
                    break
        if not rows:
            return None
        rows.save(self.tmp / CLIPS_DIR / f"{item_id}.npz")
        return {
            "file": rel,
            "arrays": f"{CLIPS_DIR}/{item_id}.npz",
            "frames": len(rows),
            "fps": round(fps, 6),
            "every": cfg.every,
            "frames_without_face": missing,
        }

    def photo(self, source: Source, item_id: str) -> dict | None:
        import cv2

        from likeness.faces import align_face
        from likeness.media import read_image

        with self.progress(source.name, 1) as advance:
            rgb = read_image(source.path)
            faces = self.stack.analyze(rgb)  # largest first
            advance(1)
        if not faces:
            return None
        crop = align_face(rgb, faces[0], self.align)
        rel = f"{PHOTOS_DIR}/{item_id}.png"
        bgr = cv2.cvtColor(crop.image, cv2.COLOR_RGB2BGR)
        # Level 9: photos are most of a pack's bytes; 3 % smaller than level 3 on the
        # corpus for 50 ms a photo, and decoding is as fast.
        ok, png = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            raise OutputError(f"cannot encode the crop of {source.name} as PNG")
        (self.tmp / rel).write_bytes(png.tobytes())
        rows = _Rows()
        rows.add(faces[0], crop, 0, self.indices)
        rows.save(self.tmp / PHOTOS_DIR / f"{item_id}.npz")
        return {
            "file": rel,
            "arrays": f"{PHOTOS_DIR}/{item_id}.npz",
            "frames": 1,
            "fps": 0.0,
            "every": 1,
            "frames_without_face": 0,
        }


class _SmoothFraming:
    """The crop window of unsmoothed faces: the face with its landmarks and irises
    through the One Euro filter the tracker would have used (same scale), so raw
    keypoints come in the crops a smoothed pack would have cut."""

    def __init__(self, smoothing) -> None:
        from likeness.faces.smooth import OneEuroFilter

        self.landmarks = OneEuroFilter(smoothing)
        self.irises = OneEuroFilter(smoothing)

    def __call__(self, face, t: float):
        import dataclasses

        if face.landmarks is None:
            return face
        scale = max(face.interocular(), 1.0)
        irises = None if face.irises is None else self.irises(face.irises, t, scale=scale)
        return dataclasses.replace(
            face, landmarks=self.landmarks(face.landmarks, t, scale=scale), irises=irises
        )


def write_pack(
    srcs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    config: PackConfig | None = None,
    *,
    stack=None,
    progress: Progress | None = None,
    warn: Warn | None = None,
) -> PackReport:
    """Pack `srcs` (files and folders) into the folder `output`; see the module doc.

    Args:
        srcs: videos, photos and folders (a folder with MANIFEST.tsv: the files it lists).
        output: the pack folder, written beside itself and renamed into place.
        config: frame step, crop size, CRF, split file, `force` to replace a pack.
        stack: a FaceStack to reuse (default: a new one).
        progress: a `likeness.ui.Progress`, one bar per source.
        warn: called with a one-line note for each source left out.

    Returns:
        the `PackReport`: items written, sources skipped, bytes, seconds.

    Raises:
        InputError: a missing source, an output inside a source, an existing pack
            without `force`. NoFaceError: no face in any source. MediaError: an
            unreadable file. OutputError: the pack cannot be written.
    """
    from likeness.media import probe

    config = config or PackConfig()
    warn = warn or (lambda message: None)
    started = time.monotonic()
    output = _check_output(Path(output), config.force)
    split = load_split(config.split_file)
    sources = find_sources(srcs)
    _refuse_overlap(output, sources)
    infos = [probe(s.path) for s in sources]  # every file checked before any work
    kinds = ["photo" if info.kind == "image" else "video" for info in infos]
    ids = assign_ids([s.name for s in sources], kinds)
    if stack is None:
        from likeness.faces import FaceStack

        stack = FaceStack()

    report = PackReport(output)
    tmp = make_temp_dir(output)
    try:
        (tmp / CLIPS_DIR).mkdir()
        (tmp / PHOTOS_DIR).mkdir()
        packer = _Packer(tmp, config, stack, progress or no_progress)
        for source, info, kind, item_id in zip(sources, infos, kinds, ids, strict=True):
            entry = packer.video(source, item_id, info) if kind == "video" else None
            if kind == "photo":
                entry = packer.photo(source, item_id)
            if entry is None:
                report.skipped.append(source.name)
                warn(f"no face in {source.name}: skipped")
                continue
            report.items.append(_item(source, item_id, kind, entry, split, warn))
        if not report.items:
            raise NoFaceError(f"no face found in any of the {len(sources)} file(s) given")
        shutil.copyfile(split.path, tmp / SPLIT_NAME)
        manifest = _manifest(config, split, report.items)
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        install_dir(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.bytes = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    report.seconds = time.monotonic() - started
    return report


def _item(
    source: Source, item_id: str, kind: str, entry: dict, split: SplitTable, warn: Warn
) -> dict:
    sha = sha256_file(source.path)
    if source.expected_sha256 and source.expected_sha256.lower() != sha:
        warn(f"{source.name} differs from its {CORPUS_MANIFEST} sha256")
    identity = identity_for(source.name)
    return {
        "id": item_id,
        "kind": kind,
        "source": source.name,
        "source_sha256": sha,
        "identity": identity,
        "split": split.split_for(identity),
        **entry,
    }


def _manifest(config: PackConfig, split: SplitTable, items: list[dict]) -> dict:
    from likeness import __version__
    from likeness.faces.regions import KEY_LANDMARKS

    settings = asdict(config)
    settings["split_file"] = split.path.name
    del settings["force"]
    return {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "likeness": __version__,
        "crop": {"size": config.size, "scale": config.align_scale, "shift": config.align_shift},
        "landmark_indices": list(KEY_LANDMARKS),
        "split": {"file": SPLIT_NAME, "sha256": split.sha256},
        # Not part of the format's contract: how this pack was made, for the record.
        "settings": settings,
        "items": items,
    }


# --- the output folder --------------------------------------------------------------


def _check_output(output: Path, force: bool) -> Path:
    parent = output.parent
    if not parent.is_dir():
        raise OutputError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to {parent}: permission denied")
    if output.exists() or output.is_symlink():
        if not force:
            raise OutputError(f"{output} already exists: use --force to replace it")
        # --force replaces a pack, never anything else someone pointed -o at by mistake.
        empty_dir = output.is_dir() and not output.is_symlink() and not any(output.iterdir())
        if output.is_symlink() or not (is_pack_dir(output) or empty_dir):
            raise OutputError(
                f"{output} exists and is not a likeness pack: not replacing it, even with --force"
            )
    return output.absolute()


def _refuse_overlap(output: Path, sources: list[Source]) -> None:
    resolved = output.resolve()
    for source in sources:
        if resolved in source.path.parents:
            raise OutputError(f"{source.name} is inside the pack {output} being replaced")
