"""Scan one file: faces in sampled frames, a calibrated score per face crop, a pooled
video score per face, a verdict, and the file's provenance.

`Scanner(config).scan_file(path)` returns a `FileScan`: `record` is the file's
`ScanRecord` (scan_record.py; its JSON line has the schema below, `SCHEMA`),
`thumbnails` the JPEG bytes of its top frames for the HTML report and `heatmaps` their
heat overlays when there are any (neither in the JSON). A file that cannot be read
gives a record with `status: "error"`, never an exception: one bad file must not stop
a folder.

Sampling: every `every`-th frame, at most `max_frames` of them, spread over the whole
video (`every` grows for long videos so the samples reach the end). Faces: tracked
through the samples (FaceTracker), at most `max_faces` per frame, largest first; each
cut as the training crops were cut (`align_face`, 256 px FFHQ framing) and scored.
Video score per face: calibrated crop probabilities pooled by the trimmed top-k mean
(pooling.py) stored with the weights; the file's score is its most suspicious face's
(among faces seen in at least `min(3, longest track)` samples, so a face glimpsed in
one odd frame cannot decide it). Verdict: `manipulated` when that score is above the
detector's threshold (set at 1 % false positives on real validation videos),
`likely-real` otherwise, `no-face` when no sampled frame holds a face.

JSON line schema (`likeness-scan/1`), one object per file:

    schema          "likeness-scan/1"
    path            the path as scanned (string)
    name            its base name
    status          "ok" | "error"
    error           null | {"kind": "media" | "bad input" | ... | "internal", "message": str}
    sha256          hex digest of the file's bytes (null when it cannot be read)
    kind            "video" | "image" | null
    width, height   frame size in pixels (display orientation), null when unknown
    fps, duration_s video frame rate and length (0 for images), null when unknown
    sampling        {"every": N, "max_frames": M} as used for this file
    frames_scanned  sampled frames decoded and searched for faces
    frames_with_face  of those, frames with at least one face
    faces           [{"face": k, "frames": n, "video_score": p, "counted": bool,
                      "largest_box": [x0, y0, x1, y1],
                      "scores": [[frame, time_s, p], ...]}], largest first at the start;
                    `counted`: whether this face takes part in the verdict
    frames          [{"frame": index, "time": seconds, "faces": n, "score": p | null}]
                    per sampled frame, score = its most suspicious face (null: no face)
    video_score     the file's score in [0, 1] (null when no face)
    threshold       the detector's decision threshold for video_score
    verdict         "manipulated" | "likely-real" | "no-face" | "error"
    top_frames      [{"frame": index, "time": s, "face": k, "score": p,
                      "box": [x0, y0, x1, y1]}], highest scores first, distinct frames
    provenance      null (not checked, or it failed: see provenance_error) |
                    {"manifest": "trusted" | "valid-untrusted" | "tampered" | "invalid" |
                        "no-manifest",
                     "verified": bool, "reasons": [str],
                     "manifest_summary": null | {"title", "generator", "signer",
                        "signed_at", "actions", "digital_source_type", "model",
                        "ingredients", "soft_binding"},
                     "watermark": null (not checked) | {"found": bool, "payload":
                        null | {"hex", "content_id", "key_id"}, "p_false", ...},
                     "store_match": null | "payload" | "sha256",
                     "store_record": null | {"id", "content_id", "payload", "key_id",
                        "sha256", "file_name", "created_utc"},
                     "validation_state": null | c2pa-rs's "Trusted" | "Valid" | "Invalid",
                     "findings": [{"kind", "code", "where", "ingredient", ...}]: what
                        c2pa reported, by name (README, Provenance)}
    provenance_error  null | one-line message
    model           {"name": detector name, "weights_sha256": hex}
    seconds         wall time spent on this file
    likeness        version that wrote the line

Scores are probabilities that the face was manipulated, calibrated on validation
crops; a video score is a pooled probability, comparable with `threshold` only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from likeness.errors import LikenessError
from likeness.pipelines.configs import ScanConfig
from likeness.pipelines.scan_record import (
    SCHEMA,
    FaceResult,
    FrameResult,
    ModelInfo,
    ProvenanceFindings,
    Sampling,
    ScanError,
    ScanRecord,
    TopFrame,
)

__all__ = ["SCHEMA", "FileScan", "ScanConfig", "ScanRecord", "Scanner", "error_record"]
MANIPULATED, LIKELY_REAL, NO_FACE, ERROR = "manipulated", "likely-real", "no-face", "error"
CROP_SIZE = 256  # as packs and training crops are cut
THUMB_SIDE = 320
MIN_TRACK = 3  # samples a face needs to decide the verdict (when others were seen longer)


@dataclass
class FileScan:
    """One file's scan: its record, and the images the HTML report shows beside it."""

    record: ScanRecord
    thumbnails: dict[int, bytes] = field(default_factory=dict)  # frame index -> JPEG
    # frame index -> JPEG of the detector's heat overlay for that top frame; in memory
    # only (never in the JSON), shown next to the thumbnail when present
    heatmaps: dict[int, bytes] = field(default_factory=dict)


