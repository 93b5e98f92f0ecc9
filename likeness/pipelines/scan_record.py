"""The scan result of one file, typed: `ScanRecord` and its parts, and its JSON line.

`ScanRecord.to_dict()` gives the `likeness-scan/1` object (schema in `scan.py`) with
its keys in schema order, `to_json_line()` the exact line the JSONL holds, and
`ScanRecord.from_dict()` reads one back (what `scan --resume` keeps). Keys a line holds
beyond the schema (a newer likeness, another tool) are carried through in `extra`, at
the top level and in the provenance findings, so reading and writing a line never drops
them. The provenance findings' inner objects (manifest summary, watermark, store record)
stay the dicts `provenance.verify` makes: that package owns their fields.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from likeness import __version__
from likeness.errors import InputError
from likeness.jsonio import json_safe
from likeness.provenance.verification import FindingInfo, ManifestState

SCHEMA = "likeness-scan/1"

Box = tuple[float, float, float, float]


def _box(value) -> Box | None:
    return None if value is None else tuple(value)


def _opt_float(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return value


@dataclass
class ScanError:
    kind: str  # an error kind ("media", "bad input", ...) or "internal"
    message: str

    @classmethod
    def from_dict(cls, data: dict) -> ScanError:
        return cls(kind=data.get("kind"), message=data.get("message"))


@dataclass
class Sampling:
    every: int
    max_frames: int

    @classmethod
    def from_dict(cls, data: dict) -> Sampling:
        return cls(every=data["every"], max_frames=data["max_frames"])


@dataclass
class FaceResult:
    """One face tracked through the sampled frames."""

    face: int
    frames: int
    video_score: float | None
    counted: bool  # whether this face takes part in the verdict
    largest_box: Box | None
    scores: list[tuple[int, float | None, float | None]]  # (frame, time_s, p)

    @classmethod
    def from_dict(cls, data: dict) -> FaceResult:
        return cls(
            face=data["face"],
            frames=data["frames"],
            video_score=_opt_float(data.get("video_score")),
            counted=bool(data["counted"]),
            largest_box=_box(data.get("largest_box")),
            scores=[(s[0], _opt_float(s[1]), _opt_float(s[2])) for s in data.get("scores") or []],
        )


@dataclass
class FrameResult:
    """One sampled frame; `score` is its most suspicious face's (None: no face)."""

    frame: int
    time: float | None
    faces: int
    score: float | None = None

    @classmethod
    def from_dict(cls, data: dict) -> FrameResult:
        return cls(data["frame"], _opt_float(data.get("time")), data["faces"],
                   _opt_float(data.get("score")))  # fmt: skip


@dataclass
class TopFrame:
    """One of the highest-scoring frames. Its thumbnail and heat overlay (JPEG bytes)
    are kept beside the record, in `FileScan.thumbnails` and `FileScan.heatmaps` by
    frame index, never in the JSON."""

    frame: int
    time: float | None
    face: int
    score: float | None
    box: Box

    @classmethod
    def from_dict(cls, data: dict) -> TopFrame:
        return cls(data["frame"], _opt_float(data.get("time")), data["face"],
                   _opt_float(data.get("score")), _box(data["box"]))  # fmt: skip


@dataclass
class ModelInfo:
    name: str
    weights_sha256: str

    @classmethod
    def from_dict(cls, data: dict) -> ModelInfo:
        return cls(name=data.get("name"), weights_sha256=data.get("weights_sha256"))


_PROVENANCE_KEYS = (
    "manifest",
    "verified",
    "reasons",
    "manifest_summary",
    "watermark",
    "store_match",
    "store_record",
)


