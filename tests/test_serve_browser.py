"""`likeness serve` in a real browser: uvicorn on a free port, Debian's Chromium driven
by Playwright's Python package (the system browser, never `playwright install`).

The page is used as a person would: a corpus clip through the file input, a photo
dropped on the drop zone, a text file dropped by mistake; the verdict is read off the
page and compared with `likeness.api.scan` of the same file.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
CLIP = "videos/st2-furious-talk2-clip1.mp4"  # 2 s, one face
PHOTO = "photos/clm-cage.jpg"
LIMIT = 3_000_000  # bytes per request: the clip and photo fit, the "big" drop does not

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


@pytest.fixture
def server(home, tmp_path):
    """uvicorn serving the app (shipped detector) on a free loopback port, in a thread."""
    pytest.importorskip("uvicorn", reason="needs the serve extra: pip install .[serve]")
    from likeness.serve import Engine, ServeConfig, create_app
    from likeness.serve.server import running

    config = ServeConfig(temp_root=tmp_path / "uploads", port=0, max_upload_bytes=LIMIT)
    engine = Engine(config)
    engine.warm_up()
    with running(create_app(config, engine)) as url:
        yield url, config.temp_root


def _drop(page, data: bytes, name: str, mime: str) -> None:
    """Drop a file on the drop zone, as a drag from the desktop would."""
    page.evaluate(
        """([b64, name, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, {type: mime}));
            const zone = document.getElementById("drop");
            zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
        }""",
        [base64.b64encode(data).decode("ascii"), name, mime],
    )


@pytest.mark.corpus
@pytest.mark.slow  # ~40 s on the loaded 2-core machine, most of it loading the detector
def test_page_scans_an_upload_and_shows_the_verdict(server, corpus):
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="needs Playwright's Python package: pip install .[test]"
    )
    from likeness import api
    from likeness.pipelines.configs import ScanConfig

    url, uploads = server
    clip, photo = corpus / CLIP, corpus / PHOTO
    problems: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
            page.on(
                "console",
                lambda msg: problems.append(msg.text) if msg.type == "error" else None,
            )
            page.goto(url + "/")
            # 1. the file input, with a corpus clip
            page.set_input_files("#file", str(clip))
            page.wait_for_selector("#result section.file .badge", timeout=60_000)
            verdict = page.inner_text("#result section.file .badge")
            title = page.inner_text("#result section.file h2")
            assert page.locator("#result svg.timeline").count() == 1
            thumbs = page.locator("#result .thumbs img").count()
            assert "scanned " + clip.name in page.inner_text("#scan-status")
            # 2. a photo dropped on the page
            _drop(page, photo.read_bytes(), photo.name, "image/jpeg")
            page.wait_for_function(
                "n => document.querySelector('#result h2')?.textContent.includes(n)",
                arg=photo.name,
                timeout=60_000,
            )
            photo_verdict = page.inner_text("#result section.file .badge")
            # 3. a text file dropped by mistake: the one-line error, on the page
            _drop(page, b"just some notes\n" * 20, "notes.mp4", "video/mp4")
            page.wait_for_selector("#scan-status.error", timeout=30_000)
            error = page.inner_text("#scan-status")
            # 4. a file over the limit: refused from its Content-Length, still one line
            big = b"\x00\x00\x00\x18ftypisom" + bytes(LIMIT)
            _drop(page, big, "big.mp4", "video/mp4")
            page.wait_for_function(
                "() => document.querySelector('#scan-status').textContent.includes('limit')",
                timeout=30_000,
            )
            too_big = page.inner_text("#scan-status")
        finally:
            browser.close()
    expected = api.scan(clip, ScanConfig())
    assert title.startswith(clip.name)
    assert verdict == expected.verdict, (verdict, expected.video_score)
    assert thumbs == 2 * len(expected.top_frames) > 0  # thumbnail + heat overlay each
    assert photo_verdict == api.scan(photo, ScanConfig()).verdict
    assert "notes.mp4 is not a video or image" in error
    assert too_big == "the upload is larger than the limit of 3 MB"
    # the refused drops log their 415 and 413; nothing else may go wrong
    assert [p for p in problems if "415" not in p and "413" not in p] == []
    assert list(uploads.iterdir()) == []
