"""Concurrency: four `animate` and two `scan` processes at once on one LIKENESS_HOME.

Every output must come out signed, watermarked with its own payload and recorded in
the shared provenance store exactly once, and no user may see "database is locked"
(the store's WAL, busy timeout and retries are what this leans on), nor a traceback.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests import samples
from tests.reliability.conftest import (
    child_env,
    likeness_argv,
    make_keyed_home,
    run_likeness,
    tiny_detector,
)

ANIMATES = 4
SCANS = 2
DEADLINE_S = 240.0


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> tuple[Path, Path]:
    """One home with keys, and its trust anchor."""
    root = tmp_path_factory.mktemp("concurrent")
    home = make_keyed_home(root / "home")
    result = run_likeness(home, "keys", "export-trust", "-o", root / "root.pem")
    assert result.code == 0, result.text
    return home, root / "root.pem"


def test_four_animates_and_two_scans_share_one_home(
    shared, tiny_weights, portrait, driving_clip, astronaut, tmp_path
):
    home, root_pem = shared
    # What the scans read: one file already in the store (so every scan looks records
    # up while the animates write theirs) and one plain clip.
    scan_dir = tmp_path / "to-scan"
    scan_dir.mkdir()
    signed = run_likeness(home, "sign", portrait, "-o", scan_dir / "signed.png")
    assert signed.code == 0, signed.text
    samples.face_video(scan_dir / "clip.mp4", np.roll(astronaut, 8, axis=1), frames=12, size=160)
    detector = tiny_detector(tmp_path / "detector")
    out = tmp_path / "out"
    out.mkdir()

    commands: list[tuple[str, list[object]]] = []
    for i in range(ANIMATES):
        commands.append((f"animate{i}", ["animate", portrait, driving_clip, "-o",
                                         out / f"animated{i}.mp4", "--weights", tiny_weights,
                                         "--crop-only", "--max-frames", 8]))  # fmt: skip
    for i in range(SCANS):
        commands.append((f"scan{i}", ["scan", scan_dir, "--weights", detector, "--every", "4",
                                      "--json", tmp_path / f"scan{i}.jsonl"]))  # fmt: skip
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = {}
    t0 = time.monotonic()
    for name, args in commands:  # all started before any is waited on
        procs[name] = subprocess.Popen(
            likeness_argv(*args),
            env=child_env(home),
            stdout=(logs / f"{name}.out").open("w"),
            stderr=(logs / f"{name}.err").open("w"),
            stdin=subprocess.DEVNULL,
        )
    try:
        for proc in procs.values():
            proc.wait(timeout=max(1.0, DEADLINE_S - (time.monotonic() - t0)))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for name, proc in procs.items():
        err = (logs / f"{name}.err").read_text()
        text = (logs / f"{name}.out").read_text() + err
        assert proc.returncode == 0, f"{name}: {text}"
        assert "locked" not in text.lower() and "Traceback" not in text, f"{name}: {text}"

    outputs = [out / f"animated{i}.mp4" for i in range(ANIMATES)]
    verified = run_likeness(home, "verify", *outputs, "--json", "--trust", root_pem)
    assert verified.code == 0, verified.text
    verdicts = [json.loads(line) for line in verified.out.splitlines() if line.strip()]
    assert len(verdicts) == ANIMATES
    payloads = set()
    for verdict in verdicts:
        assert verdict["manifest"] == "trusted" and verdict["verified"], verdict
        assert verdict["watermark"]["found"], verdict
        payloads.add(verdict["watermark"]["payload"]["hex"])
    assert len(payloads) == ANIMATES  # each output its own payload

    conn = sqlite3.connect(home / "store.sqlite")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute(
            "SELECT file_name, payload_hex, sha256 FROM records WHERE file_name LIKE 'animated%'"
        ).fetchall()
    finally:
        conn.close()
    assert sorted(r[0] for r in rows) == [p.name for p in outputs]  # one record each
    assert {r[1] for r in rows} == payloads
    assert {r[2] for r in rows} == {v["sha256"] for v in verdicts}
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []

    for i in range(SCANS):
        lines = [json.loads(x) for x in (tmp_path / f"scan{i}.jsonl").read_text().splitlines()]
        by_name = {r["name"]: r for r in lines}
        assert sorted(by_name) == ["clip.mp4", "signed.png"]
        assert all(r["status"] == "ok" for r in lines), lines
        assert by_name["signed.png"]["provenance"]["store_match"] in ("payload", "sha256")