def error_record(path: Path, err: BaseException, sha256: str | None = None) -> ScanRecord:
    """The record of a file that could not be scanned: `status` "error", the error's
    kind ("internal" for anything not a LikenessError) and its one-line message."""
    if isinstance(err, LikenessError):
        error = ScanError(err.kind, str(err))
    else:
        message = " ".join(str(err).split())
        error = ScanError("internal", f"{type(err).__name__}: {message}")
    record = _base(path)
    record.status, record.error, record.sha256, record.verdict = "error", error, sha256, ERROR
    return record


def _base(path: Path) -> ScanRecord:
    return ScanRecord(path=str(path), name=Path(path).name)


def _r(x: float, digits: int = 5) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


@dataclass
class _Face:
    number: int
    scores: list = field(default_factory=list)  # [frame, time, p]
    largest: tuple = (0.0, None)  # (area, box)


@dataclass
class _Pending:
    frame: int
    time: float
    face: int
    box: tuple
    image: np.ndarray  # the whole frame, kept while it may be a top frame (thumbnail)
    inverse: np.ndarray  # the crop's (2, 3) crop -> frame map, to place its heat map
    crop: np.ndarray  # the aligned crop, for its heat map if it ends among the top


class Scanner:
    """Loads the detector and the face stack once; scans files one by one."""

    def __init__(self, config: ScanConfig = ScanConfig(), models_root: Path | None = None):
        from likeness.detector.model import DetectorModel
        from likeness.faces import FaceStack, FaceStackConfig

        self.config = config
        # The detector first: without it nothing can be scanned, whatever else is there.
        self.model = DetectorModel.from_pretrained(config.weights, device=config.device)
        self.model.batch_size = config.batch_size
        self.stack = FaceStack(FaceStackConfig(max_faces=config.max_faces), models_root)

    # ------------------------------------------------------------ one file

    def scan_file(self, path: Path) -> FileScan:
        """Scan one file (never raises for a bad file: see `error_record`).

        Args:
            path: a video or an image.

        Returns:
            its `FileScan`: the record (verdict, scores, provenance) and the top frames'
            thumbnails.
        """
        t0 = time.monotonic()
        path = Path(path)
        sha = None
        try:
            from likeness.hashing import sha256_file
            from likeness.media import check_input_file

            check_input_file(path)
            sha = sha256_file(path)
            result = self._scan(path)
            result.record.sha256 = sha
        except Exception as err:  # one bad file must not stop the others
            record = error_record(path, err, sha)
            record.seconds = round(time.monotonic() - t0, 3)
            return FileScan(record)
        if self.config.provenance:
            self._provenance(path, result.record)
        result.record.seconds = round(time.monotonic() - t0, 3)
        return result

    def _sampling(self, info) -> int:
        cfg = self.config
        if info.kind == "image" or not info.frames:
            return cfg.every
        return max(cfg.every, math.ceil(info.frames / cfg.max_frames))

    def _scan(self, path: Path) -> FileScan:
        from likeness.faces import AlignConfig, FaceTracker, align_face
        from likeness.media import iter_frames, probe

        cfg, decision = self.config, self.model.decision
        info = probe(path)
        every = self._sampling(info)
        record = _base(path)
        record.kind, record.width, record.height = info.kind, info.width, info.height
        record.fps, record.duration_s = _r(info.fps, 3), _r(info.duration, 3)
        record.sampling = Sampling(every, cfg.max_frames)
        record.threshold = _r(decision.threshold, 6)
        record.model = ModelInfo(self.model.config.name, self.model.weights_hash)
        tracker = FaceTracker(self.stack) if info.kind == "video" else None
        faces: dict[int, _Face] = {}
        track_numbers: dict[int, tuple[object, int]] = {}  # id(track) -> (track, number)
        frames: list[FrameResult] = []
        pending: list[_Pending] = []
        top: list[tuple[float, int, TopFrame, _Pending]] = []  # (score, frame, entry, job)

        def flush() -> None:
            if not pending:
                return
            # Scores only; the few top frames' heat maps come at the end (the dense head
            # costs 11 % more CPU than the scores alone: batch of 16, median of 6).
            probs = decision.calibration(self.model.scores(np.stack([job.crop for job in pending])))
            for p, job in zip(probs, pending, strict=True):
                p = float(p)
                face = faces[job.face]
                face.scores.append((job.frame, _r(job.time, 3), _r(p)))
                entry = frames[-1] if frames[-1].frame == job.frame else _find(frames, job.frame)
                entry.score = _r(max(p, entry.score or 0.0))
                self._keep_top(top, p, job)
            pending.clear()

        for frame in iter_frames(path, every=every, max_frames=cfg.max_frames, strict=False):
            rgb = frame.image
            if tracker is not None:
                found = tracker.update(rgb, frame.time)
                numbers = []
                for track in tracker.tracks:
                    key = id(track)
                    if key not in track_numbers:
                        # Keep the track object referenced so its id is never reused.
                        track_numbers[key] = (track, len(track_numbers))
                    numbers.append(track_numbers[key][1])
            else:
                found = self.stack.analyze(rgb)
                numbers = list(range(len(found)))
            frames.append(FrameResult(frame.index, _r(frame.time, 3), len(found)))
            for face, number in zip(found[: cfg.max_faces], numbers, strict=False):
                if face.landmarks is None:
                    continue
                crop = align_face(rgb, face, AlignConfig(size=CROP_SIZE))
                box = tuple(round(float(v), 1) for v in face.box)
                slot = faces.setdefault(number, _Face(number))
                area = face.area
                if area > slot.largest[0]:
                    slot.largest = (area, box)
                pending.append(
                    _Pending(frame.index, frame.time, number, box, rgb, crop.inverse, crop.image)
                )
            if len(pending) >= cfg.batch_size:
                flush()
        flush()
        thumbs, heats = self._top_images(top)
        return FileScan(self._finish(record, frames, faces, top), thumbs, heats)

    def _keep_top(self, top: list, p: float, job: _Pending) -> None:
        """Keep the `top_frames` highest-scoring distinct frames (their frame and crop
        held for `_top_images`)."""
        k = self.config.top_frames
        for i, (score, frame, _, _) in enumerate(top):
            if frame == job.frame:
                if p <= score:
                    return
                top.pop(i)
                break
        if len(top) >= k and p <= top[-1][0]:
            return
        entry = TopFrame(job.frame, _r(job.time, 3), job.face, _r(p), job.box)
        top.append((p, job.frame, entry, job))
        top.sort(key=lambda t: -t[0])
        del top[k:]

    def _top_images(self, top: list) -> tuple[dict[int, bytes], dict[int, bytes]]:
        """The top frames' thumbnails, and the dense head's map over each (when the
        detector has one), made once the top frames are known."""
        jobs = [job for _, _, _, job in top]
        thumbs = {job.frame: thumbnail(job.image, job.box) for job in jobs}
        heats: dict[int, bytes] = {}
        if jobs and self.model.has_mask_head:
            _, maps = self.model.dense(np.stack([job.crop for job in jobs]))
            for job, heat in zip(jobs, maps, strict=True):
                heats[job.frame] = heat_overlay(job.image, heat, job.inverse, job.box)
        return thumbs, heats

    def _finish(self, record: ScanRecord, frames: list, faces: dict, top: list) -> ScanRecord:
        from likeness.detector.pooling import pool_scores

        decision = self.model.decision
        longest = max((len(f.scores) for f in faces.values()), default=0)
        needed = min(MIN_TRACK, longest)
        out_faces, best = [], None
        for number in sorted(faces):
            face = faces[number]
            if not face.scores:
                continue
            score = pool_scores([s[2] for s in face.scores], decision.pooling)
            counted = len(face.scores) >= needed
            if counted and (best is None or score > best):
                best = score
            out_faces.append(
                FaceResult(
                    face=number,
                    frames=len(face.scores),
                    video_score=_r(score),
                    counted=counted,
                    largest_box=face.largest[1],
                    scores=face.scores,
                )
            )
        record.frames_scanned = len(frames)
        record.frames_with_face = sum(1 for f in frames if f.faces)
        record.faces, record.frames = out_faces, frames
        record.video_score = _r(best) if best is not None else None
        record.top_frames = [entry for _, _, entry, _ in top]
        if best is None:
            record.verdict = NO_FACE
        else:
            record.verdict = MANIPULATED if best > decision.threshold else LIKELY_REAL
        return record

    def _provenance(self, path: Path, record: ScanRecord) -> None:
        from likeness.provenance.verify import verify_file

        cfg = self.config
        try:
            verdict = verify_file(path, cfg.trust, max_frames=cfg.provenance_frames)
        except Exception as err:
            if isinstance(err, LikenessError):
                record.provenance_error = str(err)
            else:
                record.provenance_error = f"internal: {type(err).__name__}: {err}"
            return
        record.provenance = provenance_findings(verdict)