@dataclass
class ProvenanceFindings:
    """What `provenance.verify` found: the manifest state, the watermark, the store.

    `manifest_summary`, `watermark` and `store_record` are verify's own dicts, kept as
    they are; findings beyond these fields (a newer verify) are carried in `extra`."""

    manifest: ManifestState
    verified: bool
    reasons: list[str] = field(default_factory=list)
    manifest_summary: dict | None = None  # "from_store": True when the store's manifest
    watermark: dict | None = None  # None: not checked
    store_match: Literal["payload", "sha256"] | None = None
    store_record: dict | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # keys scan.provenance_dict writes that older lines lack: optional in the JSON Schema
    json_optional: ClassVar[dict[str, object]] = {
        "validation_state": str | None,
        "findings": list[FindingInfo],
    }

    @property
    def watermark_found(self) -> bool:
        return bool((self.watermark or {}).get("found"))

    def to_dict(self) -> dict:
        return {**{k: getattr(self, k) for k in _PROVENANCE_KEYS}, **self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> ProvenanceFindings:
        known = {k: data.get(k) for k in _PROVENANCE_KEYS}
        known["reasons"] = list(known["reasons"] or [])
        extra = {k: v for k, v in data.items() if k not in _PROVENANCE_KEYS}
        return cls(**known, extra=extra)


# Top-level keys in schema order; each entry: (name, reader for a JSON value or None).
_PARTS = {
    "error": ScanError.from_dict,
    "sampling": Sampling.from_dict,
    "provenance": ProvenanceFindings.from_dict,
    "model": ModelInfo.from_dict,
}
_LISTS = {"faces": FaceResult.from_dict, "frames": FrameResult.from_dict,
          "top_frames": TopFrame.from_dict}  # fmt: skip


@dataclass
class ScanRecord:
    """One file's scan: the `likeness-scan/1` JSON line as a dataclass."""

    path: str
    name: str
    schema: Literal["likeness-scan/1"] = SCHEMA
    status: Literal["ok", "error"] = "ok"
    error: ScanError | None = None
    sha256: str | None = None
    kind: Literal["video", "image"] | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    duration_s: float | None = None
    sampling: Sampling | None = None
    frames_scanned: int = 0
    frames_with_face: int = 0
    faces: list[FaceResult] = field(default_factory=list)
    frames: list[FrameResult] = field(default_factory=list)
    video_score: float | None = None
    threshold: float | None = None
    verdict: Literal["manipulated", "likely-real", "no-face", "error"] | None = None
    top_frames: list[TopFrame] = field(default_factory=list)
    provenance: ProvenanceFindings | None = None
    provenance_error: str | None = None
    model: ModelInfo | None = None
    seconds: float = 0.0
    likeness: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)  # keys beyond the schema

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        out = {}
        for f in _FIELD_ORDER:
            value = getattr(self, f)
            if isinstance(value, ProvenanceFindings):
                value = value.to_dict()
            elif dataclasses.is_dataclass(value):
                value = _plain(dataclasses.asdict(value))
            elif isinstance(value, list):
                value = [_plain(dataclasses.asdict(v)) for v in value]
            out[f] = value
        return {**out, **self.extra}

    def to_json_line(self) -> str:
        """The JSONL line (with its newline); non-finite numbers become null."""
        return json.dumps(json_safe(self.to_dict()), allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> ScanRecord:
        """A record from its JSON object; missing keys take the defaults above, unknown
        ones go to `extra`. InputError when a part has the wrong shape."""
        if not isinstance(data, dict):
            raise InputError("a scan record must be a JSON object")
        values: dict[str, Any] = {}
        try:
            for key in _FIELD_ORDER:
                if key not in data:
                    continue
                value = data[key]
                if key in _PARTS and value is not None:
                    value = _PARTS[key](value)
                elif key in _LISTS:
                    value = [_LISTS[key](v) for v in value or []]
                values[key] = value
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
            raise InputError(f"damaged scan record ({key}: {type(err).__name__})") from None
        values.setdefault("path", None)
        values.setdefault("name", None)
        extra = {k: v for k, v in data.items() if k not in _FIELD_SET}
        return cls(**values, extra=extra)


# The library's name for a scan's result (likeness.scan returns one): the same class.
ScanResult = ScanRecord


def _plain(value):
    """Tuples (boxes, score triples) as the lists JSON reads back."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# JSON key order: schema first, then as declared.
_FIELD_ORDER = (
    "schema",
    *(f.name for f in dataclasses.fields(ScanRecord) if f.name not in ("schema", "extra")),
)
_FIELD_SET = frozenset(_FIELD_ORDER)
