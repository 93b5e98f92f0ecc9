"""The detector's training set: real and fake aligned face crops from a pack.

    likeness dataset fakes --pack PACK -o FAKES [--weights DIR ...] [--every N]

From each clip of the pack, every `every`-th frame is taken as a real crop, and each of
those frames also yields one fake, the fake families taking turns along the clip:

- generator-self: the likeness generator animates one frame of the same clip (fixed
  per clip, as `animate` keeps one photo) with this frame's keypoints, and the result
  is pasted back into that source crop (feathered mask, colour match), as `animate`
  pastes into the photo;
- generator-cross: another person of the same split (a photo or a frame of another
  clip, fixed per clip) is driven by this clip with relative motion transfer, and
  pasted back into that person's crop;
- the pure families of `likeness.datasets.families` (numpy in, numpy out): sbi (this
  frame blended onto itself through a landmark mask), swap (another person of the split
  warped onto this face, colour-matched and blended), lipsync (the lower face replaced
  by a low-resolution mouth of another person), lowres (the face rendered small and
  upsampled). swap and lipsync take their donor among the split's other people.

Every fake is stored with its mask (where and how much the crop changed), which the
detector's dense head learns to predict.

Generator families repeat for every `--weights` folder (earlier checkpoints are other
fake families). Photos give a real crop and one fake of a pure family each. Every video of crops,
real or fake, then goes through one lossy round trip drawn at random (H.264 at CRF
18-32, or JPEG at quality 60-95), so compression does not separate the classes.

Splits are the pack's (identity-disjoint, fixed in datasets/split.tsv); a cross fake
only ever mixes people of one split. The folder format is in datasets/fakes_format.py.

The fakes are NOT watermarked and NOT signed, on purpose: the folder is training data
for the detector, not a published output, and a watermark in every fake would hand the
detector a shortcut (learn the watermark, not the manipulation) that fails on any
generator but ours. Do not publish its images.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from likeness import __version__
from likeness.datasets.fakes_format import (
    FAKES_FORMAT,
    FAKES_VERSION,
    FakesWriter,
)
from likeness.errors import InputError, OutputError
from likeness.media import codecs
from likeness.pipelines.configs import PURE_FAMILIES, FakesConfig
from likeness.ui import no_progress

GENERATOR_FAMILIES = ("generator-self", "generator-cross")


@dataclass
class FakesReport:
    path: Path
    counts: dict = field(default_factory=dict)  # split -> family -> crops
    bytes: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _seed(*parts: object) -> list[int]:
    return [zlib.crc32(str(p).encode()) for p in parts]


def roundtrip(frames: list[np.ndarray], cfg: FakesConfig, rng: np.random.Generator):
    """One lossy round trip drawn for a whole video: (frames, label such as h264-crf23)."""
    if codecs.h264_available() and rng.random() < cfg.h264_share:
        crf = int(rng.integers(cfg.crf[0], cfg.crf[1] + 1))
        return codecs.h264_roundtrip(frames, crf), f"h264-crf{crf}"
    q = int(rng.integers(cfg.jpeg[0], cfg.jpeg[1] + 1))
    return [codecs.jpeg_roundtrip(f, q) for f in frames], f"jpeg-q{q}"


@dataclass
class _Clip:
    item: object  # PackItem
    frames: np.ndarray  # (N, S, S, 3)
    landmarks: np.ndarray  # (N, L, 3) crop pixels
    keypoints: np.ndarray | None  # (N, K, 3) normalised, when a generator is used


class FakesBuilder:
    def __init__(self, pack_path: Path, out: Path, config: FakesConfig, warn=None) -> None:
        from likeness.datasets.pack_reader import Pack

        self.config = config
        self.pack = Pack.open(pack_path)
        self.out = Path(out)
        if self.out.exists() and not config.force:  # before minutes of model loading
            raise OutputError(f"{self.out} exists: pass --force to replace it")
        self.warn = warn or (lambda message: None)
        self.models: list[tuple[str, object]] = []
        if config.generator:
            from likeness.generator.model import GeneratorModel

            folders = config.weights or (None,)
            for folder in folders:
                model = GeneratorModel.from_pretrained(folder, device=config.device)
                name = "shipped" if folder is None else Path(folder).resolve().name
                self.models.append((f"{name}-{(model.weights_hash or '')[:8]}", model))
            if len({tag for tag, _ in self.models}) != len(self.models):
                raise InputError("the same generator weights were given twice")
        self.slots: list[tuple[str, str]] = [
            (family, tag) for tag, _ in self.models for family in GENERATOR_FAMILIES
        ]
        self.slots += [(family, "") for family in config.families]
        self.report = FakesReport(self.out)
        self.paste_mask: np.ndarray | None = None  # animate's paste mask, at crop size

    # ------------------------------------------------------------ inputs

    def _load(self, item) -> _Clip:
        from likeness.generator import keypoints as kpt

        frames = self.pack.frames(item)
        arrays = self.pack.arrays(item)
        kp = None
        if self.models:
            kp = kpt.from_pack_arrays(arrays.landmarks, arrays.irises, self.pack.crop_size)
        return _Clip(item, frames, arrays.landmarks, kp)

    def _rows(self, item) -> list[int]:
        rows = list(range(0, item.frames, self.config.every))
        if self.config.max_frames_per_clip:
            rows = rows[: self.config.max_frames_per_clip]
        return rows

    # ------------------------------------------------------------ fakes

    def _render(self, model, source: np.ndarray, kp_source, kp_targets) -> list[np.ndarray]:
        from likeness.faces import paste_back
        from likeness.faces.align import AlignedCrop, AlignParams
        from likeness.faces.paste import PasteConfig, crop_mask

        size = source.shape[0]
        eye = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        # The source crop is the frame here: paste-back with the identity transform
        # blends the generated face into it exactly as `animate` blends into a photo.
        crop = AlignedCrop(
            source, eye, eye, AlignParams(size / 2, size / 2, size / 2, 0.0), (size, size)
        )
        if self.paste_mask is None or self.paste_mask.shape[0] != size:
            self.paste_mask = crop_mask(size, PasteConfig())
        appearance = model.extract_appearance(source)
        out = []
        bs = self.config.batch_size
        for start in range(0, len(kp_targets), bs):
            rendered = model.render(
                appearance, kp_source, np.asarray(kp_targets[start : start + bs])
            )
            out += [paste_back(source, face, crop, mask=self.paste_mask) for face in rendered]
        return out

    def _generator_fakes(self, clip: _Clip, family: str, tag: str, rows: list[int], sources, rng):
        """(frames, source item, source row, identity, video id) of one fake video."""
        from likeness.generator.motion import MotionTransfer

        model = dict(self.models)[tag]
        item = clip.item
        if family == "generator-self":
            s = int(rng.integers(clip.frames.shape[0]))
            frames = self._render(model, clip.frames[s], clip.keypoints[s], clip.keypoints[rows])
            return frames, item.id, s, item.identity, f"{item.id}/self/{tag}"
        others = [c for c in sources if c.item.identity != item.identity]
        if not others:
            return None
        src = others[int(rng.integers(len(others)))]
        s = int(rng.integers(src.frames.shape[0]))
        # Relative motion from the clip's first frame, as `animate` drives a photo.
        transfer = MotionTransfer(src.keypoints[s], clip.keypoints[0])
        targets = np.stack([transfer(clip.keypoints[j]) for j in rows])
        frames = self._render(model, src.frames[s], src.keypoints[s], targets)
        return frames, src.item.id, s, src.item.identity, f"{item.id}/cross/{tag}/{src.item.id}"

    def _pure(self, family: str, clip: _Clip, rows: list[int], donors, rng):
        """(images, masks) of one fake video of a pure family, or None when the family
        needs a donor and the split has no other person."""
        from likeness.datasets.families import make_forgery, needs_donor

        donor = None
        if needs_donor(family):
            others = [c for c in donors if c.item.identity != clip.item.identity]
            if not others:
                return None
            donor = others[int(rng.integers(len(others)))]
        images, masks = [], []
        for j in rows:
            made = make_forgery(
                family, clip.frames[j], clip.landmarks[j], rng,
                donor=None if donor is None else donor.frames[0],
                donor_lm=None if donor is None else donor.landmarks[0],
            )  # fmt: skip
            images.append(made.image)
            masks.append(made.mask)
        return images, masks

    # ------------------------------------------------------------ writing

    def _write_video(
        self, writer, images, rng, *, positions, source_rows, landmarks=None, masks=None,
        **columns,
    ) -> None:  # fmt: skip
        """One video of crops: one round trip for all, then one row per crop (with its
        mask, for fakes)."""
        coded, encoding = roundtrip(list(images), self.config, rng)
        for k, rgb in enumerate(coded):
            marks = None if landmarks is None else landmarks[k]
            mask = None if masks is None else masks[k]
            writer.add(
                rgb, marks, mask, frame=positions[k], source_frame=source_rows[k],
                encoding=encoding, **columns,
            )  # fmt: skip
            counts = self.report.counts.setdefault(columns["split"], {})
            counts[columns["family"]] = counts.get(columns["family"], 0) + 1

    def _sources(self, split: str) -> list[_Clip]:
        """Crops that cross fakes may animate: every photo of the split and one frame of
        every clip (loaded small: a source needs one frame only)."""
        out = []
        for item in self.pack.select(split):
            clip = self._load(item)
            s = int(
                np.random.default_rng(_seed(self.config.seed, "source", item.id)).integers(
                    len(clip.frames)
                )
            )
            out.append(
                _Clip(
                    item,
                    clip.frames[s : s + 1],
                    clip.landmarks[s : s + 1],
                    None if clip.keypoints is None else clip.keypoints[s : s + 1],
                )
            )
        return out

    def build(self, progress: Callable | None = None) -> FakesReport:
        cfg = self.config
        t0 = time.monotonic()
        items = [i for split in cfg.splits for i in self.pack.select(split)]
        if not items:
            raise InputError(f"pack {self.pack.root.name} has no items in {', '.join(cfg.splits)}")
        writer = FakesWriter(self.out, cfg.quality, cfg.force, cfg.mask_size)
        try:
            with (progress or no_progress)("making fakes", len(items)) as step:
                for split in cfg.splits:
                    self._split(writer, split, step)
            manifest = self._manifest(time.monotonic() - t0)
            writer.finish(manifest)
        except BaseException:
            writer.abort()
            raise
        self.report.bytes = writer.bytes
        self.report.seconds = time.monotonic() - t0
        return self.report

    def _split(self, writer: FakesWriter, split: str, step) -> None:
        cfg = self.config
        donor_families = {"generator-cross", "swap", "lipsync"}
        sources = self._sources(split) if any(f in donor_families for f, _ in self.slots) else []
        if sources and len({c.item.identity for c in sources}) < 2:
            self.report.notes.append(f"{split}: one identity only, no fakes that need a donor")
        for item in self.pack.select(split):
            rng = np.random.default_rng(_seed(cfg.seed, item.id))
            clip = self._load(item)
            base = {"identity": item.identity, "split": split, "item": item.id}
            if item.kind == "photo":
                self._write_video(
                    writer, [clip.frames[0]], rng, landmarks=clip.landmarks[:1], label=0,
                    family="real", video=item.id, positions=[0], source=item.id,
                    source_rows=[0], **base,
                )  # fmt: skip
                if cfg.families:
                    family = cfg.families[int(rng.integers(len(cfg.families)))]
                    self._write_pure(writer, family, clip, [0], sources, rng, base)
                step()
                continue
            rows = self._rows(item)
            self._write_video(
                writer, [clip.frames[j] for j in rows], rng, landmarks=clip.landmarks[rows],
                label=0, family="real", video=item.id, positions=rows, source=item.id,
                source_rows=rows, **base,
            )  # fmt: skip
            offset = int(rng.integers(len(self.slots)))
            for n, (family, tag) in enumerate(self.slots):
                mine = [j for k, j in enumerate(rows) if (k + offset) % len(self.slots) == n]
                if not mine:
                    continue
                if family in PURE_FAMILIES:
                    self._write_pure(writer, family, clip, mine, sources, rng, base)
                    continue
                made = self._generator_fakes(clip, family, tag, mine, sources, rng)
                if made is None:
                    continue
                frames, source, s, identity, video = made
                self._write_video(
                    writer, frames, rng, label=1, family=family, video=video, positions=mine,
                    source=source, source_rows=[s] * len(mine), weights=tag,
                    masks=[self.paste_mask] * len(mine), **{**base, "identity": identity},
                )  # fmt: skip
            step()

    def _write_pure(self, writer, family, clip: _Clip, rows, sources, rng, base) -> None:
        made = self._pure(family, clip, rows, sources, rng)
        if made is None:
            return
        images, masks = made
        item = clip.item
        self._write_video(
            writer, images, rng, label=1, family=family, video=f"{item.id}/{family}",
            positions=rows, source=item.id, source_rows=rows, masks=masks, **base,
        )  # fmt: skip

    def _manifest(self, seconds: float) -> dict:
        cfg = self.config
        settings = asdict(cfg)
        settings["weights"] = [str(p) for p in cfg.weights]
        settings.pop("force")
        return {
            "format": FAKES_FORMAT,
            "version": FAKES_VERSION,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "likeness": __version__,
            # Training data, never published: see the module docstring.
            "watermarked": False,
            "purpose": "detector training data; not watermarked or signed; do not publish",
            "pack": {
                "root": self.pack.root.name,
                "split_sha256": self.pack.manifest.get("split", {}).get("sha256"),
                "created_utc": self.pack.manifest.get("created_utc"),
                "crop": self.pack.manifest.get("crop"),
            },
            "landmark_indices": list(self.pack.landmark_indices),
            "generators": [tag for tag, _ in self.models],
            "settings": settings,
            "counts": self.report.counts,
            "h264": codecs.h264_available(),
            "seconds": round(seconds, 1),
        }


def make_fakes(
    pack: Path, out: Path, config: FakesConfig = FakesConfig(), progress=None, warn=None
) -> FakesReport:
    """Build a FAKES folder from a pack (see the module docstring)."""
    return FakesBuilder(pack, out, config, warn).build(progress)