def provenance_findings(verdict) -> ProvenanceFindings:
    """The scan's view of a `verify_file` verdict (the store's full manifest left out)."""
    return ProvenanceFindings.from_dict(provenance_dict(verdict))


def provenance_dict(verdict) -> dict:
    """The JSON view of a `verify_file` verdict (the store's full manifest left out):
    the manifest state, its C2PA findings and status codes, watermark and store."""
    from likeness.provenance.verify import stored_manifest_fallback

    data = verdict.to_dict()
    record = verdict.store_record
    summary = data.get("manifest_summary")
    stored = stored_manifest_fallback(verdict)
    if summary is None and stored is not None:
        # The file's own manifest is gone (re-encoded) but the store kept the one it was
        # signed with: show that, marked as coming from the store.
        summary = {**stored.to_dict(), "from_store": True}
    return {
        "manifest": data.get("manifest"),
        "verified": data.get("verified"),
        "reasons": data.get("reasons"),
        "manifest_summary": summary,
        "watermark": data.get("watermark"),
        "store_match": data.get("store_match"),
        "store_record": record.to_dict(with_manifest=False) if record is not None else None,
        "validation_state": data.get("validation_state"),
        "findings": data.get("findings") or [],
    }


def _find(frames: list[FrameResult], index: int) -> FrameResult:
    for entry in reversed(frames):
        if entry.frame == index:
            return entry
    raise KeyError(index)


