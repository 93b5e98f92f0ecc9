"""`likeness keys | sign | verify`: provenance commands. Parse, call the library, render."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.table import Table

from likeness.provenance.manifest import DIGITAL_SOURCE_TYPES
from likeness.ui import console, safe

TRUST_HELP = (
    "A trust anchor: the root certificate (PEM) of a signer you trust. Get likeness's "
    "with `likeness keys export-trust -o likeness-root.pem` on the machine that signed. "
    "Repeat for several. Without it a valid manifest reads `valid-untrusted`."
)


def register(app: typer.Typer) -> None:
    keys_app = typer.Typer(
        help=(
            "Signing keys: a local root CA, an ES256 signing certificate issued by it, and "
            "a secret watermark key, kept in LIKENESS_HOME/keys (folder 0700, files 0600).\n\n"
            "Start with `likeness keys init`; give verifiers the root with "
            "`likeness keys export-trust -o root.pem`."
        ),
        no_args_is_help=True,
    )
    app.add_typer(keys_app, name="keys")

    @keys_app.command("init")
    def keys_init(
        force: bool = typer.Option(
            False,
            "--force",
            help="Replace existing keys. Files signed before stay valid but "
            "verifiers then need the new root; the old watermark key is lost.",
        ),
        passphrase: bool = typer.Option(
            False,
            "--passphrase/--no-passphrase",
            help="Encrypt the signing key with a passphrase (prompted, or taken from "
            "LIKENESS_KEY_PASSPHRASE). Every later signing then needs that variable set.",
        ),
    ) -> None:
        """Make a new root CA, signing certificate and watermark key.

        Refuses to overwrite existing keys unless `--force` is given.
        """
        from likeness.provenance.keys import PASSPHRASE_ENV, init_keys

        secret = ""
        if passphrase:
            secret = os.environ.get(PASSPHRASE_ENV) or typer.prompt(
                "Passphrase for the signing key", hide_input=True, confirmation_prompt=True
            )
        elif os.environ.get(PASSPHRASE_ENV):
            secret = os.environ[PASSPHRASE_ENV]
        info = init_keys(passphrase=secret, force=force)
        console.print(f"keys written to {safe(info.directory)}")
        console.print(f"signer: {safe(info.signer_subject)} (valid until {info.not_after})")
        console.print(f"watermark key id: {info.key_id:04x}")
        console.print(
            "give verifiers the trust anchor: likeness keys export-trust -o likeness-root.pem"
        )

    @keys_app.command("show")
    def keys_show(
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Show where the keys are, who the signer is, and the certificate fingerprints.

        Never prints private material.
        """
        from likeness.provenance.keys import show

        info = show()
        if as_json:
            console.print_json(json.dumps(info.to_dict()))
            return
        table = Table(show_header=False, box=None)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in info.to_dict().items():
            text = f"{value:04x}" if key == "key_id" else str(value)
            table.add_row(key.replace("_", " "), safe(text))
        console.print(table)

    @keys_app.command("export-trust")
    def keys_export_trust(
        output: Path = typer.Option(..., "-o", "--output", help="Where to write the root PEM."),
    ) -> None:
        """Write the root certificate that verifiers pass to `likeness verify --trust`.

        It is public: share it with whoever should be able to say "trusted" about files
        signed here.
        """
        from likeness.provenance.keys import export_trust

        path = export_trust(output)
        console.print(f"trust anchor written to {safe(path)}")

    @app.command("sign")
    def sign_command(
        file: Path = typer.Argument(..., help="An MP4, JPEG or PNG file."),
        output: Path = typer.Option(..., "-o", "--output", help="The signed copy (same kind)."),
        ingredient: list[Path] = typer.Option(
            [],
            "--ingredient",
            help="A file this one was made from (repeatable). Its name "
            "(not its path), hash and own manifest, if any, go into the manifest.",
        ),
        action: list[str] = typer.Option(
            ["c2pa.created"],
            "--action",
            help="C2PA action (repeatable); the first must be c2pa.created or c2pa.opened "
            "(then FILE itself is recorded as the parentOf ingredient that was opened).",
        ),
        source_type: str = typer.Option(
            "trainedAlgorithmicMedia",
            "--source-type",
            help="IPTC digital source type: " + ", ".join(DIGITAL_SOURCE_TYPES) + ".",
        ),
        model_name: str | None = typer.Option(None, help="Model that made the content."),
        model_hash: str | None = typer.Option(None, help="Hash of that model's weights."),
        tsa_url: str | None = typer.Option(
            None, help="RFC 3161 timestamp authority (network). Offline when not given."
        ),
    ) -> None:
        """Sign a file with a C2PA manifest (by default: made by a trained model).

        The pixels are not changed and no watermark is added: generator output is marked
        and signed by the generator itself. Needs `likeness keys init` first.
        """
        from likeness.provenance.mark import sign_file

        result = sign_file(
            file, output, ingredients=ingredient, actions=action,
            digital_source_type=source_type, model_name=model_name, model_hash=model_hash,
            tsa_url=tsa_url,
        )  # fmt: skip
        console.print(f"signed: {safe(result.target)} (sha256 {result.sha256[:16]}...)")

    @app.command("verify")
    def verify_command(
        files: list[Path] = typer.Argument(..., help="Videos or images to check."),
        trust: list[Path] = typer.Option([], "--trust", help=TRUST_HELP),
        as_json: bool = typer.Option(
            False, "--json", help="Print one JSON object per file (one per line)."
        ),
    ) -> None:
        """Say where each file came from and whether that can be trusted.

        Manifest: `trusted` (valid, signer chains to a --trust root), `valid-untrusted`
        (valid, but no given root vouches for the signer), `tampered` (manifest present,
        content or signature changed), `no-manifest`. Watermark: found or not, with this
        installation's key. Store: the record the watermark (or exact hash) points to,
        so a re-encoded file still leads back to its manifest.

        Exit code: 0 every file verified (trusted manifest, or watermark found with its
        store record), 1 any file not verified, 2 bad input.
        """
        from likeness.provenance.verify import load_trust, verify_file

        load_trust(trust)  # a bad trust file is bad input before any work is done
        verdicts = [verify_file(f, trust) for f in files]
        if as_json:
            from likeness.provenance.verification import Verification

            for verdict in verdicts:  # the shape likeness.verify() returns (one schema)
                typer.echo(json.dumps(Verification.from_verdict(verdict).to_dict()))
        else:
            for verdict in verdicts:
                _render(verdict)
        if not all(v.verified for v in verdicts):
            raise typer.Exit(1)


