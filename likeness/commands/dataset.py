"""`likeness dataset ...`: training packs (and, later, detector training sets)."""

from __future__ import annotations

from pathlib import Path

import typer

from likeness.datasets.pack import DEFAULT_CRF, DEFAULT_EVERY
from likeness.ui import console, err_console, progress_bar, safe


def register(app: typer.Typer) -> None:
    dataset_app = typer.Typer(
        help="Build training data from real videos and photos.", no_args_is_help=True
    )
    app.add_typer(dataset_app, name="dataset")

    @dataset_app.command("pack")
    def pack_command(
        sources: list[Path] = typer.Argument(
            ...,
            help="Videos, photos or folders (a corpus folder with MANIFEST.tsv, or any "
            "folder: searched recursively).",
        ),
        output: Path = typer.Option(..., "-o", "--output", help="The pack folder to write."),
        every: int = typer.Option(DEFAULT_EVERY, min=1, help="Use every N-th video frame."),
        crf: int = typer.Option(
            DEFAULT_CRF, min=0, max=51, help="H.264 quality of the clips (lower = larger)."
        ),
        size: int = typer.Option(256, min=32, max=2048, help="Crop side in pixels."),
        max_frames_per_clip: int | None = typer.Option(
            None, min=1, help="Keep at most this many frames of each video."
        ),
        split_file: Path | None = typer.Option(
            None,
            help="Split file: identity and split (train, val, test) per line, tab-separated "
            "(default: the split shipped with likeness).",
        ),
        force: bool = typer.Option(False, "--force", help="Replace an existing pack."),
    ) -> None:
        """Turn real videos and photos into aligned face crops with landmarks, for training.

        Example: `likeness dataset pack ../shared/corpus -o corpus-pack`
        """
        from likeness.datasets.pack import PackConfig, write_pack

        config = PackConfig(
            size=size,
            every=every,
            crf=crf,
            max_frames_per_clip=max_frames_per_clip,
            split_file=split_file,
            force=force,
        )
        report = write_pack(
            sources,
            output,
            config,
            progress=progress_bar,
            warn=lambda message: err_console.print(f"[yellow]warning:[/] {safe(message)}"),
        )
        videos = [item for item in report.items if item["kind"] == "video"]
        console.print(
            f"pack {safe(report.path)}: {len(videos)} video(s) "
            f"({sum(item['frames'] for item in videos)} frames; "
            f"{report.frames_without_face} without a face left out), "
            f"{len(report.items) - len(videos)} photo(s), {len(report.skipped)} file(s) without "
            f"a face skipped; {report.bytes / 2**20:.1f} MiB in {report.seconds:.0f} s"
        )
        for split, counts in report.by_split().items():
            console.print(
                f"  {split}: {counts['identities']} identities, {counts['videos']} video(s) "
                f"({counts['frames']} frames), {counts['photos']} photo(s)"
            )
