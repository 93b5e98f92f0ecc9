"""`likeness scan --backend ray`: the same lines as the local backend, a worker killed
mid-scan loses no file and scans none twice, `--resume` after a kill finishes each file
once, and a clear error without Ray. One local Ray (2 CPUs) for the module: it takes
about 15 s to start on the loaded 2-core machine, each actor about 10 s more."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from tests import samples
from tests.test_scan import read_lines, run_cli

FILES = ("astronaut.png", "astro.mp4", "blank.png", "broken.mp4", "flip.png")


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="the ray extra (make test installs it)")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")  # fmt: skip
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def never(tmp_path_factory) -> Path:
    from tests.test_scan import _weights

    return _weights(tmp_path_factory.mktemp("det") / "never", 1.0)


@pytest.fixture(scope="module")
def media(tmp_path_factory, astronaut) -> list[Path]:
    """Two face photos, a face video, a photo without a face, a corrupt video."""
    import numpy as np

    folder = tmp_path_factory.mktemp("media")
    (folder / "astronaut.png").write_bytes(samples.png_bytes(astronaut))
    (folder / "flip.png").write_bytes(samples.png_bytes(np.ascontiguousarray(astronaut[:, ::-1])))
    video = samples.face_video(folder / "astro.mp4", astronaut, frames=12)
    gradient = np.tile(np.linspace(0, 255, 160, dtype=np.uint8)[None, :, None], (120, 1, 3))
    (folder / "blank.png").write_bytes(samples.png_bytes(gradient))
    samples.truncated_copy(video, folder / "broken.mp4")
    return [folder / name for name in FILES]


@pytest.fixture(scope="module")
def local_lines(media, never, tmp_path_factory) -> dict[str, dict]:
    from likeness.pipelines.configs import ScanConfig
    from likeness.pipelines.scan_runner import run_scan

    out = tmp_path_factory.mktemp("local") / "local.jsonl"
    run_scan(media, ScanConfig(every=2, weights=never, provenance=False), jsonl=out)
    return {r["name"]: r for r in read_lines(out)}


def config(never):
    from likeness.pipelines.configs import ScanConfig

    return ScanConfig(every=2, weights=never, provenance=False)


def same_as_local(lines: list[dict], local: dict[str, dict]) -> None:
    """Every file once, each line the local backend's: verdicts, scores to 1e-6."""
    assert sorted(r["name"] for r in lines) == sorted(FILES)
    for line in lines:
        want = local[line["name"]]
        for key in ("status", "sha256", "verdict", "kind", "frames_scanned", "frames_with_face"):
            assert line[key] == want[key], (line["name"], key)
        if want["video_score"] is None:
            assert line["video_score"] is None
        else:
            assert line["video_score"] == pytest.approx(want["video_score"], abs=1e-6)
        got = [s[2] for f in line["faces"] for s in f["scores"]]
        expected = [s[2] for f in want["faces"] for s in f["scores"]]
        assert got == pytest.approx(expected, abs=1e-6), line["name"]
        assert [f["frame"] for f in line["frames"]] == [f["frame"] for f in want["frames"]]


def _scan_actor_pids() -> list[int]:
    """Processes of ScanActors, busy ones first (Ray titles them `ray::ScanActor`, and
    `ray::ScanActor.scan` while scanning)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if title.startswith(b"ray::ScanActor"):
            found.append((not title.startswith(b"ray::ScanActor.scan"), int(entry.name)))
    return [pid for _, pid in sorted(found)]


@pytest.mark.slow
def test_ray_gives_local_lines_and_a_worker_killed_mid_scan_loses_no_file(
    ray_local, media, never, local_lines, tmp_path
):
    from likeness.pipelines.scan_runner import run_scan

    killed: list[int] = []

    def kill_after_the_first_file(description, total):
        import contextlib

        def advance(n=1):
            if not killed:
                pids = _scan_actor_pids()
                assert pids, "no ScanActor process found"
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        return contextlib.nullcontext(advance)

    jsonl, html = tmp_path / "ray.jsonl", tmp_path / "ray.html"
    run = run_scan(media, config(never), jsonl=jsonl, html=html, backend="ray", workers=2,
                   progress=kill_after_the_first_file)  # fmt: skip
    assert killed and any("a Ray worker died" in note for note in run.notes), run.notes
    assert run.scanned == len(FILES)
    assert [r.name for r in run.records] == list(FILES)  # input order in the run
    # each file once, none lost, every line the local backend's (scores to 1e-6)
    same_as_local(read_lines(jsonl), local_lines)
    page = html.read_text()  # the same report, from the Ray results
    assert all(name in page for name in FILES) and "data:image/jpeg;base64," in page


@pytest.mark.slow
def test_resume_after_a_kill_finishes_each_file_once(
    ray_local, media, never, local_lines, tmp_path, monkeypatch
):
    import contextlib

    from likeness.pipelines import scan_runner

    monkeypatch.setattr(scan_runner, "CHECKPOINT_SECONDS", 0.0)  # a line per file

    def stop_at_the_third(description, total):
        count = []

        def advance(n=1):  # called after a file's line is written, before the next one's
            count.append(n)
            if len(count) == 3:
                raise KeyboardInterrupt  # as Ctrl-C or a killed driver would stop it

        return contextlib.nullcontext(advance)

    jsonl = tmp_path / "ray.jsonl"
    with pytest.raises(KeyboardInterrupt):
        scan_runner.run_scan(media, config(never), jsonl=jsonl, backend="ray", workers=2,
                             progress=stop_at_the_third)  # fmt: skip
    first = read_lines(jsonl)
    assert len(first) == 2
    run = scan_runner.run_scan(
        media, config(never), jsonl=jsonl, backend="ray", workers=2, resume=True
    )
    ok_before = sum(1 for r in first if r["status"] == "ok")
    assert run.resumed == ok_before and run.scanned == len(FILES) - ok_before
    same_as_local(read_lines(jsonl), local_lines)


def test_without_ray_the_backend_says_how_to_install(capsys, media, never, home, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code, _, err = run_cli(capsys, "scan", media[0], "--weights", never, "--backend", "ray")
    assert code == 2 and "pip install 'likeness[ray]'" in err
    assert len(err.strip().splitlines()) == 1


def test_address_needs_the_ray_backend(capsys, media, never, home):
    code, _, err = run_cli(capsys, "scan", media[0], "--weights", never, "--address", "ray://x:1")
    assert code == 2 and "--backend ray" in err


def test_the_ray_module_is_the_only_one_that_imports_ray():
    root = Path(__file__).resolve().parents[1] / "likeness"
    users = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if "import ray" in p.read_text() or "from ray" in p.read_text()
    ]
    assert users == ["pipelines/scan_ray.py"]
