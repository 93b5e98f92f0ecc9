"""`/docs`: the OpenAPI description as one self-contained HTML page.

FastAPI's own `/docs` (Swagger UI) and `/redoc` load their scripts from a CDN, so on a
machine without internet, which is where a local scan server often runs, they show a
blank page. This page is rendered on the server from the same `app.openapi()` document
(`/openapi.json`, which any OpenAPI viewer or client generator can load): every path,
its parameters, its form fields and its responses, with no script at all.
"""

from __future__ import annotations

import html

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;max-width:1000px;color:#222}
h2{font-size:17px;margin:22px 0 4px}code,pre{font:12px ui-monospace,monospace}
pre{background:#f6f6f6;padding:8px;overflow:auto}.method{font-weight:700;color:#1f5fa8}
table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fields(schema: dict, spec: dict) -> list[tuple[str, str, str]]:
    schema = _deref(schema, spec)
    required = set(schema.get("required") or ())
    rows = []
    for name, prop in (schema.get("properties") or {}).items():
        prop = _deref(prop, spec)
        kind = prop.get("format") or prop.get("type") or "any"
        if prop.get("contentMediaType") == "application/octet-stream":
            kind = "file"
        rows.append((name + (" *" if name in required else ""), kind, prop.get("description", "")))
    return rows


def _deref(schema: dict, spec: dict) -> dict:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: object = spec
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}
    return schema


def docs_html(spec: dict) -> str:
    info = spec.get("info", {})
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(info.get('title'))} API</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(info.get('title'))} {_e(info.get('version'))}</h1>",
        f"<p>{_e(info.get('description'))}</p>",
        '<p>The machine-readable description: <a href="/openapi.json">/openapi.json</a> '
        "(OpenAPI 3). Errors are always <code>{&quot;error&quot;: &quot;one line&quot;}</code>"
        " with a 4xx status for the caller's fault, 503 for missing set-up on the server "
        "and 500 for ours.</p>",
    ]
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            parts.append(
                f'<h2><span class="method">{_e(method.upper())}</span> <code>{_e(path)}</code>'
                f" {_e(op.get('summary'))}</h2>"
            )
            if op.get("description"):
                parts.append(f"<p>{_e(op['description'])}</p>")
            params = op.get("parameters") or []
            if params:
                rows = "".join(
                    f"<tr><td><code>{_e(p.get('name'))}</code></td><td>{_e(p.get('in'))}</td>"
                    f"<td>{_e(p.get('description'))}</td></tr>"
                    for p in params
                )
                parts.append(f"<h3>Parameters</h3><table>{rows}</table>")
            body = (op.get("requestBody") or {}).get("content") or {}
            for media, content in body.items():
                rows = "".join(
                    f"<tr><td><code>{_e(n)}</code></td><td>{_e(k)}</td><td>{_e(d)}</td></tr>"
                    for n, k, d in _fields(content.get("schema") or {}, spec)
                )
                parts.append(f"<h3>Body: {_e(media)}</h3><table>{rows}</table>")
            rows = "".join(
                f"<tr><td>{_e(code)}</td><td>{_e(r.get('description'))}</td>"
                f"<td>{_e(', '.join((r.get('content') or {}).keys()))}</td></tr>"
                for code, r in (op.get("responses") or {}).items()
            )
            parts.append(f"<h3>Responses</h3><table>{rows}</table>")
    parts.append(
        "<h2>Example</h2><pre>"
        + _e(
            "curl -F file=@clip.mp4 http://127.0.0.1:8000/v1/scan\n"
            "curl -F file=@clip.mp4 http://127.0.0.1:8000/v1/verify\n"
            "curl -F photo=@photo.jpg -F motion=nod,blink -o out.mp4 "
            "http://127.0.0.1:8000/v1/animate"
        )
        + "</pre>"
    )
    parts.append("</body></html>\n")
    return "".join(parts)
