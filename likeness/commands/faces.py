"""`likeness faces`: see what the face stack sees."""

from __future__ import annotations

from pathlib import Path

import typer

from likeness.ui import console, progress_bar, safe


def register(app: typer.Typer) -> None:
    @app.command("faces")
    def faces_command(
        file: Path = typer.Argument(..., help="An image or a video."),
        output: Path = typer.Option(
            ...,
            "-o",
            "--output",
            help="Annotated output: .png/.jpg for an image, .mp4 for a video.",
        ),
        detector: str = typer.Option(
            "auto", help="auto (short range, then full range if nothing found), short, full, both."
        ),
        every: int = typer.Option(1, min=1, help="Use every N-th video frame."),
        max_frames: int | None = typer.Option(None, min=1, help="Stop after this many frames."),
        no_smooth: bool = typer.Option(False, "--no-smooth", help="Show raw per-frame landmarks."),
        json_out: Path | None = typer.Option(
            None, "--json", help="Also write per-frame face data."
        ),
    ) -> None:
        """Draw face boxes, the 468-point mesh, eye contours, irises and head pose.

        Example: `likeness faces clip.mp4 -o clip.faces.mp4`
        """
        from likeness.faces.annotate import annotate_file
        from likeness.faces.stack import FaceStackConfig
        from likeness.media import probe

        info = probe(file)
        total = info.frames // every if info.kind == "video" else None
        if total and max_frames:
            total = min(total, max_frames)
        with progress_bar(f"faces {file.name}", total) as advance:
            report = annotate_file(
                file, output, stack_config=FaceStackConfig(detector=detector),
                smooth=not no_smooth, every=every, max_frames=max_frames,
                json_out=json_out, on_frame=advance,
            )  # fmt: skip
        if report.kind == "image":
            console.print(
                f"{report.max_faces} face(s) found; annotated image: {safe(report.output)}"
            )
        else:
            console.print(
                f"{report.frames_with_face}/{report.frames} frames with a face "
                f"(up to {report.max_faces} at once); annotated video: {safe(report.output)}"
            )
