"""The library: `likeness.scan`, `likeness.verify`, `likeness.animate`, typed.

    import likeness

    result = likeness.scan("clip.mp4")            # ScanResult: the scan's JSON line, typed
    result.verdict, result.video_score             # "likely-real", 0.0123
    check = likeness.verify("animated.mp4", trust=["likeness-root.pem"])
    check.manifest, check.verified, check.signer   # "trusted", True, "likeness ..."
    made = likeness.animate("photo.jpg", "out.mp4", motion="nod,blink")

One shape everywhere: `ScanResult` is the record every `scan --json` line holds
(`pipelines.scan_record.ScanRecord`), `Verification` the `verify --json` object; the
CLI, the Ray backend, the web app and a Python user all get these. Their JSON Schemas
are generated from the dataclasses and shipped in `likeness/schemas/` (`schema_path`).

`scan` keeps one `Scanner` (detector and face models loaded) per configuration, so a
program that scans many files, or a web app, loads the models once; a lock makes one
scanner scan one file at a time (its face models are not thread-safe), so calls from
several threads are safe and queue on the same configuration.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from likeness.errors import InputError
from likeness.pipelines.configs import AnimateConfig, ScanConfig
from likeness.pipelines.scan_record import ScanRecord, ScanResult
from likeness.provenance.verification import Verification

if TYPE_CHECKING:
    from likeness.pipelines.animate import AnimateResult
    from likeness.pipelines.scan import FileScan, Scanner
    from likeness.ui import Progress

__all__ = [
    "AnimateConfig",
    "ScanConfig",
    "ScanResult",
    "Verification",
    "animate",
    "generate_schemas",
    "report_html",
    "scan",
    "scan_file",
    "schema_path",
    "verify",
]

SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_BASE = "https://likeness.invalid/schemas/"  # an id, never fetched
# shipped file name -> the dataclass it describes
SCHEMAS: dict[str, type] = {
    "scan-record.schema.json": ScanRecord,
    "verification.schema.json": Verification,
}

_SCANNERS: dict[ScanConfig, tuple[Scanner, threading.Lock]] = {}
_SCANNERS_LOCK = threading.Lock()
_KEEP_SCANNERS = 2  # each holds a detector and the face models (~100 MB)


def _config(config: ScanConfig | None, options: dict[str, Any]) -> ScanConfig:
    config = config or ScanConfig()
    if not options:
        return config
    known = {f.name for f in dataclasses.fields(ScanConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"unknown scan option(s) {unknown}: use {', '.join(sorted(known))}")
    if "trust" in options:
        options = {**options, "trust": tuple(Path(p) for p in options["trust"])}
    if options.get("weights") is not None:
        options = {**options, "weights": Path(options["weights"])}
    return dataclasses.replace(config, **options)


def _scanner(config: ScanConfig) -> tuple[Scanner, threading.Lock]:
    with _SCANNERS_LOCK:
        found = _SCANNERS.get(config)
        if found is None:
            from likeness.pipelines.scan import Scanner

            if config.trust:
                from likeness.provenance.verify import load_trust

                load_trust(config.trust)  # a bad trust file is bad input, before models
            found = (Scanner(config), threading.Lock())
            while len(_SCANNERS) >= _KEEP_SCANNERS:
                _SCANNERS.pop(next(iter(_SCANNERS)))
            _SCANNERS[config] = found
        return found


def scan_file(path: str | Path, config: ScanConfig | None = None, **options: Any) -> FileScan:
    """`scan`, with the top frames' thumbnails and heat overlays (JPEG bytes) the HTML
    report shows: a `FileScan` (`.record` is the `ScanResult`)."""
    scanner, lock = _scanner(_config(config, options))
    with lock:
        return scanner.scan_file(Path(path))


def scan(path: str | Path, config: ScanConfig | None = None, **options: Any) -> ScanResult:
    """Score one video or image for face manipulation and read its provenance.

    Args:
        path: a video or an image.
        config: a `ScanConfig`; None: the defaults of `likeness scan`.
        **options: `ScanConfig` fields over `config` (`every=5`, `provenance=False`,
            `trust=["root.pem"]`, `weights="detector/"`, `device="cuda"`).

    Returns:
        the `ScanResult` (the JSON line `scan --json` writes, as a dataclass):
        `verdict`, `video_score`, `threshold`, `faces`, `frames`, `provenance`... A file
        that cannot be read gives `status == "error"` and its `error`, never an
        exception (as one bad file in a folder scan).

    Raises:
        InputError: an unknown option or a bad trust file. ModelError: no detector
        weights or face models.
    """
    return scan_file(path, config, **options).record


def report_html(scans: Sequence[FileScan]) -> str:
    """The self-contained HTML report of `scan --html` for these `scan_file` results."""
    from likeness.pipelines.report import render_report

    records = [s.record for s in scans]
    thumbnails = {s.record.path: s.thumbnails for s in scans if s.thumbnails}
    heatmaps = {s.record.path: s.heatmaps for s in scans if s.heatmaps}
    return render_report(records, thumbnails, heatmaps)


def verify(
    path: str | Path, trust: Sequence[str | Path] = (), *, max_frames: int = 120
) -> Verification:
    """Where a file came from and whether that can be trusted (`likeness verify`).

    Args:
        path: an MP4, JPEG or PNG (or any video or image: no manifest then).
        trust: root certificates (PEM) of signers you trust; without one a valid
            manifest reads `valid-untrusted`.
        max_frames: frames the watermark detector reads.

    Returns:
        the `Verification`: `manifest` (trusted, valid-untrusted, tampered, invalid,
        no-manifest), `verified`, `findings` (c2pa's status codes by name), `reasons`,
        `watermark`, `store_record`, `signer`.

    Raises:
        InputError: a missing file or a bad trust file. MediaError: a file that is not
        readable media.
    """
    from likeness.provenance.verify import verify_file

    verdict = verify_file(Path(path), [Path(p) for p in trust], max_frames=max_frames)
    return Verification.from_verdict(verdict)


def animate(
    photo: str | Path,
    out: str | Path,
    driving: str | Path | None = None,
    *,
    motion: str | None = None,
    config: AnimateConfig | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> AnimateResult:
    """Animate a portrait photo with a driving video or scripted motion into an MP4
    that is watermarked, C2PA-signed and recorded in the local store (`likeness animate`).

    Args:
        photo: the portrait (its largest face, or `face=N`).
        out: the MP4 to write (replaced only when complete).
        driving: a video whose head motion and expressions the photo follows.
        motion: scripted motion instead ("nod,blink,smile,talk,look-left").
        config: an `AnimateConfig`; **options: its fields over it (`region="eyes"`).
        progress: a `likeness.ui.Progress`, advanced once per frame written.

    Returns:
        the `AnimateResult`: `output`, `frames`, `fps`, `sign` (manifest, payload).

    Raises:
        InputError, NoFaceError, MediaError, ModelError, ProvenanceError (no keys: run
        `likeness keys init`).
    """
    from likeness.pipelines.animate import animate as run

    config = config or AnimateConfig()
    if options:
        known = {f.name for f in dataclasses.fields(AnimateConfig)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"unknown animate option(s) {unknown}: use {', '.join(sorted(known))}")
        config = dataclasses.replace(config, **options)
    return run(
        Path(photo),
        Path(out),
        Path(driving) if driving is not None else None,
        config,
        motion=motion,
        progress=progress,
    )


# ---------------------------------------------------------------- JSON Schemas


def generate_schemas() -> dict[str, str]:
    """file name -> the schema text generated from the dataclasses now."""
    from likeness.typeschema import dataclass_schema

    return {
        name: json.dumps(dataclass_schema(cls, SCHEMA_BASE + name), indent=2) + "\n"
        for name, cls in SCHEMAS.items()
    }


def write_schemas(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Regenerate the shipped schema files (after changing a record's dataclass):
    `python -c "import likeness.api as a; a.write_schemas()"`."""
    from likeness.fsio import atomic_output

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate_schemas().items():
        with atomic_output(folder / name) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
        written.append(folder / name)
    return written


def schema_path(name: str = "scan-record.schema.json") -> Path:
    """A shipped schema file: `scan-record.schema.json` or `verification.schema.json`."""
    if name not in SCHEMAS:
        raise InputError(f"unknown schema {name!r}: use {', '.join(SCHEMAS)}")
    return SCHEMA_DIR / name
