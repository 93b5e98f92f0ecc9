"""The scan report: one self-contained HTML file.

Per file: the verdict and scores, a score timeline (inline SVG: each face's calibrated
crop scores over time, the threshold as a dashed line), the highest-scoring frames with
the face box drawn (inline base64 JPEG) and, when the scan made one, the detector's heat
overlay beside each, and the provenance findings (C2PA manifest,
watermark, store record). No scripts, no external URLs (a Content-Security-Policy that
allows only inline styles and data: images makes sure of it), so it opens offline and
a hostile file name cannot run code in it. Every string that comes from a file (names,
paths, manifest fields, error messages) goes through `html.escape`.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

from likeness import __version__
from likeness.pipelines.scan_record import ScanRecord

CHART_W, CHART_H = 640, 170
PAD_L, PAD_R, PAD_T, PAD_B = 40, 12, 12, 28
FACE_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
VERDICT_COLOURS = {
    "manipulated": "#b00020",
    "likely-real": "#1b7f3b",
    "no-face": "#666666",
    "error": "#8a5a00",
}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;
max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0;word-break:break-all}
.meta{color:#666;margin-bottom:18px}
table{border-collapse:collapse}td,th{padding:3px 10px 3px 0;text-align:left;vertical-align:top}
table.summary td,table.summary th{border-bottom:1px solid #ddd;padding:4px 12px 4px 0}
.file{border:1px solid #ddd;border-radius:8px;padding:14px 16px;margin:18px 0}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:1px 8px;font-weight:600}
.facts{color:#444;margin:6px 0 10px}
.thumbs{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0}
figure{margin:0}figure img{display:block;max-width:320px;border:1px solid #ccc}
.pair{display:flex;gap:4px}
figcaption{font-size:12px;color:#555}
.prov th{color:#555;font-weight:600;white-space:nowrap}
.reasons{margin:4px 0 0 18px;padding:0;color:#444}
.error{color:#8a5a00}
svg text{font:11px system-ui,sans-serif;fill:#555}
"""


def esc(value: object) -> str:
    """HTML-escaped, and without control characters (a raw escape sequence from a file
    name would still reach a terminal that shows the page's source)."""
    from likeness.ui import printable

    return html.escape("" if value is None else printable(value), quote=True)


def _fmt(value: object, digits: int = 3) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    return "–"


def _badge(verdict: str | None) -> str:
    colour = VERDICT_COLOURS.get(verdict or "", "#666")
    return f'<span class="badge" style="background:{colour}">{esc(verdict or "?")}</span>'


# ---------------------------------------------------------------- chart


