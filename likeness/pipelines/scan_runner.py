"""Scan many files: collect them, skip what a JSONL already holds (`--resume`), scan in
this process or in a spawn process pool, and write the JSONL and the HTML report.

Outputs are atomic: the JSONL is rewritten through a temporary file and a rename at
most every few seconds while scanning (so an interrupted run keeps what it finished
and `--resume` carries on from there) and once at the end; the report is written once.

Exit codes (`ScanRun.exit_code`): 3 when any file's verdict is `manipulated`; else 1
when any file failed through an internal fault; else 2 when no file could be scanned
(nothing found at the paths, or every file unreadable); else 0.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from likeness.errors import InputError
from likeness.media.suffixes import is_media_name
from likeness.pipelines.scan import MANIPULATED, SCHEMA, FileScan, ScanConfig, error_record
from likeness.pipelines.scan_record import ScanRecord
from likeness.ui import Progress, no_progress

CHECKPOINT_SECONDS = 5.0

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_MANIPULATED = 0, 1, 2, 3


@dataclass
class ScanRun:
    records: list[ScanRecord]  # this invocation's files in input order, scanned or resumed
    thumbnails: dict[str, dict[int, bytes]] = field(default_factory=dict)  # path -> ...
    heatmaps: dict[str, dict[int, bytes]] = field(default_factory=dict)  # path -> ...
    scanned: int = 0
    resumed: int = 0
    jsonl: Path | None = None
    html: Path | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # said to the user before the summary

    @property
    def exit_code(self) -> int:
        if any(r.verdict == MANIPULATED for r in self.records):
            return EXIT_MANIPULATED
        if any(r.error is not None and r.error.kind == "internal" for r in self.records):
            return EXIT_INTERNAL
        if not any(r.ok for r in self.records):
            return EXIT_BAD_INPUT
        return EXIT_OK


def collect_files(
    paths: list[Path], recursive: bool = False
) -> tuple[list[Path], list[ScanRecord]]:
    """(files to scan, error records for paths that do not exist). Folders give their
    media files (by suffix; hidden files skipped), sorted; a file given by name is
    scanned whatever its name."""
    files: list[Path] = []
    errors: list[ScanRecord] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = path.rglob("*") if recursive else path.iterdir()
            for child in sorted(found):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                # a file named on the command line is scanned whatever its name
                if child.is_file() and is_media_name(child):
                    add(child)
        elif path.exists():
            add(path)
        else:
            errors.append(error_record(path, InputError(f"no such file or folder: {path}")))
    return files, errors


def read_jsonl(path: Path, notes: list[str] | None = None) -> list[dict]:
    """Lines of an earlier scan; an unreadable or foreign file is bad input. A last line
    cut off mid-write (no newline, not JSON: a writer killed or out of space) is dropped,
    with a note in `notes`, so `--resume` scans that file again instead of refusing."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a likeness scan JSONL (not UTF-8 text)") from None
    out = []
    lines = text.splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
            if n == len(lines) and not text.endswith(("\n", "\r")):
                if notes is not None:
                    notes.append(f"{path}: ignored its last line, cut off mid-write")
                break
        if not isinstance(record, dict) or record.get("schema") != SCHEMA:
            raise InputError(f"{path} is not a likeness scan JSONL (line {n})")
        # --resume hashes and compares these: anything but text or null is damage.
        if not all(isinstance(record.get(k), str | None) for k in ("path", "sha256", "status")):
            raise InputError(f"{path} is a damaged likeness scan JSONL (line {n})")
        out.append(record)
    return out


def write_jsonl(path: Path, records: list[ScanRecord | dict]) -> None:
    """One line per record; a dict is a line read from an earlier JSONL, kept as it was
    (non-finite numbers become null)."""
    from likeness.fsio import atomic_output
    from likeness.jsonio import json_safe

    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for record in records:
            if isinstance(record, ScanRecord):
                fh.write(record.to_json_line())
            else:
                fh.write(json.dumps(json_safe(record), allow_nan=False) + "\n")


# ---------------------------------------------------------------- workers

_WORKER = None


def _init_worker(config: ScanConfig, threads: int) -> None:
    global _WORKER
    import torch

    torch.set_num_threads(threads)
    from likeness.pipelines.scan import Scanner

    _WORKER = Scanner(config)


def _scan_in_worker(path: str) -> FileScan:
    return _WORKER.scan_file(Path(path))


BACKENDS = ("local", "ray")


def _results(
    files: list[Path],
    config: ScanConfig,
    workers: int | None,
    backend: str = "local",
    address: str | None = None,
    notes: list[str] | None = None,
) -> Iterator[tuple[Path, FileScan]]:
    """(path, result) as files finish; in input order with one local worker."""
    if backend == "ray":
        from likeness.pipelines.scan_ray import scan_results

        yield from scan_results(files, config, workers=workers, address=address, notes=notes)
        return
    workers = workers or 1
    if workers <= 1:
        from likeness.pipelines.scan import Scanner

        scanner = Scanner(config)
        for path in files:
            yield path, scanner.scan_file(path)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    threads = max(1, (os.cpu_count() or 1) // workers)
    # spawn, not fork: torch and the face models' threads do not survive a fork.
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(config, threads),
    ) as pool:
        futures = {pool.submit(_scan_in_worker, str(p)): p for p in files}
        for future in as_completed(futures):
            path = futures[future]
            try:
                yield path, future.result()
            except BrokenProcessPool:
                yield path, FileScan(error_record(path, RuntimeError("a scan worker died")))
            except Exception as err:  # e.g. a worker could not start: every file says so
                yield path, FileScan(error_record(path, err))


