"""`likeness animate`: a portrait photo (or a video) driven by a video or by scripted motion."""

from __future__ import annotations

from pathlib import Path

import typer

from likeness.config import default_of
from likeness.pipelines.configs import DEFAULT_FPS, AnimateConfig
from likeness.ui import console, progress_bar, safe


def _default(name: str):
    return default_of(AnimateConfig, name)


def register(app: typer.Typer) -> None:
    @app.command("animate")
    def animate_command(
        photo: Path = typer.Argument(
            ...,
            help="The portrait to animate (JPEG, PNG, WebP), or a video: its own motion "
            "is kept and the driver's expression goes on top.",
        ),
        driving: Path | None = typer.Argument(
            None, help="A video whose head motion, expression, gaze and blinks to follow."
        ),
        output: Path = typer.Option(..., "-o", "--output", help="The animated video (.mp4)."),
        motion: str | None = typer.Option(
            None,
            "--motion",
            help="Scripted motion instead of a driving video: a timeline played in order, "
            "items separated by commas, each NAME[:INTENSITY][:SECONDSs] (2 s by default), "
            "+ plays two at once. Motions: nod, shake, blink, smile, talk, look-left, "
            "look-right, look-up, look-down. Emotions (offsets measured on real faces, "
            "easing from one to the next): joy, fear, anger, surprise, sadness, disgust, "
            'neutral. E.g. "neutral:1s,fear:0.7:2s,anger:1.5s+shake".',
        ),
        fps: float | None = typer.Option(
            _default("fps"),
            "--fps",
            help=f"Frame rate of scripted motion [default: {DEFAULT_FPS:g}].",
        ),
        absolute: bool = typer.Option(
            not _default("relative"),
            "--absolute",
            help="Copy the driving face's pose and expression as they are, instead of its "
            "change since the first frame (relative, the default, keeps the photo's own "
            "pose and expression as the starting point).",
        ),
        region: str = typer.Option(
            _default("region"),
            "--region",
            help="What to transfer: all, pose, expression, eyes, lips.",
        ),
        multiplier: float = typer.Option(
            _default("multiplier"),
            "--multiplier",
            help="Scale the expression change (and scripted motion).",
        ),
        smooth: bool = typer.Option(
            _default("smooth"), "--smooth/--no-smooth", help="Smooth the driving motion over time."
        ),
        keypoints: str = typer.Option(
            _default("keypoints"),
            "--keypoints",
            help="Driving motion from the face mesh (mesh) or the model's own motion "
            "extractor (learned).",
        ),
        crop_only: bool = typer.Option(
            not _default("paste_back"),
            "--crop-only",
            help="Write the model's square face crop, not the photo.",
        ),
        crop_scale: float = typer.Option(
            _default("crop_scale"),
            "--crop-scale",
            help="Framing of the photo's face crop (smaller is tighter).",
        ),
        no_audio: bool = typer.Option(
            not _default("audio"), "--no-audio", help="Leave out the driving video's audio."
        ),
        device: str = typer.Option(_default("device"), "--device", help="auto, cpu or cuda."),
        weights: Path | None = typer.Option(
            _default("weights"),
            "--weights",
            help="A generator weights folder [default: the shipped model].",
        ),
        batch_size: int = typer.Option(
            _default("batch_size"), "--batch-size", help="Frames rendered at once."
        ),
        max_frames: int | None = typer.Option(
            _default("max_frames"), "--max-frames", help="Stop after this many frames."
        ),
        face: str = typer.Option(
            str(_default("face")),
            "--face",
            help="Which face of the photo (or source video) to animate, 0 = the largest, or all.",
        ),
        drive: list[str] = typer.Option(
            [],
            "--drive",
            help="FACE=CLIP: drive that face with its own clip (repeat for more faces), "
            "e.g. --drive 0=a.mp4 --drive 1=b.mp4.",
        ),
        transfer_pose: bool = typer.Option(
            _default("transfer_pose"),
            "--transfer-pose",
            help="Video source: the driver's head pose on top of the source's, not only "
            "its expression.",
        ),
        source_audio: bool = typer.Option(
            _default("source_audio"),
            "--source-audio",
            help="Video source: keep its own audio instead of the driver's.",
        ),
        keyframe_every: int = typer.Option(
            _default("keyframe_every"),
            "--keyframe-every",
            help="Video source: encode its face every N frames (faster; 1 = every frame).",
        ),
        loop: bool = typer.Option(
            _default("loop"),
            "--loop",
            help="Last as long as the longer input, the shorter one starting over "
            "(default: as long as the shorter).",
        ),
        label: bool = typer.Option(
            _default("label"),
            "--label",
            help="Burn a visible 'AI-generated' mark into every frame (the manifest records it).",
        ),
        label_text: str = typer.Option(
            _default("label_text"), "--label-text", help="The label's words (plain ASCII)."
        ),
        label_position: str = typer.Option(
            _default("label_position"),
            "--label-position",
            help="bottom-right, bottom-left, top-right or top-left.",
        ),
        preview: Path | None = typer.Option(
            _default("preview"),
            "--preview",
            help="Also write a side-by-side (driver | output) MP4 here, marked and signed "
            "like the output.",
        ),
        driver_face: int = typer.Option(
            _default("driver_face"),
            "--driver-face",
            help="Which face of the driving video drives, 0 = the largest, picked again "
            "at each shot cut and followed within a shot.",
        ),
        refine: bool = typer.Option(
            _default("refine"),
            "--refine",
            help="Run the diffusion refiner on each rendered face (detail in skin, eyes "
            "and mouth; slower). Pixels outside the face are left as rendered; the "
            "manifest names the refiner and its weights hash. No refiner ships yet "
            "(the trained one did not beat the unrefined output): give --refiner-weights.",
        ),
        refiner_weights: Path | None = typer.Option(
            _default("refiner_weights"),
            "--refiner-weights",
            help="A refiner weights folder (RUN/best of python -m "
            "likeness.generator.refiner.train) [default: the shipped refiner].",
        ),
    ) -> None:
        """Animate a portrait photo with a driving video or scripted motion.

        The output is always watermarked and carries a signed C2PA manifest (the photo
        and driving video as ingredients, the model and its weights hash); set up
        signing once with `likeness keys init`.

        Examples:

        - `likeness animate photo.jpg driving.mp4 -o out.mp4`
        - `likeness animate photo.jpg driving.mp4 -o out.mp4 --region lips --no-audio`
        - `likeness animate photo.jpg --motion nod,blink,smile -o out.mp4`
        - `likeness animate photo.jpg --motion "neutral:1s,fear:2s,joy:0.7:1.5s+nod" -o out.mp4`
        - `likeness animate photo.jpg film-scene.mp4 -o out.mp4 --driver-face 1`
        - `likeness animate photo.jpg driving.mp4 -o crop.mp4 --crop-only --device cuda`
        - `likeness animate source.mp4 driving.mp4 -o out.mp4 --transfer-pose --source-audio`
        - `likeness animate two.jpg driving.mp4 -o out.mp4 --face all`
        - `likeness animate two.jpg -o out.mp4 --drive 0=a.mp4 --drive 1=b.mp4`
        - `likeness animate photo.jpg driving.mp4 -o out.mp4 --label --preview side.mp4`
        - `likeness animate photo.jpg driving.mp4 -o out.mp4 --refine --refiner-weights r1/best`
        """
        from likeness.pipelines.animate import prepare
        from likeness.pipelines.faces_plan import parse_drive, parse_face

        config = AnimateConfig(
            relative=not absolute,
            region=region,
            multiplier=multiplier,
            smooth=smooth,
            keypoints=keypoints,
            paste_back=not crop_only,
            crop_scale=crop_scale,
            audio=not no_audio,
            device=device,
            weights=weights,
            batch_size=batch_size,
            max_frames=max_frames,
            face=parse_face(face),
            drive=parse_drive(drive),
            transfer_pose=transfer_pose,
            source_audio=source_audio,
            loop=loop,
            keyframe_every=keyframe_every,
            label=label,
            label_text=label_text,
            label_position=label_position,
            preview=preview,
            driver_face=driver_face,
            fps=fps,
            refine=refine,
            refiner_weights=refiner_weights,
        )
        job = prepare(photo, output, driving, config, motion)
        for note in job.notes:
            console.print(safe(note))
        result = job.run(progress_bar)
        for note in result.notes[len(job.notes) :]:
            console.print(safe(note))
        sign = result.sign
        if result.preview is not None:
            console.print(f"wrote {safe(result.preview.target)}: driver | output, signed")
        content = getattr(sign.payload, "content_id", None)
        console.print(
            f"wrote {safe(result.output)}: {result.frames} frames at {result.fps:g} fps "
            f"in {result.seconds:.1f} s ({result.frames_per_second:.1f} frames/s)"
        )
        console.print(
            f"signed (C2PA) and watermarked: content id {content}, payload {sign.payload_hex}"
        )