def thumbnail(rgb: np.ndarray, box: tuple, side: int = THUMB_SIDE) -> bytes:
    """A small JPEG of the frame with the face box drawn."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, side / max(h, w))
    small = cv2.resize(
        rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )
    bgr = np.ascontiguousarray(small[..., ::-1])
    x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
    cv2.rectangle(
        bgr, (x0, y0), (x1, y1), (40, 40, 230), max(1, round(2 * max(h, w) * scale / 320))
    )
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 82])
    return buf.tobytes() if ok else b""


def heat_overlay(
    rgb: np.ndarray, heat: np.ndarray, inverse: np.ndarray, box: tuple, side: int = THUMB_SIDE
) -> bytes:
    """A small JPEG of the frame with the dense head's map (crop space, values in
    [0, 1]) placed back over the face through the crop's inverse transform: red where
    the detector sees a change, the frame as it is where it sees none."""
    import cv2

    h, w = rgb.shape[:2]
    grid = cv2.resize(np.asarray(heat, np.float32), (CROP_SIZE, CROP_SIZE), cv2.INTER_LINEAR)
    full = cv2.warpAffine(grid, np.asarray(inverse, np.float64), (w, h), flags=cv2.INTER_LINEAR)
    scale = min(1.0, side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    bgr = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)[..., ::-1].astype(np.float32)
    level = np.clip(cv2.resize(full, size, interpolation=cv2.INTER_AREA), 0.0, 1.0)
    colour = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET)
    alpha = (0.65 * level)[..., None]
    out = np.clip(bgr * (1 - alpha) + colour.astype(np.float32) * alpha, 0, 255).astype(np.uint8)
    x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
    cv2.rectangle(out, (x0, y0), (x1, y1), (255, 255, 255), 1)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 82])
    return buf.tobytes() if ok else b""
