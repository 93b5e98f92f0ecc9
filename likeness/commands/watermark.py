"""`likeness watermark embed | detect`: the invisible watermark on its own."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from likeness.errors import InputError
from likeness.ui import console, progress_bar, safe


def register(app: typer.Typer) -> None:
    wm_app = typer.Typer(
        help=(
            "Invisible, keyed watermark: 64 bits (48-bit content id + 16-bit key id) with "
            "CRC and error correction, spread over every frame. Only this installation's "
            "key (`likeness keys init`) embeds or finds it."
        ),
        no_args_is_help=True,
    )
    app.add_typer(wm_app, name="watermark")

    @wm_app.command("embed")
    def embed_command(
        file: Path = typer.Argument(..., help="A video (.mp4/.mov/.mkv) or an image."),
        output: Path = typer.Option(..., "-o", "--output", help="Marked output file."),
        payload_hex: str | None = typer.Option(
            None, "--payload", help="The full 64-bit payload as 16 hex digits."
        ),
        content_id: int | None = typer.Option(
            None, "--content-id", min=0, help="48-bit content id (default: random)."
        ),
        psnr: float = typer.Option(42.0, "--psnr", help="Target PSNR in dB (higher = fainter)."),
        crf: int = typer.Option(18, "--crf", min=0, max=51, help="x264 CRF of the output video."),
    ) -> None:
        """Embed the watermark; the strength follows the PSNR target, frame by frame.

        The mark is read back from the encoded output before it is kept: if it does not
        read, nothing is written and the command exits 2.

        Example: `likeness watermark embed clip.mp4 -o clip.marked.mp4`
        """
        from likeness.media import probe
        from likeness.provenance.keys import watermark_key
        from likeness.provenance.watermark import Payload, WatermarkConfig, embed_file

        if not 20.0 <= psnr <= 60.0:
            raise InputError(f"--psnr must be between 20 and 60 dB, got {psnr}")
        key = watermark_key()
        payload = _payload(Payload, payload_hex, content_id, key.key_id)
        info = probe(file)
        total = info.frames if info.kind == "video" else None
        with progress_bar(f"watermark {file.name}", total) as advance:
            report = embed_file(
                file, output, key=key.secret, payload=payload,
                config=WatermarkConfig(psnr_db=psnr), crf=crf, on_frame=advance,
                read_back=True,
            )  # fmt: skip
        console.print(
            f"marked {report.frames} frame(s), mean PSNR {report.mean_psnr:.2f} dB "
            f"(min {report.min_psnr:.2f}); payload {payload.hex()} "
            f"(content id {payload.content_id}, key id {payload.key_id:04x}) -> "
            f"{safe(report.output)}"
        )

    @wm_app.command("detect")
    def detect_command(
        file: Path = typer.Argument(..., help="A video or an image."),
        max_frames: int = typer.Option(120, "--max-frames", min=1, help="Frames to read."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Look for this installation's watermark; report payload and false-positive odds.

        Found means: p_false <= 1e-6 and the CRC agrees. Exit code 0 found, 1 not found.
        """
        from likeness.provenance.keys import watermark_key
        from likeness.provenance.watermark import detect_file

        key = watermark_key()
        result = detect_file(file, key=key.secret, key_id=key.key_id, max_frames=max_frames)
        if json_out:
            console.print_json(json.dumps({"file": str(file), **result.to_dict()}))
        elif result.found and result.payload is not None:
            p = result.payload
            other = "" if p.key_id == key.key_id else " [yellow](key id differs from ours)[/]"
            geometry = ""
            if result.rotation is not None and abs(result.rotation) >= 0.3:
                geometry = f"; turned {-result.rotation:+.1f} degrees"
            console.print(
                f"[bold green]watermark found[/] in {safe(file.name)}: payload {p.hex()} "
                f"(content id {p.content_id}, key id {p.key_id:04x}){other}; "
                f"p_false {result.p_false:.1e}, confidence {result.confidence:.2f}, "
                f"{result.bit_errors_corrected} bit error(s) corrected, "
                f"{result.frames_used} frame(s){geometry}"
            )
        else:
            console.print(
                f"[bold]no watermark[/] found in {safe(file.name)} "
                f"(best p_false {result.p_false:.1e}, {result.frames_used} frame(s))"
            )
        if not result.found:
            raise typer.Exit(1)


def _payload(payload_cls, payload_hex: str | None, content_id: int | None, key_id: int):
    if payload_hex is not None and content_id is not None:
        raise InputError("give --payload or --content-id, not both")
    if payload_hex is not None:
        try:
            return payload_cls.from_hex(payload_hex)
        except ValueError as err:
            raise InputError(f"--payload must be up to 16 hex digits: {err}") from None
    if content_id is not None:
        if content_id >= 1 << 48:
            raise InputError("--content-id must fit in 48 bits")
        return payload_cls(content_id, key_id)
    return payload_cls.random(key_id)
