"""What `likeness serve` adds to a scan: `POST /v1/scan` against the plain library call.

    from likeness.bench.serve_latency import measure
    figures = measure(Path("clip.mp4"), repeats=3)
    figures["overhead_s"]          # median(POST /v1/scan) - median(likeness.api.scan_file)

Two views of "what the app adds". Paired (`overhead_s`, the one the target is about):
per request, its wall time minus the scan's own seconds inside it (the app's
`Server-Timing: scan;dur=...` header), so a load change between calls on a busy
machine cannot move it. Unpaired (`medians_overhead_s`): the median request against
the median plain `likeness.api.scan_file` call of the same file; on the loaded 2-core
machine this one carries seconds of noise either way.

The app runs under uvicorn on a loopback port (the real HTTP stack: socket, multipart
parsing, the per-request folder, the thread pool, JSON encoding), with the same
`ScanConfig` as the plain call, so both share one loaded scanner (`likeness.api` keeps
it per configuration) and the models are loaded before anything is timed. The two are
timed in turns, plain then served, `repeats` times, so a load change on a busy machine
hits both alike. The HTML answer the page asks for
(`?format=html`, with the thumbnails and heat overlays inline) is timed too.

Target (issue 17): the app adds under 0.5 s to the scan of a ~10 s clip.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from likeness.bench.common import machine_info

TARGET_OVERHEAD_S = 0.5


def measure(path: Path, repeats: int = 3, config=None) -> dict:
    """Latency of `POST /v1/scan` for `path` vs `likeness.api.scan_file` of it.

    Args:
        path: a video or image (the benchmark uses a ~10 s corpus clip).
        repeats: timed turns of each (after one untimed warm-up turn).
        config: a `ScanConfig` for both; None: the defaults of `likeness scan`.

    Returns:
        a JSON-ready dict: `plain_s`, `serve_s` and `serve_html_s` (seconds per turn),
        their medians, `added_s` (per request: wall minus the scan inside it),
        `overhead_s` (its median; the target's figure), `html_overhead_s` (the same for
        `?format=html`), `medians_overhead_s` (median served - median plain),
        `target_overhead_s` (0.5), `meets_target`, the file's `bytes` and
        `duration_s`, the verdict, and `machine` (`bench.common.machine_info`).

    Raises:
        SetupError: the serve extra (FastAPI, uvicorn) or httpx is missing.
        InputError / ModelError: as `likeness scan`.
    """
    import httpx

    from likeness import api
    from likeness.pipelines.configs import ScanConfig
    from likeness.serve import Engine, ServeConfig, create_app
    from likeness.serve.server import running

    path = Path(path)
    if repeats < 1:
        from likeness.errors import InputError

        raise InputError(f"repeats must be 1 or more, got {repeats}")
    config = config or ScanConfig()
    data = path.read_bytes()
    plain_s: list[float] = []
    serve_s: list[float] = []
    html_s: list[float] = []
    added_s: list[float] = []  # per request: wall time minus the scan inside it
    html_added_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="likeness-bench-serve-") as folder:
        serve_config = ServeConfig(
            temp_root=Path(folder), scan=config, max_upload_bytes=max(len(data) * 2, 10**6)
        )
        engine = Engine(serve_config)
        engine.warm_up()
        with (
            running(create_app(serve_config, engine)) as url,
            httpx.Client(base_url=url, timeout=600) as client,
        ):

            def post(query: str = "") -> tuple[float, httpx.Response]:
                t0 = time.perf_counter()
                resp = client.post("/v1/scan" + query, files={"file": (path.name, data)})
                elapsed = time.perf_counter() - t0
                if resp.status_code != 200:
                    from likeness.errors import InputError

                    raise InputError(f"POST /v1/scan answered {resp.status_code}: {resp.text}")
                return elapsed, resp

            def plain() -> tuple[float, object]:
                t0 = time.perf_counter()
                record = api.scan_file(path, config).record
                return time.perf_counter() - t0, record

            plain()  # warm-up turn: decoder, first-call allocations, page cache
            post()
            for _ in range(repeats):
                seconds, record = plain()
                plain_s.append(seconds)
                seconds, resp = post()
                serve_s.append(seconds)
                added_s.append(seconds - _scan_seconds(resp))
                seconds, page = post("?format=html")
                html_s.append(seconds)
                html_added_s.append(seconds - _scan_seconds(page))
    plain_median = statistics.median(plain_s)
    serve_median = statistics.median(serve_s)
    html_median = statistics.median(html_s)
    overhead = statistics.median(added_s)
    return {
        "file": path.name,
        "bytes": len(data),
        "duration_s": record.duration_s,
        "verdict": record.verdict,
        "served_verdict": resp.json()["verdict"],
        "repeats": repeats,
        "plain_s": [round(s, 4) for s in plain_s],
        "serve_s": [round(s, 4) for s in serve_s],
        "serve_html_s": [round(s, 4) for s in html_s],
        "plain_median_s": round(plain_median, 4),
        "serve_median_s": round(serve_median, 4),
        "serve_html_median_s": round(html_median, 4),
        "added_s": [round(s, 4) for s in added_s],
        "overhead_s": round(overhead, 4),
        "html_overhead_s": round(statistics.median(html_added_s), 4),
        "medians_overhead_s": round(serve_median - plain_median, 4),
        "target_overhead_s": TARGET_OVERHEAD_S,
        "meets_target": overhead < TARGET_OVERHEAD_S,
        "machine": machine_info(),
    }


def _scan_seconds(resp) -> float:
    """The scan's own seconds from the app's `Server-Timing: scan;dur=MS` header."""
    for part in resp.headers.get("server-timing", "").split(","):
        name, _, rest = part.strip().partition(";")
        if name == "scan" and rest.startswith("dur="):
            return float(rest[4:]) / 1000
    raise ValueError("the answer has no Server-Timing scan duration")