def _render(verdict) -> None:
    colour = {
        "trusted": "green",
        "valid-untrusted": "yellow",
        "invalid": "red",
        "tampered": "red",
        "no-manifest": "dim",
    }[verdict.manifest]
    table = Table(title=safe(verdict.path.name), show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    status = "[green]verified[/]" if verdict.verified else "[red]not verified[/]"
    table.add_row("verdict", status)
    table.add_row("manifest", f"[{colour}]{verdict.manifest}[/]")
    if verdict.validation_state:
        table.add_row("c2pa state", safe(verdict.validation_state))
    from likeness.provenance.verify import stored_manifest_fallback

    summary = verdict.summary or stored_manifest_fallback(verdict)
    if summary is not None:
        source = "manifest" if verdict.summary is not None else "stored manifest"
        table.add_row(f"{source} title", safe(summary.title or "-"))
        table.add_row("made by", safe(summary.generator or "-"))
        table.add_row("signer", safe(summary.signer or "-"))
        table.add_row("actions", safe(", ".join(summary.actions) or "-"))
        if summary.digital_source_type:
            table.add_row("source type", safe(summary.digital_source_type))
        if summary.model:
            table.add_row("model", safe(_model_text(summary.model)))
        if summary.ingredients:
            table.add_row("ingredients", safe(", ".join(summary.ingredients)))
    wm = verdict.watermark
    if wm is None:
        table.add_row("watermark", "not checked")
    elif verdict.watermark_found:
        from likeness.provenance.store import payload_to_hex

        table.add_row(
            "watermark",
            f"found, payload {payload_to_hex(wm.payload)}, confidence "
            f"{getattr(wm, 'confidence', float('nan')):.3f}",
        )
    else:
        table.add_row("watermark", "not found")
    record = verdict.store_record
    table.add_row(
        "store",
        f"record #{record.id} ({verdict.store_match}) {safe(record.file_name)}"
        if record
        else "no record",
    )
    for reason in verdict.reasons:
        table.add_row("", safe(reason))
    console.print(table)


def _model_text(model: object) -> str:
    """`name (weights sha256 abcdef123456...)` for the manifest's model entry; anything
    else (another signer's layout) as JSON."""
    if isinstance(model, dict) and set(model) <= {"name", "hash"} and model.get("name"):
        name, digest = str(model["name"]), str(model.get("hash") or "")
        return f"{name} (weights sha256 {digest[:12]}...)" if digest else name
    return json.dumps(model)