def timeline_svg(record: ScanRecord) -> str:
    """One SVG chart: each face's scores over time, and the threshold."""
    faces = record.faces
    points = [(s[1] or 0.0) for f in faces for s in f.scores]
    span = max(points, default=0.0)
    duration = record.duration_s or 0.0
    x_max = max(span, duration, 1e-6)
    iw, ih = CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B

    def x(t: float) -> float:
        return PAD_L + (t / x_max) * iw if x_max > 1e-6 else PAD_L + iw / 2

    def y(p: float) -> float:
        return PAD_T + (1 - max(0.0, min(1.0, p))) * ih

    parts = [
        f'<svg class="timeline" role="img" width="{CHART_W}" height="{CHART_H}" '
        f'viewBox="0 0 {CHART_W} {CHART_H}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>score timeline of {esc(record.name)}</title>",
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{iw}" height="{ih}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for p in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{PAD_L - 6}" y="{y(p) + 4:.1f}" text-anchor="end">{p:g}</text>')
    unit = "s" if record.kind == "video" else ""
    parts.append(f'<text x="{PAD_L}" y="{CHART_H - 8}">0{unit}</text>')
    if record.kind == "video":
        parts.append(
            f'<text x="{PAD_L + iw}" y="{CHART_H - 8}" text-anchor="end">{x_max:.1f}s</text>'
        )
    threshold = record.threshold
    if isinstance(threshold, int | float):
        ty = y(threshold)
        parts.append(
            f'<line x1="{PAD_L}" x2="{PAD_L + iw}" y1="{ty:.1f}" y2="{ty:.1f}" '
            'stroke="#b00020" stroke-dasharray="5,4"/>'
            f'<text x="{PAD_L + iw - 4}" y="{ty - 4:.1f}" text-anchor="end">threshold '
            f"{threshold:.2f}</text>"
        )
    if not faces:
        parts.append(
            f'<text x="{PAD_L + iw / 2}" y="{PAD_T + ih / 2}" text-anchor="middle">'
            "no face found in the sampled frames</text>"
        )
    for n, face in enumerate(faces):
        colour = FACE_COLOURS[n % len(FACE_COLOURS)]
        coords = [(x(s[1] or 0.0), y(s[2] or 0.0)) for s in face.scores]
        if len(coords) > 1:
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in coords)
            parts.append(
                f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
            )
        for a, b in coords if len(coords) <= 60 else []:
            parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{colour}"/>')
        if len(coords) == 1:
            a, b = coords[0]
            parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="4" fill="{colour}"/>')
        label = f"face {face.face}: {_fmt(face.video_score)}"
        parts.append(
            f'<text x="{PAD_L + 6}" y="{PAD_T + 14 + 13 * n}" fill="{colour}">{esc(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------- sections


def _jpeg(data: bytes, alt: str) -> str:
    src = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
    return f'<img src="{src}" alt="{alt}">'


def _thumbs(record: ScanRecord, thumbnails: dict[int, bytes], heatmaps: dict[int, bytes]) -> str:
    tops = record.top_frames
    if not tops:
        return ""
    figures = []
    for entry in tops:
        data = thumbnails.get(entry.frame)
        caption = (
            f"frame {esc(entry.frame)} · {_fmt(entry.time, 2)} s · "
            f"face {esc(entry.face)} · score {_fmt(entry.score)}"
        )
        if data:
            img = _jpeg(data, f"frame {esc(entry.frame)} with the face box")
        else:
            img = "<p>(thumbnail not available: scanned in an earlier run)</p>"
        heat = heatmaps.get(entry.frame)
        if heat:
            overlay = _jpeg(heat, f"frame {esc(entry.frame)}: where the detector saw a change")
            img = f'<div class="pair">{img}{overlay}</div>'
        figures.append(f"<figure>{img}<figcaption>{caption}</figcaption></figure>")
    return '<h3>Highest-scoring frames</h3><div class="thumbs">' + "".join(figures) + "</div>"


def _provenance(record: ScanRecord) -> str:
    prov = record.provenance
    if prov is None:
        note = record.provenance_error or "not checked"
        return f'<h3>Provenance</h3><p class="error">{esc(note)}</p>'
    rows = [
        ("manifest", esc(prov.manifest)),
        ("verified", esc("yes" if prov.verified else "no")),
    ]
    summary = prov.manifest_summary or {}
    if summary:
        source = " (from the local store)" if summary.get("from_store") else ""
        for key, label in (
            ("title", "title"),
            ("generator", "made by"),
            ("signer", "signer"),
            ("signed_at", "signed at"),
            ("digital_source_type", "source type"),
        ):
            if summary.get(key):
                rows.append((label + source, esc(summary[key])))
        if summary.get("actions"):
            rows.append(("actions", esc(", ".join(map(str, summary["actions"])))))
        if summary.get("model"):
            rows.append(("model", esc(json.dumps(summary["model"], sort_keys=True))))
        if summary.get("ingredients"):
            rows.append(("ingredients", esc(", ".join(map(str, summary["ingredients"])))))
    wm = prov.watermark
    if wm is None:
        rows.append(("watermark", "not checked"))
    elif wm.get("found"):
        payload = (
            (wm.get("payload") or {}).get("hex")
            if isinstance(wm.get("payload"), dict)
            else wm.get("payload")
        )
        p_false = wm.get("p_false")
        odds = f", false-positive probability {p_false:.1e}" if isinstance(p_false, float) else ""
        rows.append(("watermark", f"found, payload {esc(payload)}{esc(odds)}"))
    else:
        rows.append(("watermark", "not found"))
    record_ = prov.store_record
    if record_:
        rows.append(
            (
                "store",
                f"record #{esc(record_.get('id'))} ({esc(prov.store_match)}): "
                f"{esc(record_.get('file_name'))}, {esc(record_.get('created_utc'))}",
            )
        )
    else:
        rows.append(("store", "no record"))
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    reasons = "".join(f"<li>{esc(r)}</li>" for r in prov.reasons or [])
    return f'<h3>Provenance</h3><table class="prov">{body}</table>' + (
        f'<ul class="reasons">{reasons}</ul>' if reasons else ""
    )


def _file_section(
    n: int, record: ScanRecord, thumbnails: dict[int, bytes], heatmaps: dict[int, bytes]
) -> str:
    head = f'<h2 id="f{n}">{esc(record.name)} {_badge(record.verdict)}</h2>'
    path = f'<div class="facts">{esc(record.path)}</div>'
    if not record.ok:
        kind, message = (record.error.kind, record.error.message) if record.error else (None,) * 2
        return (
            f'<section class="file">{head}{path}<p class="error">could not be scanned '
            f"({esc(kind)}): {esc(message)}</p></section>"
        )
    facts = (
        f"{esc(record.kind)} {esc(record.width)}×{esc(record.height)}"
        + (f", {_fmt(record.duration_s, 1)} s" if record.kind == "video" else "")
        + f" · {esc(record.frames_scanned)} frame(s) scanned, "
        f"{esc(record.frames_with_face)} with a face, "
        f"{len(record.faces)} face(s)"
        f" · video score {_fmt(record.video_score)} (threshold "
        f"{_fmt(record.threshold)}) · sha256 {esc((record.sha256 or '')[:16])}…"
    )
    return (
        f'<section class="file">{head}{path}<div class="facts">{facts}</div>'
        f"{timeline_svg(record)}{_thumbs(record, thumbnails, heatmaps)}{_provenance(record)}"
        "</section>"
    )


def render_file(
    record: ScanRecord,
    thumbnails: dict[int, bytes] | None = None,
    heatmaps: dict[int, bytes] | None = None,
) -> str:
    """One file's section of the report as an HTML fragment (the web app shows it under
    its upload form, styled by `CSS`): the same markup `render_report` writes per file."""
    return _file_section(0, record, thumbnails or {}, heatmaps or {})


def _summary(records: list[ScanRecord]) -> str:
    rows = []
    for n, r in enumerate(records):
        manifest = r.provenance.manifest if r.provenance else None
        wm = (r.provenance.watermark if r.provenance else None) or {}
        rows.append(
            f'<tr><td><a href="#f{n}">{esc(r.name)}</a></td>'
            f"<td>{esc(r.kind or '')}</td>"
            f"<td>{_badge(r.verdict)}</td><td>{_fmt(r.video_score)}</td>"
            f"<td>{esc(manifest or '–')}</td>"
            f"<td>{'found' if wm.get('found') else ('not found' if wm else '–')}</td></tr>"
        )
    head = (
        "<tr><th>file</th><th>kind</th><th>verdict</th><th>score</th><th>manifest</th>"
        "<th>watermark</th></tr>"
    )
    return f'<table class="summary">{head}{"".join(rows)}</table>'


def render_report(
    records: list[ScanRecord],
    thumbnails: dict[str, dict[int, bytes]],
    heatmaps: dict[str, dict[int, bytes]] | None = None,
) -> str:
    """The report's HTML; `thumbnails` and `heatmaps` map a record's path to its top
    frames' JPEGs by frame index."""
    heatmaps = heatmaps or {}
    counts: dict[str, int] = {}
    for r in records:
        counts[r.verdict or "?"] = counts.get(r.verdict or "?", 0) + 1
    tally = ", ".join(f"{n} {esc(v)}" for v, n in sorted(counts.items()))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sections = "".join(
        _file_section(n, r, thumbnails.get(r.path or "", {}), heatmaps.get(r.path or "", {}))
        for n, r in enumerate(records)
    )
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>likeness scan report</title><style>{CSS}</style></head><body>"
        f'<h1>likeness scan report</h1><div class="meta">{len(records)} file(s): {tally} · '
        f"{esc(when)} · likeness {esc(__version__)}. Scores are calibrated probabilities "
        "that a face was manipulated; a video is called manipulated when its pooled score "
        "is above the threshold (set at 1 % false positives on real validation videos). "
        "Provenance is reported beside the verdict, not mixed into it.</div>"
        f"{_summary(records)}{sections}</body></html>\n"
    )


def write_report(
    path: Path,
    records: list[ScanRecord],
    thumbnails: dict[str, dict[int, bytes]] | None = None,
    heatmaps: dict[str, dict[int, bytes]] | None = None,
) -> Path:
    from likeness.fsio import atomic_output

    text = render_report(records, thumbnails or {}, heatmaps)
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)
