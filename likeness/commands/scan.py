"""`likeness scan`: score videos and images for face manipulation, with provenance."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from likeness.config import default_of
from likeness.pipelines.configs import ScanConfig
from likeness.ui import console, progress_bar, safe

VERDICT_STYLE = {
    "manipulated": "bold red",
    "likely-real": "green",
    "no-face": "dim",
    "error": "yellow",
}


def register(app: typer.Typer) -> None:
    @app.command("scan")
    def scan_command(
        paths: list[Path] = typer.Argument(..., help="Videos, images or folders."),
        recursive: bool = typer.Option(
            False, "--recursive", "-r", help="Also scan the folders inside folders."
        ),
        json_out: Path | None = typer.Option(
            None,
            "--json",
            help="Write one JSON line per file here "
            "(JSON Schema: likeness/schemas/scan-record.schema.json).",
        ),
        html_out: Path | None = typer.Option(
            None, "--html", help="Write a self-contained HTML report here."
        ),
        workers: int | None = typer.Option(
            None,
            "--workers",
            min=1,
            help="Files scanned in parallel (default: 1 locally, every CPU of a Ray cluster).",
        ),
        backend: str = typer.Option(
            "local",
            "--backend",
            help="local (this machine) or ray (Ray actors; pip install 'likeness[ray]').",
        ),
        address: str | None = typer.Option(
            None,
            "--address",
            help="With --backend ray: the cluster (ray://head:10001, or auto for the one "
            "`ray start` runs here). Default: a local Ray with --workers CPUs.",
        ),
        resume: bool = typer.Option(
            False,
            "--resume",
            help="Skip files whose sha256 the --json file already holds (errors are retried).",
        ),
        every: int = typer.Option(
            default_of(ScanConfig, "every"),
            "--every",
            min=1,
            help="Scan every N-th frame (more for long videos).",
        ),
        max_frames: int = typer.Option(
            default_of(ScanConfig, "max_frames"),
            "--max-frames",
            min=1,
            help="At most this many frames per video, spread over it.",
        ),
        max_faces: int = typer.Option(
            default_of(ScanConfig, "max_faces"),
            "--max-faces",
            min=1,
            max=32,
            help="Faces per frame.",
        ),
        trust: list[Path] = typer.Option(
            list(default_of(ScanConfig, "trust")),
            "--trust",
            help="Trust anchor (root PEM) for C2PA manifests; repeatable.",
        ),
        no_provenance: bool = typer.Option(
            not default_of(ScanConfig, "provenance"),
            "--no-provenance",
            help="Skip the manifest, watermark and store checks.",
        ),
        weights: Path | None = typer.Option(
            default_of(ScanConfig, "weights"),
            "--weights",
            help="Detector folder (default: the shipped detector).",
        ),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    ) -> None:
        """Score faces in videos and images for manipulation, and read their provenance.

        Per file: faces in sampled frames, a calibrated score per face crop, a video
        score (a pooling one odd frame cannot dominate) and a verdict: `manipulated`,
        `likely-real` or `no-face`; plus the C2PA manifest, the watermark and the local
        store record. A file that cannot be read gets an error line; the rest are scanned.

        Exit code: 0 nothing manipulated, 3 something manipulated, 2 bad input (nothing
        could be scanned, bad option or missing detector), 1 internal fault.

        Examples:

            likeness scan clips/ --json scan.jsonl --html report.html

            likeness scan clips/ --workers 2 --json scan.jsonl --resume

            likeness scan /shared/clips --backend ray --address ray://head:10001 --json s.jsonl

        On Ray every worker reads the files by the same path: give a folder all nodes
        mount (NFS, a mounted bucket). Results stream back into the same JSONL and
        report as they finish; a worker that dies loses no file.
        """
        from likeness.pipelines.scan_runner import run_scan

        config = ScanConfig(
            every=every,
            max_frames=max_frames,
            max_faces=max_faces,
            weights=weights,
            trust=tuple(trust),
            provenance=not no_provenance,
            device=_device(device, workers, backend),
        )
        run = run_scan(
            paths,
            config,
            recursive=recursive,
            jsonl=json_out,
            html=html_out,
            workers=workers,
            resume=resume,
            progress=progress_bar,
            backend=backend,
            address=address,
        )
        _summary(run)
        raise typer.Exit(run.exit_code)


def _device(name: str, workers: int | None, backend: str) -> str:
    """One local worker: the best device here. Several, or Ray (whose workers may sit
    on other machines): cpu, unless cuda is asked for (then each Ray actor takes a GPU)."""
    from likeness.config import choose_device

    if backend == "ray":
        return "cuda" if name.lower() == "cuda" else "cpu"
    return choose_device(name) if (workers or 1) == 1 else "cpu"


def _summary(run) -> None:
    for note in run.notes:
        console.print(f"[yellow]{safe(note)}[/]")
    table = Table(title="likeness scan", title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("kind")
    table.add_column("frames", justify="right")
    table.add_column("faces", justify="right")
    table.add_column("score", justify="right")
    table.add_column("verdict")
    table.add_column("provenance", overflow="fold")
    for r in run.records:
        verdict = r.verdict or "?"
        style = VERDICT_STYLE.get(verdict, "")
        score = r.video_score
        note = _provenance_note(r) if r.ok else (r.error.message if r.error else "")
        table.add_row(
            safe(r.name),
            safe(r.kind or "-"),
            str(r.frames_scanned or 0),
            str(len(r.faces)),
            f"{score:.3f}" if isinstance(score, float) else "-",
            f"[{style}]{safe(verdict)}[/]" if style else safe(verdict),
            safe(note),
        )
    console.print(table)
    counts: dict[str, int] = {}
    for r in run.records:
        counts[r.verdict or "?"] = counts.get(r.verdict or "?", 0) + 1
    tally = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    resumed = f", {run.resumed} already in the JSONL" if run.resumed else ""
    console.print(
        f"{len(run.records)} file(s): {safe(tally)} "
        f"({run.scanned} scanned{resumed}, {run.seconds:.1f} s)"
    )
    for label, path in (("JSON lines", run.jsonl), ("report", run.html)):
        if path is not None:
            console.print(f"{label}: {safe(path)}")


def _provenance_note(record) -> str:
    prov = record.provenance
    if prov is None:
        return record.provenance_error or "not checked"
    parts = [str(prov.manifest)]
    if prov.watermark is not None:
        parts.append("watermark found" if prov.watermark_found else "no watermark")
    if prov.store_match:
        parts.append(f"store match ({prov.store_match})")
    return ", ".join(parts)
