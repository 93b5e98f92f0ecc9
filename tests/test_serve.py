"""`likeness serve`: the JSON API and the page, through FastAPI's TestClient and httpx.

A tiny untrained detector with threshold 1 (never "manipulated") keeps the scans fast
and the verdicts independent of what it learned; the assertions are about the app: the
record's shape (the shipped JSON Schema), one-line JSON errors with their statuses,
nothing left on disk after any request, the name of an upload never used as a path,
the token, two uploads at once, and an animated MP4 that verifies.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi", reason="likeness serve needs the serve extra: pip install .[serve]")
pytest.importorskip("httpx", reason="the TestClient needs httpx: pip install .[test]")

from fastapi.testclient import TestClient

from likeness.errors import InputError
from likeness.pipelines.configs import ScanConfig
from likeness.serve import ServeConfig, create_app
from tests import samples

torch.set_num_threads(1)
LIMIT = 1_000_000  # bytes per request in these tests (the face clip is ~20 kB)


def _weights(folder: Path, threshold: float) -> Path:
    """An untrained tiny detector with a fixed threshold (1: never manipulated)."""
    from likeness.detector.calibrate import Calibration
    from likeness.detector.config import preset
    from likeness.detector.model import Decision, save_weights
    from likeness.detector.network import FaceClassifier

    torch.manual_seed(0)
    decision = Decision(calibration=Calibration("platt", 1.0, 0.0), threshold=threshold)
    save_weights(FaceClassifier(preset("tiny")), folder, decision)
    return folder


@pytest.fixture(scope="module")
def served(tmp_path_factory, astronaut):
    """One app (module-wide): its temp root, its media and a LIKENESS_HOME of its own."""
    from tests.conftest import MODELS_ROOT

    base = tmp_path_factory.mktemp("serve")
    home = base / "home"
    home.mkdir()
    (home / "models").symlink_to(MODELS_ROOT, target_is_directory=True)
    media = base / "media"
    media.mkdir()
    video = samples.face_video(media / "astro.mp4", astronaut, frames=12)
    (media / "astronaut.png").write_bytes(samples.png_bytes(astronaut))
    samples.truncated_copy(video, media / "broken.mp4")
    never = _weights(base / "never", 1.0)
    uploads = base / "uploads"
    config = ServeConfig(
        temp_root=uploads, max_upload_bytes=LIMIT, scan=ScanConfig(weights=never, every=2)
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIKENESS_HOME", str(home))
        with TestClient(create_app(config)) as client:
            yield client, media, uploads, config


def _empty(root: Path) -> None:
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert left == [], f"left on disk after the request: {left}"


def _one_line_error(resp, status: int) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    data = resp.json()
    assert set(data) == {"error"} and isinstance(data["error"], str)
    assert "\n" not in data["error"] and data["error"].strip()
    assert "Traceback" not in resp.text
    return data["error"]


def _upload(path: Path, name: str | None = None, field: str = "file") -> dict:
    return {field: (name or path.name, path.read_bytes(), "application/octet-stream")}


# ---------------------------------------------------------------- health, page, docs


def test_health_answers_with_the_limits_and_no_token(served):
    client, _, _, config = served
    data = client.get("/v1/health").json()
    assert data["status"] == "ok"
    assert data["token_required"] is False
    assert data["max_upload_bytes"] == config.max_upload_bytes == LIMIT


def test_page_has_a_file_input_and_only_same_origin_scripts(served):
    client = served[0]
    resp = client.get("/")
    assert resp.status_code == 200
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    page = resp.text
    assert '<input type="file" id="file"' in page and 'id="drop"' in page
    assert '<script src="/app.js"' in page and "http://" not in page and "https://" not in page
    js = client.get("/app.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert "/v1/scan?format=html" in js.text and "import " not in js.text


def test_docs_page_needs_no_cdn_and_lists_the_api(served):
    client = served[0]
    spec = client.get("/openapi.json").json()
    assert {"/v1/scan", "/v1/verify", "/v1/animate", "/v1/health"} <= set(spec["paths"])
    body = spec["paths"]["/v1/scan"]["post"]["requestBody"]["content"]
    assert body["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    docs = client.get("/docs").text
    assert "<script" not in docs and "cdn" not in docs.lower()
    for path in spec["paths"]:
        assert path in docs


def test_unknown_page_is_a_json_error(served):
    assert "/nope" in _one_line_error(served[0].get("/nope"), 404)


# ---------------------------------------------------------------- scan


def test_scan_answers_the_record_the_schema_describes(served):
    import jsonschema

    from likeness.api import schema_path

    client, media, uploads, _ = served
    resp = client.post("/v1/scan", files=_upload(media / "astro.mp4"))
    assert resp.status_code == 200, resp.text
    record = resp.json()
    jsonschema.validate(record, json.loads(schema_path().read_text()))
    assert record["name"] == record["path"] == "astro.mp4"
    assert record["kind"] == "video" and record["frames_scanned"] == 6  # 12 frames, every 2
    assert record["faces"] and record["verdict"] == "likely-real"  # threshold 1
    assert str(uploads) not in resp.text and "upload-0" not in resp.text
    assert resp.headers["server-timing"] == f"scan;dur={record['seconds'] * 1000:.1f}"
    _empty(uploads)


def test_scan_as_html_is_the_reports_own_section(served):
    from likeness.pipelines.report import render_file
    from likeness.pipelines.scan_record import ScanRecord

    client, media, uploads, _ = served
    resp = client.post("/v1/scan?format=html", files=_upload(media / "astronaut.png"))
    assert resp.status_code == 200, resp.text
    html = resp.text
    assert html.startswith('<section class="file">')
    assert '<svg class="timeline"' in html and "<h3>Provenance</h3>" in html
    assert "likely-real" in html
    # the same renderer: a JSON scan of the same file renders to the same markup, bar
    # the timing line and the images (not in the JSON)
    again = client.post("/v1/scan", files=_upload(media / "astronaut.png"))
    record = ScanRecord.from_dict(again.json())
    assert render_file(record).split("<h3>")[0] == html.split("<h3>")[0]
    # a thumbnail and a heat overlay per top frame (the tiny detector has a mask head)
    assert html.count("data:image/jpeg;base64,") == 2 * len(record.top_frames) > 0
    _empty(uploads)


def test_text_file_named_mp4_is_refused_before_it_is_stored(served):
    client, _, uploads, _ = served
    files = {"file": ("clip.mp4", b"#!/bin/sh\nrm -rf /\n" * 100, "video/mp4")}
    error = _one_line_error(client.post("/v1/scan", files=files), 415)
    assert "clip.mp4" in error and "not a video or image" in error
    _empty(uploads)


def test_empty_file_and_malformed_form_are_one_line_errors(served):
    client, _, uploads, _ = served
    error = _one_line_error(client.post("/v1/scan", files={"file": ("e.mp4", b"")}), 415)
    assert "e.mp4 is empty" in error
    garbage = {"content-type": "multipart/form-data; boundary=zz"}
    resp = client.post("/v1/scan", content=b"--zz\r\nno headers here" * 50, headers=garbage)
    assert resp.status_code == 400 and len(resp.json()["error"].splitlines()) == 1
    # a form's file input left empty (filename="", no bytes) counts as not sent
    unchosen = (
        b'--zz\r\nContent-Disposition: form-data; name="file"; filename=""\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n\r\n--zz--\r\n"
    )
    resp = client.post("/v1/scan", content=unchosen, headers=garbage)
    assert "the form is empty" in _one_line_error(resp, 400)
    _empty(uploads)


def test_video_that_does_not_decode_is_a_415(served):
    client, media, uploads, _ = served
    error = _one_line_error(client.post("/v1/scan", files=_upload(media / "broken.mp4")), 415)
    assert "broken.mp4" in error and "upload-" not in error
    _empty(uploads)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("../../etc/passwd.mp4", "passwd.mp4"),
        ("..\\..\\windows\\x.mp4", "x.mp4"),
        ("/etc/passwd", "passwd"),
        ("..", "upload"),
    ],
)
def test_path_like_file_name_is_a_label_never_a_path(served, name, label):
    client, media, uploads, _ = served
    before = set(uploads.parent.rglob("*"))
    resp = client.post("/v1/scan", files=_upload(media / "astro.mp4", name=name))
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == resp.json()["path"] == label
    assert set(uploads.parent.rglob("*")) == before  # nothing new anywhere beside it
    assert not Path("/etc/passwd.mp4").exists()
    _empty(uploads)


def test_upload_over_the_limit_is_a_413_and_leaves_nothing(served):
    client, _, uploads, config = served
    big = b"\x00\x00\x00\x18ftypisom" + bytes(config.max_upload_bytes)
    error = _one_line_error(client.post("/v1/scan", files={"file": ("big.mp4", big)}), 413)
    assert "1 MB" in error
    _empty(uploads)


def test_limit_is_enforced_while_streaming_not_after(tmp_path):
    """A body without Content-Length: reading stops at the limit, and what was stored
    never passes it."""
    from likeness.serve.errors import UploadTooLarge
    from likeness.serve.uploads import receive_form

    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode() + b"\x00\x00\x00\x18ftypisom"
    chunk = 64 * 1024
    pulled = []

    async def body():
        yield head
        for n in range(10_000):  # 655 MB if it were all read
            pulled.append(n)
            yield bytes(chunk)

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    with pytest.raises(UploadTooLarge):
        asyncio.run(receive_form(headers, body(), tmp_path, 4 * chunk, {"file"}))
    assert len(pulled) <= 5
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 4 * chunk


def test_declared_length_over_the_limit_is_refused_before_reading(tmp_path):
    from likeness.serve.errors import UploadTooLarge
    from likeness.serve.uploads import receive_form

    async def body():
        raise AssertionError("the body was read")
        yield b""

    headers = {"content-type": "multipart/form-data; boundary=x", "content-length": "999999"}
    with pytest.raises(UploadTooLarge):
        asyncio.run(receive_form(headers, body(), tmp_path, 1000, {"file"}))


def test_a_form_without_the_file_field_is_a_400(served):
    client, media, uploads, _ = served
    resp = client.post("/v1/scan", files=_upload(media / "astro.mp4", field="other"))
    assert "other" in _one_line_error(resp, 400)
    assert "multipart" in _one_line_error(client.post("/v1/scan", content=b"{}"), 415)
    _empty(uploads)


def test_two_uploads_at_once_both_answer(served):
    import httpx

    client, media, uploads, _ = served
    app = client.app

    async def both():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await asyncio.gather(
                c.post("/v1/scan", files=_upload(media / "astro.mp4", "one.mp4")),
                c.post("/v1/scan", files=_upload(media / "astronaut.png", "two.png")),
                c.get("/v1/health"),
            )

    one, two, health = asyncio.run(both())
    assert one.status_code == two.status_code == health.status_code == 200
    assert (one.json()["name"], one.json()["kind"]) == ("one.mp4", "video")
    assert (two.json()["name"], two.json()["kind"]) == ("two.png", "image")
    _empty(uploads)


def test_verify_answers_the_verification(served):
    client, media, uploads, _ = served
    resp = client.post("/v1/verify", files=_upload(media / "astro.mp4", "mine.mp4"))
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["path"] == "mine.mp4"
    assert data["manifest"] == "no-manifest" and data["verified"] is False
    _empty(uploads)


def test_latency_bench_separates_the_app_from_the_scan(served):
    from likeness.bench.serve_latency import measure

    _, media, _, config = served
    figures = measure(media / "astro.mp4", repeats=2, config=config.scan)
    assert figures["verdict"] == figures["served_verdict"] == "likely-real"
    assert len(figures["serve_s"]) == len(figures["added_s"]) == 2
    # what the app adds is part of each request's wall time, and positive
    assert all(0 < a < s for a, s in zip(figures["added_s"], figures["serve_s"], strict=True))
    assert figures["meets_target"] == (figures["overhead_s"] < 0.5)


# ---------------------------------------------------------------- token and binding


def test_token_is_required_when_set(served, tmp_path):
    _, media, _, config = served
    app = create_app(ServeConfig(token="s3cret", temp_root=tmp_path / "up", scan=config.scan))
    with TestClient(app) as client:
        assert client.get("/v1/health").json()["token_required"] is True
        resp = client.post("/v1/scan", files=_upload(media / "astronaut.png"))
        assert "token" in _one_line_error(resp, 401)
        assert resp.headers["www-authenticate"] == "Bearer"
        wrong = {"Authorization": "Bearer nope"}
        resp = client.post("/v1/scan", files=_upload(media / "astronaut.png"), headers=wrong)
        _one_line_error(resp, 401)
        right = {"Authorization": "Bearer s3cret"}
        ok = client.post("/v1/scan", files=_upload(media / "astronaut.png"), headers=right)
        assert ok.status_code == 200 and ok.json()["kind"] == "image"
    _empty(tmp_path / "up")


def test_non_loopback_host_needs_a_token(capsys, monkeypatch):
    from likeness.cli import main

    monkeypatch.delenv("LIKENESS_SERVE_TOKEN", raising=False)
    with pytest.raises(InputError, match="without a token"):
        ServeConfig(host="0.0.0.0")
    assert ServeConfig(host="0.0.0.0", token="t").token == "t"
    assert ServeConfig(host="::1").host == "::1"
    assert main(["serve", "--host", "192.168.1.20"]) == 2
    err = capsys.readouterr().err.strip()
    assert "without a token" in err and len(err.splitlines()) == 1


def test_without_the_serve_extra_the_command_says_how_to_install(capsys, monkeypatch):
    import subprocess
    import sys

    from likeness.cli import main

    # importing the CLI and the package loads no FastAPI (it is an optional extra)
    code = "import sys, likeness.cli, likeness.serve; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi -> ImportError
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install likeness[serve]" in err and len(err.splitlines()) == 1


# ---------------------------------------------------------------- animate


def test_animate_without_keys_is_a_503_that_says_how(served, home, tmp_path):
    _, media, _, config = served
    app = create_app(ServeConfig(temp_root=tmp_path / "up", scan=config.scan))
    with TestClient(app) as client:
        resp = client.post("/v1/animate", files=_upload(media / "astronaut.png", field="photo"))
        assert "likeness keys init" in _one_line_error(resp, 503)


@pytest.mark.slow
def test_animate_returns_a_signed_mp4_that_verifies(served, keys, root_pem, tiny_weights, tmp_path):
    _, media, _, config = served
    scan = ScanConfig(weights=config.scan.weights, trust=(root_pem,))
    up = tmp_path / "up"
    app = create_app(ServeConfig(temp_root=up, scan=scan, generator_weights=tiny_weights))
    with TestClient(app) as client:
        form = {"motion": "blink", "max_frames": "6"}
        bad = client.post("/v1/animate", files=_upload(media / "astro.mp4", field="photo"))
        assert "must be an image" in _one_line_error(bad, 415)
        neither = client.post(
            "/v1/animate", files=_upload(media / "astronaut.png", "p.png", "photo")
        )
        assert '"motion"' in _one_line_error(neither, 400)
        files = {
            **_upload(media / "astronaut.png", field="photo"),
            **_upload(media / "astro.mp4", field="driving"),
        }
        both = client.post("/v1/animate", files=files, data=form)
        assert "one of them" in _one_line_error(both, 400)
        resp = client.post(
            "/v1/animate", files=_upload(media / "astronaut.png", field="photo"), data=form
        )
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "video/mp4"
        assert resp.headers["x-likeness-frames"] == "6"
        made = tmp_path / "animated.mp4"
        made.write_bytes(resp.content)
        checked = client.post("/v1/verify", files=_upload(made))
        plain = client.post(
            "/v1/animate",
            files=_upload(media / "astronaut.png", field="photo"),
            data={**form, "label": "false"},
        )
        assert plain.status_code == 200, plain.text
        (tmp_path / "plain.mp4").write_bytes(plain.content)
        unlabelled = client.post("/v1/verify", files=_upload(tmp_path / "plain.mp4")).json()
        bad_label = client.post(
            "/v1/animate",
            files=_upload(media / "astronaut.png", field="photo"),
            data={**form, "label": "maybe"},
        )
        assert "label must be true or false" in _one_line_error(bad_label, 400)
        _empty(up)
    assert checked.status_code == 200, checked.text
    data = checked.json()
    assert data["manifest"] == "trusted" and data["verified"] is True
    assert data["watermark"]["found"] is True
    payload = data["watermark"]["payload"]
    payload = payload["hex"] if isinstance(payload, dict) else payload
    assert resp.headers["x-likeness-payload"] == payload
    # The web app labels by default; the manifest says so, and label=false turns it off.
    assert data["manifest_summary"]["visible_label"]["text"] == "AI-generated"
    assert unlabelled["manifest_summary"].get("visible_label") is None


# ---------------------------------------------------------------- sniffing, names


def test_sniffed_suffixes_are_media_suffixes():
    from likeness.media.suffixes import MEDIA_SUFFIXES
    from likeness.serve.sniff import sniff_upload

    heads = {
        b"\x89PNG\r\n\x1a\n" + bytes(8): ("image", ".png"),
        b"\xff\xd8\xff\xe0" + bytes(8): ("image", ".jpg"),
        b"\x00\x00\x00\x18ftypisom" + bytes(8): ("video", ".mp4"),
        b"\x00\x00\x00\x14ftypqt  " + bytes(8): ("video", ".mov"),
        b"\x1a\x45\xdf\xa3" + b"\x00" * 20 + b"webm": ("video", ".webm"),
        b"RIFF\x00\x00\x00\x00AVI LIST": ("video", ".avi"),
        b"GIF89a" + bytes(8): ("video", ".gif"),
        b"\x00\x00\x01\xba" + bytes(8): ("video", ".mpg"),
        (b"\x47" + bytes(187)) * 3: ("video", ".ts"),
    }
    for head, want in heads.items():
        assert sniff_upload(head) == want, head[:12]
        assert want[1] in MEDIA_SUFFIXES
    for junk in (b"", b"hello world", b"G" + b"o" * 400, b"%PDF-1.7\n", b"PK\x03\x04"):
        assert sniff_upload(junk) is None


def test_display_name_keeps_only_a_printable_last_component():
    from likeness.serve.uploads import display_name

    assert display_name("../../etc/passwd.mp4") == "passwd.mp4"
    assert display_name("C:\\Users\\me\\clip.mov") == "clip.mov"
    assert display_name("\x1b[31mred.png") == "?[31mred.png"
    assert display_name("") == display_name(None) == display_name("a/..") == "upload"
    assert len(display_name("x" * 5000)) == 200
    assert os.sep not in display_name("/" * 10 + "y")


def test_temp_root_is_private(tmp_path):
    from likeness.serve.uploads import request_folder, temp_root

    root = temp_root(tmp_path / "root")
    assert root.stat().st_mode & 0o077 == 0
    with pytest.raises(RuntimeError), request_folder(root) as folder:
        (folder / "x").write_bytes(b"1")
        raise RuntimeError("a failing request")
    assert list(root.iterdir()) == []