# ---------------------------------------------------------------- the run


def run_scan(
    paths: list[Path],
    config: ScanConfig = ScanConfig(),
    *,
    recursive: bool = False,
    jsonl: Path | None = None,
    html: Path | None = None,
    workers: int | None = 1,
    resume: bool = False,
    progress: Progress | None = None,
    backend: str = "local",
    address: str | None = None,
) -> ScanRun:
    """Scan `paths` (files and folders) and write the outputs asked for.

    Args:
        paths: files and folders (a folder gives its media files by suffix).
        config: sampling, detector weights, provenance checks.
        recursive: also the folders inside folders.
        jsonl: write one JSON line per file here (rewritten every few seconds).
        html: write the self-contained HTML report here.
        workers: files scanned in parallel (spawned processes, or Ray actors); None:
            1 locally, every CPU of the cluster on Ray.
        resume: skip files whose sha256 `jsonl` already holds with status ok.
        progress: a `likeness.ui.Progress` (the CLI passes `progress_bar`); None: quiet.
        backend: "local" (this machine) or "ray" (Ray actors: `pipelines.scan_ray`).
        address: the Ray cluster for the ray backend (ray://head:10001); None: the Ray
            this process runs, else a local one.

    Returns:
        the `ScanRun`: records in input order, counts, and `exit_code`.

    Raises:
        InputError: bad options, nothing to scan, an unreadable --json for --resume, a
            bad trust anchor. ModelError: no detector weights.
    """
    from likeness.detector.model import DetectorModel
    from likeness.fsio import check_output_path
    from likeness.hashing import sha256_file

    t0 = time.monotonic()
    if resume and jsonl is None:
        raise InputError("--resume needs --json: it skips the files that JSONL already holds")
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be 1 or more, got {workers}")
    if backend not in BACKENDS:
        raise InputError(f"unknown --backend {backend!r}: use {' or '.join(BACKENDS)}")
    if address and backend != "ray":
        raise InputError("--address is a Ray cluster's: use it with --backend ray")
    if backend == "ray":
        from likeness.pipelines.scan_ray import check_ray

        check_ray()  # a clear one-line error before any work when ray is missing
    for out in (jsonl, html):
        if out is not None:
            check_output_path(out)
    if config.trust:
        from likeness.provenance.verify import load_trust

        load_trust(config.trust)  # a bad trust file is bad input before any work
    # Fails with a clear ModelError before any file is touched when there is no detector.
    DetectorModel.from_pretrained(config.weights)
    files, missing = collect_files(paths, recursive)
    if not files:
        if missing:
            raise InputError(missing[0].error.message)
        raise InputError("nothing to scan: no video or image files at the paths given")
    notes: list[str] = []
    previous = read_jsonl(jsonl, notes) if resume and jsonl is not None and jsonl.exists() else []
    done = {r["sha256"]: r for r in previous if r.get("status") == "ok" and r.get("sha256")}

    order = {str(p): i for i, p in enumerate(files)}
    slots: list[ScanRecord | None] = [None] * len(files)
    todo: list[Path] = []
    resumed = 0
    for i, path in enumerate(files):
        if done:
            try:
                sha = sha256_file(path)
            except OSError:
                sha = None
            if sha in done:
                slots[i] = _resumed(jsonl, done[sha])
                resumed += 1
                continue
        todo.append(path)
    # Earlier lines stay, except errors for files scanned again now, and for paths
    # still missing (whose new error line replaces the old one, not joins it).
    retried = {str(p) for p in todo} | {r.path for r in missing}
    kept = [r for r in previous if not (r.get("status") != "ok" and r.get("path") in retried)]

    run = ScanRun(records=[], resumed=resumed, jsonl=jsonl, html=html, notes=notes)
    new: list[ScanRecord] = list(missing)
    last_write = time.monotonic()
    with (progress or no_progress)("scanning", len(todo)) as advance:
        for path, result in _results(todo, config, workers, backend, address, notes):
            slots[order[str(path)]] = result.record
            new.append(result.record)
            if result.thumbnails:
                run.thumbnails[str(path)] = result.thumbnails
            if result.heatmaps:
                run.heatmaps[str(path)] = result.heatmaps
            run.scanned += 1
            advance()
            if jsonl is not None and time.monotonic() - last_write > CHECKPOINT_SECONDS:
                write_jsonl(jsonl, kept + new)
                last_write = time.monotonic()
    if jsonl is not None:
        write_jsonl(jsonl, kept + new)
    run.records = missing + [r for r in slots if r is not None]
    run.seconds = time.monotonic() - t0
    if html is not None:
        from likeness.pipelines.report import write_report

        write_report(html, run.records, run.thumbnails, run.heatmaps)
    return run


def _resumed(jsonl: Path, line: dict) -> ScanRecord:
    try:
        return ScanRecord.from_dict(line)
    except InputError as err:
        raise InputError(f"{jsonl} is a damaged likeness scan JSONL: {err}") from None
