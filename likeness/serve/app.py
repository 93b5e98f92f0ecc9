"""The FastAPI app of `likeness serve`: the page, the JSON API, the docs.

    app = create_app(ServeConfig())      # then uvicorn.run(app, ...) or TestClient(app)

Routes: `GET /` (the page), `GET /app.js`, `GET /v1/health`, `POST /v1/scan`
(`?format=html` for the report's section instead of the JSON record), `POST /v1/verify`,
`POST /v1/animate` (the signed MP4), `GET /openapi.json`, `GET /docs` (docs.py).

Every POST: the token first (when one is configured), before a byte of the body is
read; then the body streams into a per-request folder (uploads.py) that is removed
when the answer is ready, error or not; the work runs in the thread pool (engine.py).
Every error is `{"error": "one line"}` with its status (errors.py); a fault of ours is
logged with its traceback on the server and reaches the client as one line.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations
# (`Request`, imported inside create_app so that FastAPI loads only there) at runtime.
import functools
import logging
import secrets
from typing import Any

from likeness.errors import LikenessError, SetupError
from likeness.serve.config import ServeConfig
from likeness.serve.engine import AnimateRequest, Engine
from likeness.serve.errors import HttpError, Unauthorized, message_of, status_of
from likeness.serve.uploads import receive_form, request_folder, temp_root

log = logging.getLogger("likeness.serve")
INSTALL_HINT = (
    "likeness serve needs FastAPI, uvicorn and python-multipart: pip install likeness[serve]"
)
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def require_fastapi() -> None:
    """SetupError (one line, how to install) when the `serve` extra is missing."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise SetupError(INSTALL_HINT) from None


def _error_schema() -> dict:
    return {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}},
                    "required": ["error"],
                }
            }
        }
    }


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    words = {
        400: "bad request (the message says what to change)",
        401: "token missing or wrong (`Authorization: Bearer T`)",
        413: "upload over the size limit",
        415: "not a video or image likeness reads",
        422: "no face where one is needed",
        500: "internal fault (logged on the server)",
        503: "the server is missing set-up (detector, signing keys): the message says how",
    }
    return {code: {"description": words[code], **_error_schema()} for code in codes}


def _multipart(fields: dict[str, tuple[str, str]], required: tuple[str, ...]) -> dict:
    props = {}
    for name, (kind, text) in fields.items():
        if kind == "file":
            props[name] = {"type": "string", "format": "binary", "description": text}
        else:
            props[name] = {"type": kind, "description": text}
    schema = {"type": "object", "properties": props, "required": list(required)}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


def guarded(endpoint):
    """Our own faults become a logged traceback and a one-line 500, like the CLI's."""

    @functools.wraps(endpoint)
    async def wrapper(*args, **kwargs):
        from fastapi.responses import Response
        from starlette.requests import ClientDisconnect

        try:
            return await endpoint(*args, **kwargs)
        except ClientDisconnect:
            # Gone mid-upload: its folder is already removed, and nobody reads an answer.
            log.info("client disconnected during its upload")
            return Response(status_code=400)
        except LikenessError:
            raise
        except Exception as err:
            log.exception("internal error answering a request")
            raise HttpError(message_of(err), status=500) from err

    return wrapper


