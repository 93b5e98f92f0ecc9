"""`likeness bench scan`: files per minute of `likeness scan` on corpus clips, locally
with 1 and 2 workers and on a local Ray with 2 workers, and the latency `likeness
serve` adds to one scan (`POST /v1/scan` on a ~10 s clip, `bench.serve_latency`).

Clips: `clips` (default 20) video clips of ../shared/corpus spread over its length
range (every k-th of the clips sorted by duration, so short face crops and half-minute
interviews both count), scanned with the defaults of `likeness scan` (provenance on).
Each run is timed end to end through `run_scan`, worker start-up included (spawning
processes, starting Ray actors and loading their models), as a user waits for it;
starting Ray itself is timed apart (`ray_init_s`): on a cluster it is already running.
Every run must give the same verdicts and scores (checked: `max_score_diff`).

Targets (issue 17): Ray within 15 % of the local backend with the same worker count;
the web app adds under 0.5 s to a scan.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

from likeness.bench.common import corpus_dir, machine_info, write_json
from likeness.datasets.corpus import manifest_rows
from likeness.errors import InputError, SetupError

DEFAULT_CLIPS = 20
QUICK_CLIPS = 6
SERVE_CLIP = "videos/lp-s20.mp4"  # 9.9 s, 480x908, one talking face
RAY_TARGET = 0.15


def pick_clips(corpus: Path, n: int) -> list[Path]:
    """`n` video clips spread over the corpus's duration range (every k-th by length)."""
    # Every listed file, a repeat under another name too: throughput, and the clips
    # benchmarks/scan.json was measured on.
    rows = [r for r in manifest_rows(corpus, unique=False) if r["kind"] == "video"]
    rows = [r for r in rows if (corpus / r["file"]).is_file()]
    rows.sort(key=lambda r: (float(r["seconds"] or 0), r["file"]))
    if not rows:
        raise InputError(f"no video clips in {corpus}/MANIFEST.tsv")
    step = max(1, len(rows) // n)
    return [corpus / r["file"] for r in rows[::step][:n]]


def _timed_run(files: list[Path], **options) -> tuple[float, list]:
    from likeness.pipelines.scan_runner import run_scan

    t0 = time.perf_counter()
    run = run_scan(files, **options)
    return time.perf_counter() - t0, run.records


def _row(name: str, seconds: float, records: list, workers: int) -> dict:
    return {
        "backend": name,
        "workers": workers,
        "files": len(records),
        "seconds": round(seconds, 2),
        "files_per_min": round(len(records) * 60 / seconds, 2),
        "errors": sum(1 for r in records if not r.ok),
    }


def _max_diff(a: list, b: list) -> float:
    """Largest score difference between two runs' records of the same files (inf when
    a verdict differs)."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if (x.path, x.verdict) != (y.path, y.verdict):
            return float("inf")
        if x.video_score is not None or y.video_score is not None:
            worst = max(worst, abs((x.video_score or 0) - (y.video_score or 0)))
    return worst


BACKENDS = (("local", 1), ("local", 2), ("ray", 2))


def _one(files: list[Path], config, backend: str, workers: int) -> tuple[dict, list, float]:
    """One timed run; for Ray, starting Ray is timed apart (its third value)."""
    from likeness.pipelines import scan_ray

    if backend == "local":
        seconds, recs = _timed_run(files, config=config, workers=workers)
        return _row(backend, seconds, recs, workers), recs, 0.0
    scan_ray.check_ray()
    t0 = time.perf_counter()
    started = scan_ray.connect(None, workers)
    init_s = time.perf_counter() - t0
    try:
        seconds, recs = _timed_run(files, config=config, workers=workers, backend="ray")
    finally:
        if started:
            scan_ray.disconnect()
    return _row(backend, seconds, recs, workers), recs, init_s


def run(
    out_dir: Path, quick: bool = False, clips: int | None = None, rounds: int | None = None
) -> Path:
    """Each round runs local 1, local 2 and Ray 2 once, in an order turned by one each
    round, so a change of load on a shared machine falls on all three alike; the
    figures are the medians over the rounds (2, or 1 with --quick)."""
    from likeness.pipelines.configs import ScanConfig

    corpus = corpus_dir()
    if corpus is None:
        raise InputError("bench scan needs ../shared/corpus (or LIKENESS_CORPUS)")
    n = clips or (QUICK_CLIPS if quick else DEFAULT_CLIPS)
    rounds = rounds or (1 if quick else 2)
    files = pick_clips(corpus, n)
    config = ScanConfig()
    rows, records, inits = [], {}, []
    for r in range(rounds):
        order = BACKENDS[r % 3 :] + BACKENDS[: r % 3]
        for backend, workers in order:
            row, recs, init_s = _one(files, config, backend, workers)
            rows.append({"round": r, **row})
            records.setdefault(f"{backend}{workers}", recs)
            if backend == "ray":
                inits.append(init_s)

    def median_rate(backend: str, workers: int) -> float:
        rates = [
            x["files_per_min"] for x in rows if (x["backend"], x["workers"]) == (backend, workers)
        ]
        return round(statistics.median(rates), 2)

    summary = {f"{b}{w}": median_rate(b, w) for b, w in BACKENDS}
    slower = 1 - summary["ray2"] / summary["local2"]
    payload = {
        "clips": [f.relative_to(corpus).as_posix() for f in files],
        "clip_seconds": round(sum(r.duration_s or 0 for r in records["local1"]), 2),
        "config": {
            "every": config.every,
            "max_frames": config.max_frames,
            "provenance": config.provenance,
        },
        "rounds": rounds,
        "runs": rows,
        "files_per_min": summary,  # medians over the rounds
        "ray_init_s": [round(x, 2) for x in inits],
        "ray_slower_than_local2": round(slower, 4),
        "ray_target": RAY_TARGET,
        "ray_meets_target": slower <= RAY_TARGET,
        # against local1; null: a verdict differs
        "max_score_diff": {
            k: None if math.isinf(d) else d
            for k, d in ((k, _max_diff(records["local1"], v)) for k, v in records.items())
            if k != "local1"
        },
        "serve": _serve(corpus, quick, config),
        "machine": machine_info(),
    }
    return write_json(out_dir, "scan", payload)


def _serve(corpus: Path, quick: bool, config) -> dict:
    """`POST /v1/scan` against the plain library call (bench.serve_latency), or why not."""
    try:
        from likeness.bench.serve_latency import measure
    except ImportError as err:
        return {"skipped": f"likeness serve not available ({err})"}
    clip = corpus / SERVE_CLIP
    if not clip.is_file():
        return {"skipped": f"{SERVE_CLIP} not in the corpus"}
    try:
        return measure(clip, repeats=1 if quick else 3, config=config)
    except (ImportError, SetupError) as err:  # the serve extra is not installed
        return {"skipped": f"the serve extra is not installed ({err})"}
