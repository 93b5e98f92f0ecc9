"""`likeness bench generator`, its inputs: held-out clips and photos, cropped and
measured once (from the corpus' test split or from a pack's), and their keypoints moved
into each clip's first crop window as animate and training see them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from likeness.errors import InputError
from likeness.ui import Progress, no_progress

if TYPE_CHECKING:
    from likeness.faces import FaceStack

FRAMES = {False: 60, True: 24}  # sampled evenly from each clip (full, --quick)
QUICK_CLIPS, QUICK_PHOTOS = 2, 2


@dataclass
class Clip:
    """One driving or ground-truth clip, already cropped and measured."""

    name: str
    identity: str
    path: Path  # the file the crops came from (an ingredient of the outputs)
    crops: np.ndarray  # (N, S, S, 3) uint8, each frame in the first frame's crop window
    matrices: np.ndarray  # (N, 2, 3) frame -> that frame's crop, in crop pixels
    keypoints: np.ndarray  # (N, K, 3) normalised, each frame in its crop of `crops`
    # Each frame in its own aligned crop (what the motion extractor sees in animate)
    # and that crop's matrix (frame -> crop pixels); None where not kept.
    aligned: np.ndarray | None = None
    aligned_matrices: np.ndarray | None = None


@dataclass
class Photo:
    name: str
    identity: str
    path: Path
    crop: np.ndarray  # (S, S, 3)
    keypoints: np.ndarray  # (K, 3)


@dataclass(frozen=True)
class Sources:
    """Files to evaluate on (all held out) and where that choice came from."""

    videos: tuple[Path, ...]
    photos: tuple[Path, ...]
    origin: str


@dataclass
class BenchInputs:
    clips: list[Clip]
    photos: list[Photo]
    origin: str
    notes: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return list(dict.fromkeys([c.path for c in self.clips] + [p.path for p in self.photos]))


def held_out_sources(corpus: Path) -> Sources:
    """The corpus files whose identity is in the test split."""
    from likeness.datasets.corpus import CORPUS_MANIFEST, manifest_rows
    from likeness.datasets.identities import identity_for, load_split

    split = load_split()
    manifest = corpus / CORPUS_MANIFEST
    videos, photos = [], []
    for row in manifest_rows(corpus):
        if split.split_for(identity_for(row["file"])) != "test":
            continue
        path = corpus / row["file"]
        if not path.is_file():
            continue
        (videos if row["kind"] == "video" else photos).append(path)
    if not videos or not photos:
        raise InputError(f"{manifest} lists no test-split videos or photos ({split.path.name})")
    origin = f"{corpus}, test split ({split.path.name} sha256 {split.sha256[:12]})"
    return Sources(tuple(sorted(videos)), tuple(sorted(photos)), origin)


def _quick_pick(paths: list[Path], count: int, pixels: Callable[[Path], int]) -> list[Path]:
    """The `count` smallest files of distinct identities (a quick run should be quick)."""
    from likeness.datasets.identities import identity_for

    chosen: dict[str, Path] = {}
    for path in sorted(paths, key=lambda p: (pixels(p), p.name)):
        chosen.setdefault(identity_for(path), path)
    return list(chosen.values())[:count]


def first_per_identity(items: list[Any]) -> list[Any]:
    """The first item of each identity, in the order given."""
    chosen: dict[str, Any] = {}
    for item in items:
        chosen.setdefault(item.identity, item)
    return list(chosen.values())


def _even(n_total: int, n: int) -> np.ndarray:
    """`n` indices spread evenly over range(n_total), first and last included."""
    if n_total <= n:
        return np.arange(n_total)
    return np.unique(np.round(np.linspace(0, n_total - 1, n)).astype(int))


def load_clip(
    path: Path,
    stack: FaceStack,
    size: int,
    frames: int,
    smooth: bool = True,
    every: int | None = None,
) -> Clip | None:
    """Track the largest face over `frames` frames spread over the clip (or every
    `every`-th from the start); None if no face. `smooth` runs the tracker's One Euro
    filter over the frames read."""
    from likeness.datasets.identities import identity_for
    from likeness.faces import AlignConfig, FaceTracker, align_face, warp_crop
    from likeness.faces.stack import TrackerConfig
    from likeness.generator import keypoints as kpt
    from likeness.media import iter_frames, probe
    from likeness.pipelines.driving import settle

    if every is None:
        every = max(1, max(probe(path).frames, 1) // frames)
    tracker = FaceTracker(stack, TrackerConfig(smooth=smooth))
    align = AlignConfig(size=size)
    crops, matrices, kps, own, own_matrices = [], [], [], [], []
    first = None
    for frame in iter_frames(path, every=every):
        faces = tracker.update(frame.image, frame.time)
        if faces and not crops:
            # the source frame is measured as animate measures its first driving frame
            faces = settle(tracker, frame.image, frame.time, faces)
        if not faces:
            continue
        face = faces[0]
        # Every frame is cut with the first frame's crop window (the background stays,
        # the head moves inside it), as animate and training see driving frames.
        aligned = align_face(frame.image, face, align)
        if first is None:
            first = aligned
        own.append(aligned.image)
        own_matrices.append(aligned.matrix)
        crop = warp_crop(frame.image, first.params, size)
        crops.append(crop.image)
        matrices.append(crop.matrix)
        kps.append(kpt.from_face(face.landmarks, face.irises, crop.matrix, size))
        if len(crops) >= frames:
            break
    if len(crops) < 2:
        return None
    return Clip(
        path.name,
        identity_for(path),
        path,
        np.stack(crops),
        np.stack(matrices),
        np.stack(kps),
        np.stack(own),
        np.stack(own_matrices),
    )


def load_photo(path: Path, stack: FaceStack, size: int) -> Photo | None:
    from likeness.datasets.identities import identity_for
    from likeness.faces import AlignConfig, align_face
    from likeness.generator import keypoints as kpt
    from likeness.media import read_image

    image = read_image(path)
    faces = stack.analyze(image)
    if not faces:
        return None
    crop = align_face(image, faces[0], AlignConfig(size=size))
    kp = kpt.from_face(faces[0].landmarks, faces[0].irises, crop.matrix, size)
    return Photo(path.name, identity_for(path), path, crop.image, kp)


def corpus_inputs(
    sources: Sources, stack: FaceStack, size: int, quick: bool, progress: Progress | None = None
) -> BenchInputs:
    from likeness.media import probe

    videos, photos = list(sources.videos), list(sources.photos)
    if quick:
        videos = _quick_pick(videos, QUICK_CLIPS, lambda p: probe(p).width * probe(p).height)
        photos = _quick_pick(photos, QUICK_PHOTOS, lambda p: p.stat().st_size)
    inputs = BenchInputs([], [], sources.origin)
    with (progress or no_progress)("faces in test clips", len(videos) + len(photos)) as advance:
        _load_all(inputs, videos, photos, stack, size, quick, advance)
    return inputs


def _load_all(inputs: BenchInputs, videos, photos, stack, size: int, quick: bool, advance) -> None:
    from likeness.errors import MediaError

    # A corpus file the media layer refuses (lrd-sample.mp4 declares 266 frames and
    # holds 209) is left out with its one-line reason, not the end of the benchmark.
    for path in videos:
        try:
            clip = load_clip(path, stack, size, FRAMES[quick])
            reason = f"{path.name}: fewer than 2 frames with a face"
        except MediaError as err:
            clip, reason = None, str(err)
        advance()
        if clip is None:
            inputs.notes.append(f"{reason}, left out")
        else:
            inputs.clips.append(clip)
    for path in photos:
        try:
            photo = load_photo(path, stack, size)
            reason = f"{path.name}: no face found"
        except MediaError as err:
            photo, reason = None, str(err)
        advance()
        if photo is None:
            inputs.notes.append(f"{reason}, left out")
        else:
            inputs.photos.append(photo)


def pack_inputs(pack_dir: Path, size: int, quick: bool) -> BenchInputs:
    """The test items of a training pack (crops and landmarks already made)."""
    from likeness.datasets.identities import default_split_path
    from likeness.datasets.pack_reader import Pack
    from likeness.faces.align import AlignParams, params_to_matrix
    from likeness.generator import keypoints as kpt

    # A pack split by another file could hold training identities under "test".
    pack = Pack.open(pack_dir, split_file=default_split_path())
    videos = pack.select(split="test", kind="video")
    photos = pack.select(split="test", kind="photo")
    if quick:
        videos = first_per_identity(videos)[:QUICK_CLIPS]
        photos = photos[:QUICK_PHOTOS]
    inputs = BenchInputs(
        [],
        [],
        f"pack {pack.root.name}, test split (crops every "
        f"{pack.manifest['settings'].get('every', '?')} frames, CRF "
        f"{pack.manifest['settings'].get('crf', '?')})",
    )
    factor = size / pack.crop_size
    for item in videos:
        idx = _even(item.frames, FRAMES[quick])
        arrays = pack.arrays(item).scaled(factor).rows(idx)
        if len(idx) < 2:
            continue
        matrices = np.stack(
            [params_to_matrix(AlignParams(*map(float, p)), size) for p in arrays.params]
        )
        own = pack.frames(item, size)[idx]
        crops, kps = rewindow(
            own,
            matrices,
            kpt.from_pack_arrays(arrays.landmarks, arrays.irises, size),
        )
        first = np.repeat(matrices[:1], len(matrices), axis=0)
        inputs.clips.append(
            Clip(
                Path(item.source).name,
                item.identity,
                pack.root / item.file,
                crops,
                first,
                kps,
                own,
                matrices,
            )
        )
    for item in photos:
        arrays = pack.arrays(item).scaled(factor)
        kp = kpt.from_pack_arrays(arrays.landmarks[0], arrays.irises[0], size)
        inputs.photos.append(
            Photo(
                Path(item.source).name,
                item.identity,
                pack.root / item.file,
                pack.frames(item, size)[0],
                kp,
            )
        )
    if not inputs.clips or not inputs.photos:
        raise InputError(f"pack {pack.root.name} holds no test-split videos or photos")
    return inputs


# ---------------------------------------------------------------- geometry helpers


def rewindow(
    crops: np.ndarray, matrices: np.ndarray, keypoints: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame aligned crops (a pack's) seen through the first frame's crop window,
    with their keypoints; pixels the window has but a crop lacks are mirrored in."""
    from likeness.faces.geometry import compose_affine, invert_affine
    from likeness.pipelines.driving import keypoints_between

    size = crops.shape[1]
    out_crops, out_kps = [], []
    for crop, kp, matrix in zip(crops, keypoints, matrices, strict=True):
        move = compose_affine(matrices[0], invert_affine(matrix))
        out_crops.append(
            cv2.warpAffine(
                crop, move, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
            )
        )
        out_kps.append(keypoints_between(kp, matrix, matrices[0], size))
    return np.stack(out_crops), np.stack(out_kps)


def to_first_crop(clip: Clip) -> np.ndarray:
    """The clip's keypoints (N, K, 3), all expressed in its first frame's crop (so head
    translation and roll since that frame show), normalised."""
    from likeness.pipelines.driving import keypoints_between

    size = clip.crops.shape[1]
    first = clip.matrices[0]
    return np.stack(
        [
            keypoints_between(kp, m, first, size)
            for kp, m in zip(clip.keypoints, clip.matrices, strict=True)
        ]
    )