def create_app(config: ServeConfig | None = None, engine: Engine | None = None):
    """The app for `config` (its models load on the first scan, or call
    `engine.warm_up()` first, as `likeness serve` does)."""
    require_fastapi()
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    from likeness import __version__
    from likeness.pipelines.report import render_file
    from likeness.serve.docs import docs_html
    from likeness.serve.page import APP_JS, PAGE_CSP, page_html

    config = config or ServeConfig()
    engine = engine or Engine(config)
    root = temp_root(config.temp_root)
    limit_text = config.describe_limit()
    app = FastAPI(
        title="likeness",
        version=__version__,
        description=(
            "Scan videos and images for face manipulation, verify their provenance, and "
            "animate a portrait into a signed, watermarked video. Files are sent as "
            f"multipart/form-data (at most {limit_text} per request), kept in a folder of "
            "their own while the request runs and deleted after. When the server has a "
            "token, every POST needs `Authorization: Bearer <token>`."
        ),
        docs_url=None,  # Swagger UI needs a CDN: /docs is docs.py's page instead
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.temp_root = root

    def error_response(err: BaseException) -> JSONResponse:
        status = status_of(err)
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(err, Unauthorized) else None
        return JSONResponse({"error": message_of(err)}, status_code=status, headers=headers)

    @app.exception_handler(LikenessError)
    async def _likeness_error(request: Request, err: LikenessError):
        return error_response(err)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, err: HTTPException):
        text = err.detail if isinstance(err.detail, str) else str(err.status_code)
        if err.status_code == 404:
            text = f"no such page: {request.url.path} (see /docs)"
        return JSONResponse({"error": " ".join(text.split())}, status_code=err.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError):
        first = (err.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        text = f"{where}: {first.get('msg', 'invalid request')}"
        return JSONResponse({"error": " ".join(text.split())}, status_code=400)

    def authorize(request: Request) -> None:
        if not config.token:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            value.strip().encode(), config.token.encode()
        ):
            raise Unauthorized("this server needs a token: send `Authorization: Bearer <token>`")

    async def form_of(request: Request, folder, files: set[str], fields: set[str] = frozenset()):
        return await receive_form(
            request.headers,
            request.stream(),
            folder,
            config.max_upload_bytes,
            files,
            set(fields),
            limit_text,
        )

    # ------------------------------------------------------------ pages

    @app.get("/", include_in_schema=False)
    async def index():
        return HTMLResponse(
            page_html(limit_text, config.animate_max_frames),
            headers={"Content-Security-Policy": PAGE_CSP},
        )

    @app.get("/app.js", include_in_schema=False)
    async def app_js():
        return Response(APP_JS, media_type="text/javascript; charset=utf-8")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(status_code=204)  # none: a 204 keeps the browser's console clean

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return HTMLResponse(docs_html(app.openapi()))

    # ------------------------------------------------------------ API

    @app.get("/v1/health", summary="Is the server up, and what is loaded")
    async def health() -> dict:
        """Version, whether the detector is loaded (and which), whether signing keys
        exist (animate needs them), the upload limit and whether a token is needed."""
        return engine.health()

    @app.post(
        "/v1/scan",
        summary="Scan one video or image for face manipulation, with provenance",
        openapi_extra=_multipart({"file": ("file", "the video or image")}, ("file",)),
        responses=_errors(400, 401, 413, 415, 500, 503),
    )
    @guarded
    async def scan(request: Request, format: str = "json"):
        """The file's `likeness-scan/1` record (the JSON line `likeness scan --json`
        writes; its `path` and `name` are the upload's file name). `?format=html`: the
        file's section of the scan report instead (`scan --html`'s markup)."""
        authorize(request)
        if format not in ("json", "html"):
            raise HttpError(f"format must be json or html, not {format[:40]!r}")
        with request_folder(root) as folder:
            form = await form_of(request, folder, {"file"})
            upload = form.file("file")
            result = await run_in_threadpool(engine.scan, upload)
        # Server-Timing: the scan's own seconds, so a client can tell the app's share
        # of the latency from the scan's (bench/serve_latency.py does).
        timing = {"Server-Timing": f"scan;dur={result.record.seconds * 1000:.1f}"}
        if format == "html":
            body = render_file(result.record, result.thumbnails, result.heatmaps)
            return HTMLResponse(body, headers={"Content-Security-Policy": REPORT_CSP, **timing})
        return JSONResponse(_json_safe(result.record.to_dict()), headers=timing)

    @app.post(
        "/v1/verify",
        summary="Where did this file come from: C2PA manifest, watermark, local store",
        openapi_extra=_multipart({"file": ("file", "the video or image")}, ("file",)),
        responses=_errors(400, 401, 413, 415, 500),
    )
    @guarded
    async def verify(request: Request):
        """The verdict `likeness verify --json` prints: `verified`, `manifest`
        (trusted / valid-untrusted / tampered / invalid / no-manifest), reasons,
        manifest summary, watermark and store record."""
        authorize(request)
        with request_folder(root) as folder:
            form = await form_of(request, folder, {"file"})
            data = await run_in_threadpool(engine.verify, form.file("file"))
        return JSONResponse(_json_safe(data))

    @app.post(
        "/v1/animate",
        summary="Animate a portrait photo into a signed, watermarked MP4",
        openapi_extra=_multipart(
            {
                "photo": ("file", "the portrait (JPEG, PNG, WebP, BMP)"),
                "driving": ("file", "a video whose head motion and expressions to follow"),
                "motion": ("string", "or scripted motion instead, e.g. nod,blink,smile"),
                "max_frames": ("integer", f"frames at most (≤ {config.animate_max_frames})"),
                "region": ("string", "with a driving video: all, pose, expression, eyes, lips"),
                "multiplier": ("number", "scale of the expression change (0-5)"),
                "label": ("boolean", 'a visible "AI-generated" label (default true)'),
            },
            ("photo",),
        ),
        responses={
            200: {"description": "the MP4", "content": {"video/mp4": {}}},
            **_errors(400, 401, 413, 415, 422, 500, 503),
        },
    )
    @guarded
    async def animate(request: Request):
        """Give `photo` and either `driving` or `motion`. The answer is the MP4 itself,
        watermarked and C2PA-signed with the server's keys (`likeness keys init`), its
        content id in the `X-Likeness-Content-Id` header."""
        from likeness.provenance.keys import keys_exist

        authorize(request)
        if not keys_exist():
            from likeness.config import keys_dir

            raise SetupError(
                f"no signing keys on the server ({keys_dir()}): run `likeness keys init` "
                "there (every animated video is signed)"
            )
        with request_folder(root) as folder:
            fields = {"motion", "max_frames", "region", "multiplier", "label"}
            form = await form_of(request, folder, {"photo", "driving"}, fields)
            job = AnimateRequest(
                photo=form.file("photo", kind="image"),
                driving=form.file("driving", kind="video", required=False),
                motion=(form.fields.get("motion") or "").strip() or None,
                max_frames=_int_field(form.fields, "max_frames", config.animate_max_frames),
                region=(form.fields.get("region") or "all").strip(),
                multiplier=_float_field(form.fields, "multiplier", 1.0),
                label=_bool_field(form.fields, "label", True),
            )
            out = folder / "animated.mp4"
            result = await run_in_threadpool(engine.animate, job, out)
            data = out.read_bytes()
        sign = result.sign
        return Response(
            data,
            media_type="video/mp4",
            headers={
                "Content-Disposition": 'attachment; filename="animated.mp4"',
                "X-Likeness-Content-Id": str(getattr(sign.payload, "content_id", "")),
                "X-Likeness-Payload": str(sign.payload_hex),
                "X-Likeness-Frames": str(result.frames),
            },
        )

    return app


def _int_field(fields: dict[str, str], name: str, cap: int) -> int:
    raw = (fields.get(name) or "").strip()
    if not raw:
        return cap
    if not raw.isdigit() or not 1 <= int(raw) <= cap:
        raise HttpError(f"{name} must be a whole number from 1 to {cap}, got {raw[:20]!r}")
    return int(raw)


def _float_field(fields: dict[str, str], name: str, default: float) -> float:
    raw = (fields.get(name) or "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise HttpError(f"{name} must be a number, got {raw[:20]!r}") from None


def _bool_field(fields: dict[str, str], name: str, default: bool) -> bool:
    raw = (fields.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise HttpError(f"{name} must be true or false, got {raw[:20]!r}")


def _json_safe(data: dict) -> dict:
    from likeness.jsonio import json_safe

    return json_safe(data)
