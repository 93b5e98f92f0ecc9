"""`likeness scan`: folders with bad files, no-face photos, resume, exit codes, the JSON
lines, the HTML report (escaping, and a real browser), and, with the shipped detector,
verdicts on a generated and a held-out real video."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from likeness.cli import main
from tests import samples

torch.set_num_threads(1)
CHROMIUM = Path("/usr/bin/chromium")
SCHEMA_KEYS = {
    "schema", "path", "name", "status", "error", "sha256", "kind", "width", "height", "fps",
    "duration_s", "sampling", "frames_scanned", "frames_with_face", "faces", "frames",
    "video_score", "threshold", "verdict", "top_frames", "provenance", "provenance_error",
    "model", "seconds", "likeness",
}  # fmt: skip


def run_cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _weights(folder: Path, threshold: float) -> Path:
    """An untrained tiny detector with a fixed threshold: verdicts that do not depend on
    what it learned (threshold 1: never manipulated; 0: always, when there is a face)."""
    from likeness.detector.calibrate import Calibration
    from likeness.detector.config import preset
    from likeness.detector.model import Decision, save_weights
    from likeness.detector.network import FaceClassifier

    torch.manual_seed(0)
    decision = Decision(calibration=Calibration("platt", 1.0, 0.0), threshold=threshold)
    save_weights(FaceClassifier(preset("tiny")), folder, decision)
    return folder


@pytest.fixture(scope="module")
def never(tmp_path_factory) -> Path:
    return _weights(tmp_path_factory.mktemp("det") / "never", 1.0)


@pytest.fixture(scope="module")
def always(tmp_path_factory) -> Path:
    return _weights(tmp_path_factory.mktemp("det") / "always", 0.0)


@pytest.fixture(scope="module")
def media(tmp_path_factory, astronaut) -> Path:
    """A face photo, a face video, a photo without a face and a corrupt video."""
    folder = tmp_path_factory.mktemp("media")
    (folder / "astronaut.png").write_bytes(samples.png_bytes(astronaut))
    video = samples.face_video(folder / "astro.mp4", astronaut, frames=12)
    gradient = np.tile(np.linspace(0, 255, 160, dtype=np.uint8)[None, :, None], (120, 1, 3))
    (folder / "blank.png").write_bytes(samples.png_bytes(gradient))
    samples.truncated_copy(video, folder / "broken.mp4")
    (folder / "notes.txt").write_text("not media, and not picked up from a folder\n")
    return folder


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, media, never):
    """One scan of the media folder with JSON lines and a report (CLI, module-wide)."""
    import os

    out = tmp_path_factory.mktemp("scan")
    home = out / "home"
    home.mkdir()
    from tests.conftest import MODELS_ROOT

    (home / "models").symlink_to(MODELS_ROOT, target_is_directory=True)
    old = os.environ.get("LIKENESS_HOME")
    os.environ["LIKENESS_HOME"] = str(home)
    try:
        code = main(["scan", str(media), "--weights", str(never), "--every", "2", "--json",
                     str(out / "scan.jsonl"), "--html", str(out / "report.html")])  # fmt: skip
    finally:
        if old is None:
            os.environ.pop("LIKENESS_HOME", None)
        else:
            os.environ["LIKENESS_HOME"] = old
    return code, out / "scan.jsonl", out / "report.html"


def test_folder_with_a_corrupt_file_scans_the_rest(scanned):
    code, jsonl, _ = scanned
    assert code == 0
    lines = {r["name"]: r for r in read_lines(jsonl)}
    assert set(lines) == {"astronaut.png", "astro.mp4", "blank.png", "broken.mp4"}
    for record in lines.values():
        assert set(record) == SCHEMA_KEYS and record["schema"] == "likeness-scan/1"
    broken = lines["broken.mp4"]
    assert broken["status"] == "error" and broken["verdict"] == "error"
    assert broken["error"]["kind"] == "media" and "broken.mp4" in broken["error"]["message"]
    assert len(broken["sha256"]) == 64
    video = lines["astro.mp4"]
    assert video["status"] == "ok" and video["kind"] == "video"
    assert video["frames_scanned"] == 6 and video["frames_with_face"] == 6
    assert video["verdict"] == "likely-real" and 0 <= video["video_score"] <= 1
    face = video["faces"][0]
    assert face["frames"] == 6 and len(face["scores"]) == 6 and face["counted"]
    assert len(video["top_frames"]) == 3
    assert len({t["frame"] for t in video["top_frames"]}) == 3
    assert all(len(t["box"]) == 4 for t in video["top_frames"])
    photo = lines["astronaut.png"]
    assert photo["kind"] == "image" and photo["frames_scanned"] == 1 and len(photo["faces"]) == 1
    assert photo["provenance"]["manifest"] == "no-manifest"
    assert photo["model"]["name"] == "likeness-detector-tiny"


def test_photo_without_a_face_scans_as_no_face(scanned):
    _, jsonl, _ = scanned
    blank = next(r for r in read_lines(jsonl) if r["name"] == "blank.png")
    assert blank["status"] == "ok" and blank["verdict"] == "no-face"
    assert blank["video_score"] is None and blank["faces"] == [] and blank["frames_scanned"] == 1


def test_resume_skips_files_already_in_the_jsonl(scanned, media, never, tmp_path, home):
    from likeness.pipelines.scan import ScanConfig
    from likeness.pipelines.scan_runner import run_scan

    _, jsonl, _ = scanned
    copy = tmp_path / "scan.jsonl"
    shutil.copy(jsonl, copy)
    before = {r["name"]: r for r in read_lines(copy)}
    run = run_scan([media], ScanConfig(every=2, weights=never), jsonl=copy, resume=True)
    assert run.resumed == 3 and run.scanned == 1  # the corrupt file is tried again
    after = read_lines(copy)
    assert len(after) == 4
    for record in after:
        if record["status"] == "ok":
            assert record == before[record["name"]]
    assert run.exit_code == 0


def test_a_process_pool_gives_the_same_lines(scanned, media, never, tmp_path, home):
    from likeness.pipelines.scan import ScanConfig
    from likeness.pipelines.scan_runner import run_scan

    _, jsonl, _ = scanned
    files = [media / "astro.mp4", media / "blank.png"]
    run = run_scan(files, ScanConfig(every=2, weights=never), workers=2)
    before = {r["name"]: r for r in read_lines(jsonl)}
    assert [r.name for r in run.records] == ["astro.mp4", "blank.png"]  # input order
    for record in run.records:
        expected = before[record.name]
        for key in ("sha256", "verdict", "video_score", "faces", "frames", "top_frames"):
            assert record.to_dict()[key] == expected[key], key


def test_something_manipulated_exits_3(capsys, media, always, home, tmp_path):
    code, out, _ = run_cli(
        capsys, "scan", media / "astronaut.png", media / "blank.png", "--weights", always,
        "--json", tmp_path / "s.jsonl", "--no-provenance",
    )  # fmt: skip
    assert code == 3
    verdicts = {r["name"]: r["verdict"] for r in read_lines(tmp_path / "s.jsonl")}
    assert verdicts == {"astronaut.png": "manipulated", "blank.png": "no-face"}
    assert "manipulated" in out


def test_nothing_scannable_exits_2(capsys, never, tmp_path, home):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "scan", tmp_path / "empty", "--weights", never)
    assert code == 2 and "nothing to scan" in err
    code, _, err = run_cli(capsys, "scan", tmp_path / "missing.mp4", "--weights", never)
    assert code == 2 and "no such file" in err
    code, _, err = run_cli(capsys, "scan", tmp_path, "--resume", "--weights", never)
    assert code == 2 and "--resume needs --json" in err


def test_without_detector_weights_scan_fails_with_a_clear_error(
    capsys, media, tmp_path, monkeypatch
):
    import likeness.detector.model as model

    monkeypatch.setattr(model, "DEFAULT_WEIGHTS", tmp_path / "weights" / "detector")
    code, _, err = run_cli(capsys, "scan", media / "astronaut.png")
    assert code == 2
    assert "no shipped detector in" in err and "likeness train detector" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_hostile_file_name_is_escaped_everywhere(capsys, astronaut, never, tmp_path, home):
    folder = tmp_path / "in"
    folder.mkdir()
    name = "<script>alert(1)<img src=x onerror=alert(2)>.png"
    (folder / name).write_bytes(samples.png_bytes(astronaut))
    report = tmp_path / "report.html"
    code, _, _ = run_cli(
        capsys, "scan", folder, "--weights", never, "--html", report, "--no-provenance"
    )
    assert code == 0
    text = report.read_text()
    assert "<script" not in text.lower() and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;img src=x onerror=alert(2)&gt;.png" in text


def test_manifest_fields_are_escaped_in_the_report():
    from likeness.pipelines.report import render_report
    from likeness.pipelines.scan_record import ScanRecord

    hostile = "<script>alert('manifest')</script>"
    record = {
        "schema": "likeness-scan/1", "path": "/x/clip.mp4", "name": "clip.mp4", "status": "ok",
        "kind": "video", "width": 64, "height": 64, "duration_s": 2.0, "frames_scanned": 2,
        "frames_with_face": 2, "video_score": 0.9, "threshold": 0.5, "verdict": "manipulated",
        "faces": [{"face": 0, "frames": 2, "video_score": 0.9, "counted": True,
                   "largest_box": [1, 2, 3, 4], "scores": [[0, 0.0, 0.8], [10, 1.0, 0.95]]}],
        "top_frames": [{"frame": 10, "time": 1.0, "face": 0, "score": 0.95, "box": [1, 2, 3, 4]}],
        "provenance": {
            "manifest": "valid-untrusted", "verified": False, "reasons": [hostile],
            "manifest_summary": {"title": hostile, "generator": hostile, "signer": hostile,
                                 "actions": [hostile], "model": {"name": hostile},
                                 "ingredients": [hostile], "digital_source_type": hostile},
            "watermark": {"found": True, "payload": {"hex": hostile}, "p_false": 1e-9},
            "store_match": "payload",
            "store_record": {"id": 1, "file_name": hostile, "created_utc": hostile},
        },
    }  # fmt: skip
    text = render_report([ScanRecord.from_dict(record)], {"/x/clip.mp4": {10: b"\xff\xd8\xff"}})
    assert "<script" not in text.lower()
    assert text.count("&lt;script&gt;alert(&#x27;manifest&#x27;)&lt;/script&gt;") >= 8
    assert text.count('<svg class="timeline"') == 1
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)"
)
def test_report_opens_in_headless_chromium_with_one_chart_per_file(scanned, tmp_path):
    _, jsonl, report = scanned
    flags = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
        "--v=0",
    ]  # fmt: skip
    url = report.resolve().as_uri()
    dom = subprocess.run(
        [*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    )
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console  # no script errors, no blocked loads
    ok = [r for r in read_lines(jsonl) if r["status"] == "ok"]
    assert dom.stdout.count('<svg class="timeline"') == len(ok) == 3
    # Per top frame a thumbnail and the dense head's heat overlay (the tiny detector
    # has a mask head).
    tops = sum(len(r["top_frames"]) for r in ok)
    assert dom.stdout.count("data:image/jpeg;base64,") == 2 * tops > 0
    shot = tmp_path / "report.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1100,1400", url],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


# --- quality, with the shipped detector -------------------------------------------------


def _shipped_or_skip() -> None:
    from likeness.detector.model import CALIBRATION_NAME, DEFAULT_WEIGHTS
    from likeness.weights_io import WEIGHTS_NAME

    if (
        not (DEFAULT_WEIGHTS / WEIGHTS_NAME).is_file()
        or not (DEFAULT_WEIGHTS / CALIBRATION_NAME).is_file()
    ):
        pytest.skip(
            f"no shipped detector in {DEFAULT_WEIGHTS} (train one and copy RUN/weights there)"
        )


@pytest.mark.corpus
@pytest.mark.slow
def test_generated_video_with_watermark_stripped_scans_as_manipulated(corpus, home, tmp_path):
    _shipped_or_skip()
    from likeness.generator.model import DEFAULT_WEIGHTS as GENERATOR

    if not (GENERATOR / "model.safetensors").is_file():
        pytest.skip(f"no shipped generator in {GENERATOR}")
    from likeness.pipelines.animate import AnimateConfig, animate
    from likeness.pipelines.scan import ScanConfig
    from likeness.pipelines.scan_runner import run_scan
    from likeness.provenance.keys import init_keys

    init_keys(passphrase="")
    made = tmp_path / "animated.mp4"
    animate(
        corpus / "photos" / "st-people0.png",
        made,
        driving=corpus / "videos" / "ap-pose-ref.mp4",
        config=AnimateConfig(max_frames=60, device="cpu"),
    )
    stripped = tmp_path / "reencoded.mp4"
    _reencode_half_size(made, stripped, crf=30)
    run = run_scan([stripped], ScanConfig())
    record = run.records[0]
    assert record.provenance.manifest == "no-manifest"
    assert not record.provenance.watermark["found"], "re-encoding left the watermark"
    assert record.verdict == "manipulated", record.video_score


@pytest.mark.corpus
@pytest.mark.slow
def test_held_out_real_clip_scans_as_likely_real(corpus, home):
    _shipped_or_skip()
    from likeness.datasets.identities import load_split
    from likeness.pipelines.scan import ScanConfig
    from likeness.pipelines.scan_runner import run_scan

    clip = corpus / "videos" / "ap-pose-ref.mp4"
    assert load_split().split_for("ap-pose-ref") == "test"  # never trained or calibrated on
    record = run_scan([clip], ScanConfig()).records[0]
    assert record.verdict == "likely-real", record.video_score


def _reencode_half_size(src: Path, dst: Path, crf: int) -> None:
    """Decode, turn by 25 degrees, encode again at half size: drops the C2PA manifest,
    and the turn is beyond the watermark's rotation search (it finds turns up to 15
    degrees; half size and CRF 30 alone do not remove it: it is made to survive them).
    Face crops are aligned, so the turn does not matter to the detector."""
    import cv2

    from likeness.media import VideoWriter, iter_frames, probe

    info = probe(src)
    size = (info.width // 4 * 2, info.height // 4 * 2)
    turn = cv2.getRotationMatrix2D((size[0] / 2, size[1] / 2), 25.0, 1.0)
    with VideoWriter(dst, fps=info.fps, crf=crf) as writer:
        for frame in iter_frames(src):
            half = cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA)
            writer.write(cv2.warpAffine(half, turn, size, borderMode=cv2.BORDER_REFLECT_101))


def test_report_shows_where_the_dense_head_saw_a_change(scanned):
    _, _, html_path = scanned
    html = html_path.read_text()
    # The tiny detector has a mask head: each face file's top frames get an overlay.
    assert html.count("where the detector saw a change") >= 2


def test_heat_overlay_lands_on_the_face_through_the_crop_transform():
    import cv2

    from likeness.pipelines.scan import heat_overlay

    frame = np.full((200, 300, 3), 128, np.uint8)
    heat = np.zeros((8, 8), np.float32)
    heat[:, :4] = 1.0  # the crop's left half changed
    # The 256 px crop shows the frame's box x 100-164, y 50-114 (scale 1/4).
    inverse = np.array([[0.25, 0.0, 100.0], [0.0, 0.25, 50.0]])
    data = heat_overlay(frame, heat, inverse, (100, 50, 164, 114), side=300)
    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert out.shape == (200, 300, 3)
    changed = np.abs(out.astype(int) - 128).sum(axis=2) > 60
    assert changed[60:105, 105:128].mean() > 0.9  # the left half of the face box
    assert changed[60:105, 136:160].mean() < 0.1  # its right half
    assert not changed[150:, :].any() and not changed[:, :90].any()  # outside the box
