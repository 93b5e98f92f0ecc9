"""`likeness dataset ...`: training packs (and, later, detector training sets)."""

from __future__ import annotations

from pathlib import Path

import typer

from likeness.config import default_of
from likeness.datasets.pack import DEFAULT_CRF, DEFAULT_EVERY, PackConfig
from likeness.pipelines.configs import FakesConfig
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
        size: int = typer.Option(
            default_of(PackConfig, "size"), min=32, max=2048, help="Crop side in pixels."
        ),
        max_frames_per_clip: int | None = typer.Option(
            None, min=1, help="Keep at most this many frames of each video."
        ),
        split_file: Path | None = typer.Option(
            None,
            help="Split file: identity and split (train, val, test) per line, tab-separated "
            "(default: the split shipped with likeness).",
        ),
        raw_keypoints: bool = typer.Option(
            False,
            "--raw-keypoints",
            help="Store each frame's own landmarks, not the tracker's smoothed ones (the "
            "crop window stays smoothed): a generator trained on smoothed keypoints learns "
            "to open the mouth less than they ask.",
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
            smooth_keypoints=not raw_keypoints,
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

    @dataset_app.command("fakes")
    def fakes_command(
        pack: Path = typer.Option(..., "--pack", help="A pack from `likeness dataset pack`."),
        output: Path = typer.Option(
            ..., "-o", "--output", help="The training-set folder to write (FAKES)."
        ),
        weights: list[Path] = typer.Option(
            [],
            "--weights",
            help="Generator model folder (repeatable: each checkpoint is a fake family); "
            "default: the shipped generator.",
        ),
        every: int = typer.Option(
            default_of(FakesConfig, "every"),
            min=1,
            help="Use every N-th pack frame of each clip (packs keep every 2nd).",
        ),
        max_frames_per_clip: int | None = typer.Option(
            None, min=1, help="Use at most this many frames of each clip."
        ),
        split: list[str] = typer.Option(
            [], "--split", help="Only this split: train, val or test (repeatable; default all)."
        ),
        no_generator: bool = typer.Option(
            False, "--no-generator", help="Real crops and the pure families only (no generator)."
        ),
        family: list[str] = typer.Option(
            [],
            "--family",
            help="Pure fake family to make: sbi, swap, lipsync or lowres (repeatable; "
            "default all four).",
        ),
        quality: int = typer.Option(
            default_of(FakesConfig, "quality"),
            min=50,
            max=100,
            help="JPEG quality of stored crops.",
        ),
        mask_size: int = typer.Option(
            default_of(FakesConfig, "mask_size"),
            "--mask-size",
            help="Side of the stored masks in pixels (0: the crop's); 64 makes a set small "
            "enough to carry to a GPU machine.",
        ),
        seed: int = typer.Option(
            default_of(FakesConfig, "seed"), help="Seed for every random choice."
        ),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Replace an existing folder."),
    ) -> None:
        """Make the detector's training set: real crops and fakes of the same people.

        Per sampled frame one real crop and one fake (generator self-reenactment,
        cross-reenactment, self-blend, face swap, lip-sync or low-resolution face, taking
        turns), each fake with the mask of what it changed; every video of crops goes
        through one random H.264 or JPEG round trip. Splits follow the pack
        (identity-disjoint). The fakes are not watermarked: training data, not output.

        Example: `likeness dataset fakes --pack pack/ -o fakes/`
        """
        from likeness.config import choose_device
        from likeness.datasets.pack_format import SPLITS
        from likeness.pipelines.fakes import PURE_FAMILIES, make_fakes

        config = FakesConfig(
            every=every,
            max_frames_per_clip=max_frames_per_clip,
            splits=tuple(split) or SPLITS,
            weights=tuple(weights),
            generator=not no_generator,
            families=tuple(family) or PURE_FAMILIES,
            quality=quality,
            mask_size=mask_size,
            seed=seed,
            device=choose_device(device),
            force=force,
        )
        report = make_fakes(
            pack,
            output,
            config,
            progress=progress_bar,
            warn=lambda message: err_console.print(f"[yellow]warning:[/] {safe(message)}"),
        )
        total = sum(sum(c.values()) for c in report.counts.values())
        console.print(
            f"training set {safe(report.path)}: {total} crops, "
            f"{report.bytes / 2**20:.1f} MiB in {report.seconds:.0f} s (not watermarked: "
            "training data only)"
        )
        for name, counts in report.counts.items():
            parts = ", ".join(f"{family} {n}" for family, n in sorted(counts.items()))
            console.print(f"  {name}: {parts}")
        for note in report.notes:
            err_console.print(f"[yellow]note:[/] {safe(note)}")
