"""Faults: `likeness` killed with SIGKILL mid-run, and disks that fill up.

Each scenario runs the real command in a child process (as a user would meet it) and
then checks what is left on disk: no partial file at the target, a provenance store
that is intact and holds no record of the lost output, and a rerun (or `--resume`)
that finishes the work. Disk full is a file-size limit (RLIMIT_FSIZE, writes fail with
EFBIG, no privileges needed) and, where this machine lets us mount one, a tiny tmpfs
(ENOSPC).

Stale temp folders: a SIGKILL leaves the hidden `.NAME.*.likeness` work folder of an
`animate` beside its target (nothing can remove it at that moment). The folder records
its owner (host, pid, process start time); the next signed output written into the
same folder removes any whose owner is gone. Hidden `.NAME.*.tmp.EXT` files of
`atomic_output` (a kill during the final few milliseconds of a write) are left as
they are: they are hidden, nothing reads them, and `scan` skips hidden files.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
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

DEADLINE_S = 90.0
# Scripted motion long enough (6 motions x 2 s at 25 fps = 300 frames, ~15 s with the
# tiny model) that the kill lands while frames are being generated.
LONG_MOTION = ("--motion", "nod,shake,blink,smile,talk,nod", "--fps", "25")
NO_SPACE = re.compile(r"space|disk|full|size|too large|quota", re.IGNORECASE)


# ---------------------------------------------------------------- helpers


class Child:
    """A `likeness` child process whose stdout and stderr go to files (a pipe nobody
    reads could fill and stall it)."""

    def __init__(self, home: Path, logs: Path, *args: object, preexec_fn=None) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self._out = (logs / "stdout.txt").open("w+")
        self._err = (logs / "stderr.txt").open("w+")
        self.proc = subprocess.Popen(
            likeness_argv(*args),
            env=child_env(home),
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            preexec_fn=preexec_fn,
        )

    def text(self) -> tuple[str, str]:
        self._out.flush()
        self._err.flush()
        self._out.seek(0)
        self._err.seek(0)
        return self._out.read(), self._err.read()

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S):
        """Poll `condition` until it holds; fail when the child exits first or time runs out."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if condition():
                return
            if self.proc.poll() is not None:
                out, err = self.text()
                pytest.fail(f"child exited ({self.proc.returncode}) before {what}: {out}{err}")
            time.sleep(0.02)
        self.kill()
        pytest.fail(f"timed out waiting for {what}")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def finish(self, timeout: float = DEADLINE_S) -> tuple[int, str, str]:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("child did not finish in time")
        out, err = self.text()
        self._out.close()
        self._err.close()
        return self.proc.returncode, out, err


def store_rows(home: Path) -> list[tuple[str, str, str]]:
    """(file_name, payload_hex, sha256) of every record; the store must pass SQLite's
    own integrity check."""
    path = home / "store.sqlite"
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT file_name, payload_hex, sha256 FROM records").fetchall()
    finally:
        conn.close()


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def verify_json(home: Path, root_pem: Path, *files: Path) -> list[dict]:
    result = run_likeness(home, "verify", *files, "--json", "--trust", root_pem)
    assert result.code == 0, result.text
    return [json.loads(line) for line in result.out.splitlines() if line.strip()]


def one_clear_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


def file_size_limit(max_bytes: int) -> Callable[[], None]:
    """preexec_fn: writes past `max_bytes` fail with EFBIG instead of killing the child."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A home with keys of its own, so that its store holds only this module's records."""
    return make_keyed_home(tmp_path_factory.mktemp("fault-home"))


@pytest.fixture(scope="module")
def root_pem(home, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("trust") / "root.pem"
    result = run_likeness(home, "keys", "export-trust", "-o", path)
    assert result.code == 0, result.text
    return path


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> Path:
    return tiny_detector(tmp_path_factory.mktemp("detector") / "never")


@pytest.fixture(scope="module")
def clips(tmp_path_factory, astronaut) -> Path:
    """Ten distinct 120-frame face clips: about a second each to scan at --every 1, so a
    folder scan outlives the JSONL's first checkpoint (5 s) and can be killed mid-way."""
    folder = tmp_path_factory.mktemp("clips")
    for i in range(10):
        samples.face_video(folder / f"clip{i:02d}.mp4", np.roll(astronaut, 4 * i, axis=1),
                           frames=120, size=160)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory, astronaut, home) -> Path:
    folder = tmp_path_factory.mktemp("pack")
    clip = samples.face_video(folder / "astro.mp4", astronaut, frames=16, size=256)
    result = run_likeness(home, "dataset", "pack", clip, "-o", folder / "pack", "--every", "1")
    assert result.code == 0, result.text
    return folder / "pack"


