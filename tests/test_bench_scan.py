"""`likeness bench scan`: which clips it picks and how it compares runs."""

from __future__ import annotations

from pathlib import Path

from likeness.bench.scan import _max_diff, pick_clips
from likeness.pipelines.scan_record import ScanRecord

HEADER = "file\tkind\tlabel\tseconds\n"


def test_clips_are_spread_over_the_duration_range(tmp_path: Path):
    rows = []
    for i in range(40):
        name = f"videos/c{i:02d}.mp4"
        (tmp_path / "videos").mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
        rows.append(f"{name}\tvideo\treal\t{40 - i}.0\n")  # c00 longest
    rows.append("photos/p.png\timage\treal\t0\n")
    (tmp_path / "MANIFEST.tsv").write_text(HEADER + "".join(rows))
    picked = pick_clips(tmp_path, 10)
    assert len(picked) == 10
    seconds = [41 - int(p.stem[1:]) - 1 for p in picked]
    assert seconds == sorted(seconds)  # shortest first
    assert seconds[0] == 1 and seconds[-1] >= 37  # short and long clips both
    assert all(p.suffix == ".mp4" for p in picked)


def test_runs_that_differ_in_a_verdict_are_flagged():
    a = [ScanRecord("x", "x", verdict="likely-real", video_score=0.1)]
    b = [ScanRecord("x", "x", verdict="likely-real", video_score=0.1000004)]
    c = [ScanRecord("x", "x", verdict="manipulated", video_score=0.9)]
    assert 0 < _max_diff(a, b) < 1e-6
    assert _max_diff(a, c) == float("inf")
