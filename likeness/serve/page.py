"""The page at `/`: plain HTML and one small vanilla script (no framework, no CDN).

Scan: drop a file on the page (or pick one); the script posts it to
`/v1/scan?format=html` and puts the answer, the scan report's own section for that file
(`pipelines.report.render_file`, the renderer `scan --html` uses), under the form.
Animate: a photo plus a driving video or scripted motion, posted to `/v1/animate`; the
signed MP4 comes back, plays in the page and can be saved.

The script is served from `/app.js` and the page's Content-Security-Policy allows
scripts from this origin only, so markup in an answer (every file-controlled string in
it is escaped by the report) could not run even if escaping failed.
"""

from __future__ import annotations

import html

from likeness import __version__
from likeness.pipelines.report import CSS as REPORT_CSS

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
    "media-src blob:; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)

PAGE_CSS = """
.drop{border:2px dashed #999;border-radius:10px;padding:28px;text-align:center;color:#555;
margin:10px 0}
.drop.over{border-color:#1f77b4;background:#eef5fc}
.status{margin:8px 0;min-height:1.4em}.status.error{color:#b00020}
form.animate label{display:block;margin:6px 0}
fieldset{border:1px solid #ddd;border-radius:8px;margin:18px 0;padding:10px 16px}
.token{display:none}.token.shown{display:block}
video{max-width:480px;display:block;margin:8px 0}
nav a{margin-right:14px}
"""


def page_html(max_upload_text: str, animate_max_frames: int) -> str:
    limit = html.escape(max_upload_text)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>likeness</title><style>{REPORT_CSS}{PAGE_CSS}</style>
<script src="/app.js" defer></script></head><body>
<h1>likeness</h1>
<div class="meta">Is this face real? Drop a video or image to scan it for face manipulation
and read its provenance (C2PA manifest, watermark, local store). Files are scanned on this
machine, kept only while the request runs, then deleted. Limit {limit} per upload.
<nav><a href="/docs">API</a><a href="/openapi.json">openapi.json</a>
<a href="/v1/health">health</a></nav> likeness {html.escape(__version__)}</div>
<div class="token" id="token-box"><label>Access token
<input type="password" id="token" autocomplete="off"></label>
(this server needs one: <code>Authorization: Bearer</code>)</div>

<fieldset><legend>Scan</legend>
<div class="drop" id="drop">Drop a video or image here, or
<input type="file" id="file" name="file" accept="video/*,image/*"></div>
<div class="status" id="scan-status" role="status"></div>
<div id="result"></div></fieldset>

<fieldset><legend>Animate a photo</legend>
<form class="animate" id="animate-form">
<label>Photo <input type="file" name="photo" accept="image/*" required></label>
<label>Driving video <input type="file" name="driving" accept="video/*"></label>
<label>or scripted motion <input type="text" name="motion" placeholder="nod,blink,smile">
</label>
<label>Frames at most <input type="number" name="max_frames" min="1"
max="{animate_max_frames}" value="{min(100, animate_max_frames)}"></label>
<label><input type="checkbox" name="label" checked> A visible "AI-generated" label in
every frame</label>
<button type="submit">Animate</button>
</form>
<div class="status" id="animate-status" role="status"></div>
<div id="animate-result"></div>
<p class="meta">The video is watermarked and carries a signed C2PA manifest with the photo
(and driving video) as ingredients; it is recorded in this machine's store.</p></fieldset>
</body></html>
"""


APP_JS = r"""
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let tokenRequired = false;

  function headers() {
    const h = {};
    const t = $("token").value.trim();
    if (t) h["Authorization"] = "Bearer " + t;
    return h;
  }

  async function errorText(resp) {
    try {
      const data = await resp.json();
      if (data && data.error) return data.error;
    } catch (e) { /* not JSON */ }
    return resp.status + " " + resp.statusText;
  }

  function say(el, text, isError) {
    el.textContent = text;
    el.className = "status" + (isError ? " error" : "");
  }

  // POST a form; the response when it is ok, else null with the error said in `status`.
  async function post(url, body, status) {
    let resp;
    try {
      resp = await fetch(url, {method: "POST", body, headers: headers()});
    } catch (e) {
      say(status, "the upload failed: " + e.message, true);
      return null;
    }
    if (!resp.ok) {
      say(status, await errorText(resp), true);
      return null;
    }
    return resp;
  }

  async function scan(file) {
    const status = $("scan-status"), result = $("result");
    result.innerHTML = "";
    say(status, "scanning " + file.name + " …", false);
    const body = new FormData();
    body.append("file", file, file.name);
    const t0 = performance.now();
    const resp = await post("/v1/scan?format=html", body, status);
    if (!resp) return;
    // The server's own report markup; every file-controlled string in it is escaped.
    result.innerHTML = await resp.text();
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    say(status, "scanned " + file.name + " in " + secs + " s", false);
  }

  async function animate(ev) {
    ev.preventDefault();
    const form = ev.target, status = $("animate-status"), out = $("animate-result");
    out.innerHTML = "";
    const body = new FormData();
    for (const el of form.elements) {
      if (!el.name) continue;
      if (el.type === "file") {
        if (el.files.length) body.append(el.name, el.files[0], el.files[0].name);
      } else if (el.type === "checkbox") {
        body.append(el.name, el.checked ? "true" : "false");
      } else if (el.value.trim()) {
        body.append(el.name, el.value.trim());
      }
    }
    say(status, "animating … (about a second per few frames on a CPU)", false);
    const resp = await post("/v1/animate", body, status);
    if (!resp) return;
    const blob = await resp.blob();
    const url = URL.createObjectURL(blob);
    const video = document.createElement("video");
    video.controls = true;
    video.src = url;
    const link = document.createElement("a");
    link.href = url;
    link.download = "animated.mp4";
    link.textContent = "save animated.mp4";
    out.append(video, link);
    const id = resp.headers.get("X-Likeness-Content-Id") || "?";
    say(status, "signed and watermarked: content id " + id, false);
  }

  function setup() {
    const drop = $("drop"), input = $("file");
    input.addEventListener("change", () => { if (input.files.length) scan(input.files[0]); });
    for (const name of ["dragenter", "dragover"]) {
      drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
    }
    for (const name of ["dragleave", "drop"]) {
      drop.addEventListener(name, () => drop.classList.remove("over"));
    }
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      if (e.dataTransfer.files.length) scan(e.dataTransfer.files[0]);
    });
    $("animate-form").addEventListener("submit", animate);
    fetch("/v1/health").then((r) => r.json()).then((h) => {
      tokenRequired = !!h.token_required;
      if (tokenRequired) $("token-box").classList.add("shown");
    }).catch(() => {});
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
"""
