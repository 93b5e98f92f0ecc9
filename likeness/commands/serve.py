"""`likeness serve`: the local web app and JSON API (likeness.serve)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from likeness.config import default_of
from likeness.ui import console, safe

MB = 1_000_000


def register(app: typer.Typer) -> None:
    from likeness.serve.config import TOKEN_ENV, ServeConfig

    @app.command("serve")
    def serve_command(
        host: str = typer.Option(
            default_of(ServeConfig, "host"),
            "--host",
            help="Address to listen on. Anything but loopback needs a token.",
        ),
        port: int = typer.Option(
            default_of(ServeConfig, "port"), "--port", help="Port to listen on (0: any free one)."
        ),
        token: str | None = typer.Option(
            None,
            "--token",
            envvar=TOKEN_ENV,
            show_envvar=True,
            help="Require `Authorization: Bearer TOKEN` on every POST (the page asks for "
            "it). Prefer the environment variable: a flag shows in `ps`.",
        ),
        max_upload_mb: float = typer.Option(
            default_of(ServeConfig, "max_upload_bytes") / MB,
            "--max-upload-mb",
            help="Largest request body, in MB.",
        ),
        animate_max_frames: int = typer.Option(
            default_of(ServeConfig, "animate_max_frames"),
            "--animate-max-frames",
            help="Frames one animate may make.",
        ),
        temp_root: Path | None = typer.Option(
            None,
            "--temp-dir",
            help="Where per-request folders go [default: likeness-serve in the system temp].",
        ),
        weights: Path | None = typer.Option(
            None, "--weights", help="Detector folder (default: the shipped detector)."
        ),
        generator_weights: Path | None = typer.Option(
            None,
            "--generator-weights",
            help="Generator folder for animate (default: the shipped generator).",
        ),
        trust: list[Path] = typer.Option(
            [], "--trust", help="Trust anchor (root PEM) for C2PA manifests; repeatable."
        ),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    ) -> None:
        """Serve a local web page and JSON API: scan, verify, animate.

        Open the page, drop a video or image on it, and read the verdict, the score
        timeline, the top frames with the detector's heat overlay and the provenance
        findings (the same report `scan --html` writes). The API: `POST /v1/scan`,
        `POST /v1/verify`, `POST /v1/animate`, `GET /v1/health`; its description at
        `/docs` and `/openapi.json`. Uploads live in a per-request temp folder, deleted
        when the answer is sent. Animate needs signing keys: `likeness keys init`.

        Examples:

        - `likeness serve` then open http://127.0.0.1:8000/
        - `curl -F file=@clip.mp4 http://127.0.0.1:8000/v1/scan`
        - `LIKENESS_SERVE_TOKEN=$(openssl rand -hex 16) likeness serve --host 0.0.0.0`
        """
        from likeness.config import choose_device
        from likeness.pipelines.configs import ScanConfig
        from likeness.serve.app import create_app, require_fastapi
        from likeness.serve.engine import Engine

        require_fastapi()
        config = ServeConfig(
            host=host,
            port=port,
            token=token,
            max_upload_bytes=int(max_upload_mb * MB),
            temp_root=temp_root,
            animate_max_frames=animate_max_frames,
            generator_weights=generator_weights,
            scan=ScanConfig(weights=weights, trust=tuple(trust), device=choose_device(device)),
        )
        if config.scan.trust:
            from likeness.provenance.verify import load_trust

            load_trust(config.scan.trust)  # a bad trust file fails here, not per request
        engine = Engine(config)
        console.print("loading the detector and face models …")
        seconds = engine.warm_up()  # a missing detector or face model: one line, exit 2
        console.print(f"models loaded in {seconds:.1f} s")
        _run(create_app(config, engine), config)


def _run(app, config) -> None:
    import uvicorn

    url_host = f"[{config.host}]" if ":" in config.host else config.host
    shown = "any free port" if config.port == 0 else f"http://{url_host}:{config.port}/"
    console.print(f"likeness serve on {safe(shown)} (Ctrl-C stops)")
    if config.token:
        console.print("a token is required: send `Authorization: Bearer <token>`")
    # One worker process: the models are loaded once, in this process.
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=os.environ.get("LIKENESS_SERVE_LOG", "info"),
        access_log=True,
    )
