"""The CLI shell: help, version, doctor, faces, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests import samples
from tests.samples import run_cli


def flatten_table(text: str) -> str:
    """A rich table's cell text as one line, whatever the terminal width wrapped."""
    return " ".join(re.sub(r"[│┃]", " ", text).split())


def test_help_lists_the_commands(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in ("faces", "doctor", "models", "version", "bench"):
        assert command in out


def test_version(capsys):
    from likeness import __version__

    code, out, _ = run_cli(capsys, "version")
    assert code == 0 and __version__ in out


def test_doctor_reports_missing_models_and_exits_1(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LIKENESS_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))  # the models' home
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 1
    assert "likeness models install" in flatten_table(out)


def test_doctor_passes_with_models(capsys, home):
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 0, out
    assert "libx264" in flatten_table(out)
    assert "likeness/weights/detector" in flatten_table(out)


def test_doctor_names_the_extra_that_installs_a_missing_optional_module(capsys, home, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "ray" else real(n, *a)
    )
    code, out, _ = run_cli(capsys, "doctor")
    table = flatten_table(out)
    assert code == 0, out  # an extra is optional: missing it is not a failure
    assert "pip install 'likeness[ray]'" in table and "fastapi" in table


def test_faces_on_an_image(capsys, home, tmp_path, astronaut):
    src = tmp_path / "astronaut.png"
    src.write_bytes(samples.png_bytes(astronaut))
    out = tmp_path / "annotated.png"
    code, stdout, err = run_cli(capsys, "faces", src, "-o", out, "--json", tmp_path / "f.json")
    assert code == 0, err
    assert "1 face(s)" in stdout
    from likeness.media import read_image

    drawn = read_image(out)
    assert drawn.shape == astronaut.shape
    assert np.abs(drawn.astype(int) - astronaut).max() > 100  # something was drawn
    record = json.loads((tmp_path / "f.json").read_text())
    assert len(record["frames"][0]["faces"]) == 1


def test_faces_on_a_video_keeps_frame_count(capsys, home, tmp_path, astronaut):
    from likeness.media import probe

    src = samples.face_video(tmp_path / "clip.mp4", astronaut, frames=12, fps=25)
    out = tmp_path / "clip.faces.mp4"
    code, stdout, err = run_cli(capsys, "faces", src, "-o", out)
    assert code == 0, err
    info = probe(out)
    assert info.frames == 12 and info.width == 256 and abs(info.fps - 25) < 0.01
    assert "12/12 frames with a face" in stdout


def _bad_inputs(tmp_path: Path, astronaut: np.ndarray) -> dict[str, Path]:
    d = tmp_path / "bad"
    d.mkdir()
    good = samples.face_video(tmp_path / "good.mp4", astronaut, frames=20)
    (d / "empty.mp4").write_bytes(b"")
    (d / "renamed.mp4").write_bytes(samples.png_bytes(astronaut))
    (d / "notes.mp4").write_text("this is not a video\n" * 50)
    (d / "folder.mp4").mkdir()
    from skimage import data

    (d / "coffee.png").write_bytes(samples.png_bytes(np.ascontiguousarray(data.coffee())))
    return {
        "missing": d / "missing.mp4",
        "empty": d / "empty.mp4",
        "png renamed": d / "renamed.mp4",
        "truncated": samples.truncated_copy(good, d / "truncated.mp4"),
        "text": d / "notes.mp4",
        "audio only": samples.audio_only(d / "audio.m4a"),
        "no face": d / "coffee.png",
        "huge header": samples.huge_png_header(d / "huge.png"),
        "directory": d / "folder.mp4",
    }


BAD = ["missing", "empty", "png renamed", "truncated", "text", "audio only", "no face",
       "huge header", "directory"]  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_bad_input_gives_one_line_exit_2_and_no_output(capsys, home, tmp_path, astronaut, case):
    src = _bad_inputs(tmp_path, astronaut)[case]
    out_dir = tmp_path / "outputs"
    out_dir.mkdir()
    suffix = ".png" if case in {"no face", "huge header"} else ".mp4"
    code, _, err = run_cli(capsys, "faces", src, "-o", out_dir / f"out{suffix}")
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("where", ["missing folder", "unwritable folder", "same as input"])
def test_bad_output_path(capsys, home, tmp_path, astronaut, where):
    src = tmp_path / "astronaut.png"
    src.write_bytes(samples.png_bytes(astronaut))
    if where == "missing folder":
        out = tmp_path / "nope" / "out.png"
    elif where == "unwritable folder":
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        out = locked / "out.png"
        if os.access(locked, os.W_OK):  # root ignores permissions: use a folder no one writes
            out = Path("/proc/self/out.png")
    else:
        out = src
    before = src.read_bytes()
    code, _, err = run_cli(capsys, "faces", src, "-o", out)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1
    assert src.read_bytes() == before
    if where != "same as input":
        assert not out.exists()