def animate_args(portrait: Path, out: Path, weights: Path, *extra: object) -> list[object]:
    return ["animate", portrait, "-o", out, "--weights", weights, "--crop-only", *extra]


# ---------------------------------------------------------------- kill -9


def test_kill_9_animate_leaves_no_output_and_a_rerun_succeeds(
    home, root_pem, tiny_weights, portrait, tmp_path
):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "killed.mp4"
    before = store_rows(home)

    def generating() -> bool:  # the encoder has written frames into the work folder
        return any(p.stat().st_size > 0 for p in out_dir.glob(".killed.mp4.*.likeness/*.mp4"))

    child = Child(home, tmp_path / "logs", *animate_args(portrait, target, tiny_weights,
                                                         *LONG_MOTION))  # fmt: skip
    child.wait_for(generating, "frames being encoded")
    child.kill()

    assert not target.exists()
    assert store_rows(home) == before  # intact, and no record of the lost output
    stale = hidden(out_dir)
    assert len(stale) == 1 and stale[0].endswith(".likeness"), stale  # what SIGKILL leaves

    rerun = run_likeness(home, *animate_args(portrait, target, tiny_weights, *LONG_MOTION,
                                             "--max-frames", 12))  # fmt: skip
    assert rerun.code == 0, rerun.text
    assert hidden(out_dir) == []  # the dead run's work folder is gone too
    (verdict,) = verify_json(home, root_pem, target)
    assert verdict["manifest"] == "trusted" and verdict["watermark"]["found"], verdict
    rows = store_rows(home)
    assert len(rows) == len(before) + 1 and rows[-1][0] == "killed.mp4"
    assert rows[-1][1] == verdict["watermark"]["payload"]["hex"]


