"""The options of the pipeline jobs, as dataclasses: `AnimateConfig` (`likeness animate`),
`ScanConfig` (`likeness scan`) and `FakesConfig` (`likeness dataset fakes`). The CLI
builds its flags' defaults from these fields (`likeness.config.default_of`), so this
module imports nothing heavy: the CLI loads it to draw its help."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from likeness.datasets.pack_format import SPLITS
from likeness.errors import InputError

KEYPOINT_SOURCES = ("mesh", "learned")
DEFAULT_FPS = 25.0  # scripted motion, when --fps is not given
# The fake families made without a model (datasets.families), in the fakes' turn order.
PURE_FAMILIES = ("sbi", "swap", "lipsync", "lowres")


@dataclass(frozen=True)
class AnimateConfig:
    """Options of `likeness animate`; the CLI flags map one to one onto these."""

    relative: bool = True  # driving motion measured against its first frame (--absolute)
    region: str = "all"  # all | pose | expression | eyes | lips
    multiplier: float = 1.0  # scales the expression change (and scripted amplitudes)
    smooth: bool = True  # One Euro filter on the driving keypoints
    keypoints: str = "mesh"  # mesh (face mesh) | learned (the model's motion extractor)
    paste_back: bool = True  # False: write the model's crop (--crop-only)
    crop_scale: float = 1.0  # source crop framing (AlignConfig.scale)
    audio: bool = True  # copy the driving video's audio
    device: str = "auto"
    weights: Path | None = None  # None: the shipped model
    batch_size: int = 8
    max_frames: int | None = None
    face: int | str = 0  # which face of the photo (or source video), largest first; "all"
    driver_face: int = 0  # which face of the driving video, largest first at each shot
    fps: float | None = None  # scripted motion only (default 25)
    # Several faces: face index -> its own driving clip (--drive 1=b.mp4), over `driving`.
    drive: tuple[tuple[int, Path], ...] = ()
    # A video source: the driver's head pose on top of the source's own (not only its
    # expression); the source video's audio instead of the driver's; and --loop: the
    # output lasts as long as the longer input, the shorter one starting over.
    transfer_pose: bool = False
    source_audio: bool = False
    loop: bool = False
    # A video source's appearance encoded every N frames (1: every frame, the most
    # faithful; more is faster, see README), the frames between rendered from it.
    keyframe_every: int = 1
    # A visible disclosure burnt into every frame (likeness.media.label); the manifest
    # records it. Off in the CLI (--label), on in the web app.
    label: bool = False
    label_text: str = "AI-generated"
    label_position: str = "bottom-right"  # bottom-right | bottom-left | top-right | top-left
    preview: Path | None = None  # also write a side-by-side (driver | output) video here
    # The diffusion refiner (likeness.generator.refiner) on the generator's render,
    # inside the face only; refiner_weights None: the shipped refiner.
    refine: bool = False
    refiner_weights: Path | None = None

    def __post_init__(self) -> None:
        from likeness.generator.motion import REGIONS

        if self.region not in REGIONS:
            raise InputError(f"unknown region {self.region!r}: use {', '.join(REGIONS)}")
        if self.keypoints not in KEYPOINT_SOURCES:
            raise InputError(
                f"unknown keypoints {self.keypoints!r}: use {', '.join(KEYPOINT_SOURCES)}"
            )
        if not (math.isfinite(self.multiplier) and 0 <= self.multiplier <= 5):
            raise InputError(f"--multiplier must be between 0 and 5, got {self.multiplier}")
        if not (math.isfinite(self.crop_scale) and 0.5 <= self.crop_scale <= 2.0):
            raise InputError(f"--crop-scale must be between 0.5 and 2, got {self.crop_scale}")
        if not 1 <= self.batch_size <= 256:
            raise InputError(f"--batch-size must be between 1 and 256, got {self.batch_size}")
        if self.max_frames is not None and self.max_frames < 1:
            raise InputError(f"--max-frames must be 1 or more, got {self.max_frames}")
        if self.face != "all" and not (
            isinstance(self.face, int) and not isinstance(self.face, bool) and self.face >= 0
        ):
            raise InputError(f"--face must be 0 or more, or all, got {self.face!r}")
        # Paths given as text in code (likeness.animate(..., drive=[(1, "b.mp4")])).
        object.__setattr__(self, "drive", tuple((i, Path(c)) for i, c in self.drive))
        if self.preview is not None:
            object.__setattr__(self, "preview", Path(self.preview))
        for index, _clip in self.drive:
            if not isinstance(index, int) or index < 0:
                raise InputError(f"--drive needs a face number 0 or more, got {index!r}")
        if len({index for index, _ in self.drive}) != len(self.drive):
            raise InputError("--drive names the same face twice")
        if not 1 <= self.keyframe_every <= 30:
            raise InputError(f"--keyframe-every must be 1-30, got {self.keyframe_every}")
        if self.label:
            from likeness.media.label import check_label

            check_label(self.label_text, self.label_position)
        if self.driver_face < 0:
            raise InputError(f"--driver-face must be 0 or more, got {self.driver_face}")
        if self.fps is not None and not (math.isfinite(self.fps) and 1 <= self.fps <= 120):
            raise InputError(f"--fps must be between 1 and 120, got {self.fps}")


@dataclass(frozen=True)
class ScanConfig:
    """Options of `likeness scan` (`device` is the resolved one: the CLI's `auto` becomes
    cpu or cuda before it gets here)."""

    every: int = 10  # sample every N-th frame (grows for long videos, see max_frames)
    max_frames: int = 300  # sampled frames per video, spread over its whole length
    max_faces: int = 4  # faces per frame, largest first
    weights: Path | None = None  # detector folder; None: the shipped detector
    trust: tuple[Path, ...] = ()  # C2PA trust anchors (PEM)
    provenance: bool = True
    provenance_frames: int = 120  # frames the watermark detector reads
    top_frames: int = 3
    device: str = "cpu"
    batch_size: int = 16  # face crops per detector call

    def __post_init__(self) -> None:
        if self.every < 1:
            raise InputError(f"--every must be 1 or more, got {self.every}")
        if self.max_frames < 1:
            raise InputError(f"--max-frames must be 1 or more, got {self.max_frames}")
        if not 1 <= self.max_faces <= 32:
            raise InputError(f"--max-faces must be 1-32, got {self.max_faces}")


@dataclass(frozen=True)
class FakesConfig:
    every: int = 6  # pack frames between sampled frames (packs keep every 2nd video frame)
    max_frames_per_clip: int | None = None  # sampled frames per clip, at most
    splits: tuple[str, ...] = SPLITS
    weights: tuple[Path, ...] = ()  # generator folders; empty: the shipped model
    generator: bool = True  # False: real crops and the pure families only
    families: tuple[str, ...] = PURE_FAMILIES  # pure families (datasets.families)
    quality: int = 95  # JPEG quality of the stored crops
    # Side of the stored masks in pixels (0: the crop's). Masks are smooth, and the
    # detector reads them at its map's 20-28 cells a side: 64 px stores the train and
    # val splits' 2,731 masks (`--every 4`) in 3.3 MB instead of 26, so the set (46 MB)
    # fits the GPU machine's 64 MiB carry (tools/gpu/train_detector.py).
    mask_size: int = 0
    h264_share: float = 0.6  # videos round-tripped through H.264 (the rest through JPEG)
    crf: tuple[int, int] = (18, 32)
    jpeg: tuple[int, int] = (60, 95)
    seed: int = 0
    device: str = "cpu"
    batch_size: int = 8
    force: bool = False

    def __post_init__(self) -> None:
        if self.every < 1:
            raise InputError(f"--every must be 1 or more, got {self.every}")
        if self.max_frames_per_clip is not None and self.max_frames_per_clip < 1:
            raise InputError("--max-frames-per-clip must be 1 or more")
        unknown = [s for s in self.splits if s not in SPLITS]
        if unknown or not self.splits:
            raise InputError(f"unknown split(s) {unknown}: use {', '.join(SPLITS)}")
        unknown = [f for f in self.families if f not in PURE_FAMILIES]
        if unknown:
            raise InputError(f"unknown fake family {unknown}: use {', '.join(PURE_FAMILIES)}")
        if not (self.generator or self.families):
            raise InputError("no fake family left: keep the generator or a pure family")
        if not 50 <= self.quality <= 100:
            raise InputError(f"--quality must be 50-100, got {self.quality}")
        if self.mask_size and not 16 <= self.mask_size <= 1024:
            raise InputError(f"--mask-size must be 0 or 16-1024, got {self.mask_size}")