def test_kill_9_scan_then_resume_reports_every_file_once(home, detector, clips, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    jsonl, report = out / "scan.jsonl", out / "report.html"
    args = ["scan", clips, "--weights", detector, "--every", "1", "--json", jsonl, "--html",
            report, "--resume", "--no-provenance"]  # fmt: skip
    child = Child(home, tmp_path / "logs", *args)
    child.wait_for(jsonl.exists, "the first JSONL checkpoint")
    child.kill()

    assert not report.exists()  # the report is written once, at the end
    first = [json.loads(line) for line in jsonl.read_text().splitlines()]  # no broken line
    assert 1 <= len(first) < 10, "the kill should land mid-way"
    assert all(r["status"] == "ok" for r in first)

    rerun = run_likeness(home, *args)
    assert rerun.code == 0, rerun.text
    assert f"{len(first)} already in the JSONL" in rerun.out
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    names = [r["name"] for r in lines]
    assert sorted(names) == [f"clip{i:02d}.mp4" for i in range(10)]  # each exactly once
    assert all(r["status"] == "ok" for r in lines)
    assert lines[: len(first)] == first  # what was finished is kept as it was
    assert report.stat().st_size > 0 and report.read_text().rstrip().endswith("</html>")
    assert [n for n in hidden(out) if "report" in n] == []


def _loss_steps(run: Path) -> list[int]:
    with (run / "loss.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert all(len(row) == len(header) for row in body), "garbled loss.csv row"
    return [int(row[0]) for row in body]


def test_kill_9_train_generator_resumes_from_the_last_checkpoint(home, tiny_pack, tmp_path):
    import torch

    run = tmp_path / "run"
    sets = ["batch_size=2", "checkpoint_every=4", "log_every=1", "photo_fraction=0",
            "warmup=1", "sample_every=1000", "steps=1000"]  # fmt: skip
    args = ["train", "generator", "--pack", tiny_pack, "--out", run, "--preset", "tiny",
            "--device", "cpu", *(a for s in sets for a in ("--set", s))]  # fmt: skip

    def past_a_checkpoint() -> bool:  # steps logged after the checkpoint it would resume from
        if not (run / "checkpoint.pt").exists() or not (run / "loss.csv").exists():
            return False
        last = (run / "loss.csv").read_text().rstrip("\n").rsplit("\n", 1)[-1].split(",")[0]
        return last.isdigit() and int(last) > 4 and int(last) % 4 != 0

    child = Child(home, tmp_path / "logs", *args)
    child.wait_for(past_a_checkpoint, "steps past the first checkpoint")
    child.kill()

    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    saved = ckpt["state"]["step"]
    assert saved % 4 == 0 and saved >= 4
    assert not [p for p in run.iterdir() if p.name.startswith(".") and p.is_file()]

    resumed = run_likeness(home, "train", "generator", "--pack", tiny_pack, "--out", run,
                           "--resume", "--steps", 3, "--device", "cpu")  # fmt: skip
    assert resumed.code == 0, resumed.text
    assert f"from step {saved}" in resumed.out
    steps = _loss_steps(run)
    assert steps == list(range(1, saved + 4)), steps  # no duplicate, no gap
    after = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert after["state"]["step"] == saved + 3


# ---------------------------------------------------------------- disk full


def _assert_clean_failure(code: int, err: str, folder: Path, target: Path) -> None:
    assert code == 2, err
    line = one_clear_line(err)
    assert NO_SPACE.search(line), line
    assert not target.exists()
    assert hidden(folder) == [], hidden(folder)


@pytest.mark.parametrize(
    "limit", [8_000, 40_000], ids=["while-encoding", "while-signing"]
)  # the unsigned video is ~30 kB, the signed one (with its ingredient) ~150 kB
def test_file_size_limit_during_animate_is_one_clear_error(
    home, tiny_weights, driving_clip, portrait, tmp_path, limit
):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "full.mp4"
    before = store_rows(home)
    child = Child(home, tmp_path / "logs", "animate", portrait, driving_clip, "-o", target,
                  "--weights", tiny_weights, preexec_fn=file_size_limit(limit))  # fmt: skip
    code, _, err = child.finish()
    _assert_clean_failure(code, err, out, target)
    assert store_rows(home) == before


@pytest.fixture
def tiny_tmpfs(tmp_path) -> Path:
    """A 96 KiB tmpfs, where mounting is allowed (root with CAP_SYS_ADMIN); else skip."""
    mount, umount = shutil.which("mount"), shutil.which("umount")
    point = tmp_path / "tiny"
    point.mkdir()
    if mount is None or umount is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run([mount, "-t", "tmpfs", "-o", "size=96k,mode=0755", "tmpfs", str(point)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run([umount, "-l", str(point)], capture_output=True)


def test_full_tmpfs_animate_and_scan_fail_cleanly(
    home, tiny_weights, driving_clip, portrait, detector, clips, tiny_tmpfs, tmp_path
):
    before = store_rows(home)
    target = tiny_tmpfs / "full.mp4"
    result = run_likeness(home, "animate", portrait, driving_clip, "-o", target,
                          "--weights", tiny_weights)  # fmt: skip
    _assert_clean_failure(result.code, result.err, tiny_tmpfs, target)
    assert store_rows(home) == before
    assert list(tiny_tmpfs.iterdir()) == []

    filler = tiny_tmpfs / "filler"  # leave too little room for a report with thumbnails
    with contextlib.suppress(OSError), filler.open("wb") as fh:
        fh.write(b"\0" * 80_000)
    report = tiny_tmpfs / "report.html"
    result = run_likeness(home, "scan", clips / "clip00.mp4", "--weights", detector, "--every",
                          "20", "--html", report, "--no-provenance")  # fmt: skip
    _assert_clean_failure(result.code, result.err, tiny_tmpfs, report)


# ---------------------------------------------------------------- regressions


def _hold_work_folder(target: Path, then: str) -> subprocess.Popen:
    """A child that opens an `animate`-style work folder beside `target`, then either
    dies by SIGKILL (`then="die"`) or keeps it open until killed (`then="hold"`)."""
    code = (
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "from likeness.provenance.mark import _private_tempdir\n"
        "with _private_tempdir(Path(sys.argv[1])) as work:\n"
        "    (work / 'unsigned.mp4').write_bytes(b'half a video')\n"
        "    print('ready', flush=True)\n"
        "    if sys.argv[2] == 'die':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    time.sleep(120)\n"
    )
    argv = [sys.executable, "-c", code, str(target), then]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=child_env(target.parent))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_regression_stale_work_folder_of_a_killed_animate_is_removed(
    home, portrait, tmp_path, monkeypatch
):
    """Broke: a SIGKILLed `animate` left its hidden `.NAME.*.likeness` work folder (with
    the half-encoded video) beside the target for ever; every later kill added one.
    Now the next signed output into that folder removes work folders whose owner is
    gone, and leaves alone the one of a process still running."""
    from likeness.provenance.mark import mark_image

    monkeypatch.setenv("LIKENESS_HOME", str(home))
    live = _hold_work_folder(tmp_path / "b.mp4", "hold")
    dead = _hold_work_folder(tmp_path / "a.mp4", "die")
    dead.wait(timeout=30)
    try:
        assert len(hidden(tmp_path)) == 2
        rgb = cv2.cvtColor(cv2.imread(str(portrait)), cv2.COLOR_BGR2RGB)
        mark_image(rgb, tmp_path / "still.png")
        left = hidden(tmp_path)
        assert len(left) == 1 and left[0].startswith(".b.mp4."), left
    finally:
        live.kill()
        live.wait(timeout=30)


TINY_TRAIN = {
    "preset": "tiny", "batch_size": 2, "warmup": 1, "log_every": 1, "checkpoint_every": 4,
    "sample_every": 1000, "photo_fraction": 0.0, "steps": 100, "num_threads": 1,
}  # fmt: skip


def test_regression_resume_drops_loss_rows_logged_after_the_last_checkpoint(tiny_pack, tmp_path):
    """Broke: loss.csv rows are appended every `log_every` steps, checkpoints come every
    `checkpoint_every`; after a kill between the two, `--resume` trained those steps
    again and appended them again, so loss.csv held steps 5, 6, 5, 6 (and kept a row the
    kill had cut in half). Resume now cuts loss.csv back to the checkpoint's step."""
    from likeness.generator.train import Trainer

    run = tmp_path / "run"
    Trainer(tiny_pack, run, overrides=TINY_TRAIN).run(steps=4)
    with (run / "loss.csv").open("a") as fh:  # what a kill at step 6 (mid-write) leaves
        fh.write("5" + ",0.5" * 14 + "\n6" + ",0.5" * 14 + "\n7,0.4")
    resumed = Trainer(tiny_pack, run, resume=True)
    assert resumed.state.step == 4
    resumed.run(steps=3)
    assert _loss_steps(run) == [1, 2, 3, 4, 5, 6, 7]


def test_regression_file_size_limit_while_signing_is_not_a_media_error(home, portrait, tmp_path):
    """Broke: `likeness sign` (and `animate`, whose signing step is the same) with the
    disk full said "photo.png is not a readable PNG file (Other: UntrackedPointer:
    0x2)": c2pa's stream callbacks swallow the write's OSError, and the opaque error was
    blamed on the input. Now the write error is kept and reported as a full disk."""
    out = tmp_path / "out"
    out.mkdir()
    target = out / "signed.png"
    child = Child(home, tmp_path / "logs", "sign", portrait, "-o", target,
                  preexec_fn=file_size_limit(20_000))  # fmt: skip
    code, _, err = child.finish()
    _assert_clean_failure(code, err, out, target)


def test_regression_file_size_limit_while_writing_the_report_is_not_internal(
    home, detector, clips, tmp_path
):
    """Broke: `scan --html` on a full disk ended with "internal error: OSError: [Errno
    27] File too large" and exit 1 (our fault) instead of a one-line output error,
    exit 2. ENOSPC, EFBIG and EDQUOT now map to one OutputError in one place (the CLI)."""
    out = tmp_path / "out"
    out.mkdir()
    report = out / "report.html"
    child = Child(home, tmp_path / "logs", "scan", clips / "clip00.mp4", "--weights", detector,
                  "--every", "20", "--html", report, "--no-provenance",
                  preexec_fn=file_size_limit(8_000))  # fmt: skip
    code, _, err = child.finish()
    _assert_clean_failure(code, err, out, report)


def test_regression_resume_tolerates_a_cut_off_last_jsonl_line(home, detector, clips, tmp_path,
                                                               monkeypatch):  # fmt: skip
    """Broke: a scan JSONL whose last line was cut off (a writer killed mid-line: an
    older likeness, `tee`, a full disk) made `--resume` refuse the whole file as "not a
    likeness scan JSONL". An unterminated, unparsable last line is now dropped with a
    note, and its file scanned again; a bad line elsewhere is still refused."""
    from likeness.errors import InputError
    from likeness.pipelines.scan import ScanConfig
    from likeness.pipelines.scan_runner import run_scan

    monkeypatch.setenv("LIKENESS_HOME", str(home))
    files = [clips / "clip00.mp4", clips / "clip01.mp4"]
    config = ScanConfig(every=40, weights=detector, provenance=False)
    jsonl = tmp_path / "scan.jsonl"
    run_scan(files, config, jsonl=jsonl)
    text = jsonl.read_text()
    jsonl.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])
    run = run_scan(files, config, jsonl=jsonl, resume=True)
    assert (run.resumed, run.scanned) == (1, 1)
    assert any("cut off" in note for note in run.notes), run.notes
    assert [json.loads(line)["name"] for line in jsonl.read_text().splitlines()] == [
        "clip00.mp4", "clip01.mp4"]  # fmt: skip
    lines = jsonl.read_text().splitlines()
    jsonl.write_text("\n".join([lines[0][:50], *lines[1:]]) + "\n")
    with pytest.raises(InputError, match="not a likeness scan JSONL"):
        run_scan(files, config, jsonl=jsonl, resume=True)


def test_regression_a_chunk_ending_between_checkpoints_logs_its_last_step_once(tiny_pack, tmp_path):
    """Broke: with `log_every` 1, a chunk (`--steps`, `--minutes`, SIGTERM) that ended
    between checkpoints logged its last step, then logged it again with the final
    checkpoint's figures: loss.csv held steps 1, 2, 3, 3. The last step of a chunk is
    now logged once, together with its checkpoint."""
    from likeness.generator.train import Trainer

    run = tmp_path / "run"
    Trainer(tiny_pack, run, overrides=TINY_TRAIN).run(steps=3)
    assert _loss_steps(run) == [1, 2, 3]
    Trainer(tiny_pack, run, resume=True).run(minutes=1e-9)  # the deadline passes at once
    assert _loss_steps(run) == [1, 2, 3, 4]


def test_regression_file_size_limit_while_checkpointing_is_one_clear_error(
    home, tiny_pack, tmp_path
):
    """Broke: `train` on a full disk ended with "internal error: RuntimeError: [enforce
    fail at inline_container.cc:672] . unexpected pos 640 vs 534", exit 1: torch's
    writer drops the OSError when it writes to a path. The checkpoint now goes through
    a Python file, whose OSError the CLI recognises; nothing half-written is left."""
    run = tmp_path / "run"
    child = Child(home, tmp_path / "logs", "train", "generator", "--pack", tiny_pack, "--out",
                  run, "--preset", "tiny", "--device", "cpu", "--steps", 2, "--set",
                  "batch_size=2", preexec_fn=file_size_limit(1_000_000))  # fmt: skip
    code, _, err = child.finish()
    _assert_clean_failure(code, err, run, run / "checkpoint.pt")


def test_regression_resume_does_not_repeat_errors_for_missing_paths(
    home, detector, clips, tmp_path, monkeypatch
):
    """Broke: every `scan --resume` run appended another "no such file or folder" error
    line for a path that was missing, while the older ones were kept: after three runs
    the JSONL reported that path three times. An error line is now replaced when its
    path is tried again, missing or not."""
    from likeness.pipelines.scan import ScanConfig
    from likeness.pipelines.scan_runner import run_scan

    monkeypatch.setenv("LIKENESS_HOME", str(home))
    config = ScanConfig(every=40, weights=detector, provenance=False)
    jsonl = tmp_path / "scan.jsonl"
    for _ in range(3):
        run_scan([clips / "clip00.mp4", tmp_path / "gone.mp4"], config, jsonl=jsonl, resume=True)
    names = sorted(json.loads(line)["name"] for line in jsonl.read_text().splitlines())
    assert names == ["clip00.mp4", "gone.mp4"]
