"""Thin typed wrapper over c2pa-python: sign a stream, read a manifest store.

Nothing from c2pa escapes this module: its exceptions become `ProvenanceError` (our
keys or manifest were refused) or `MediaError` (the file is not what it claims), with
one line in our words. `c2pa` is imported inside the functions so that importing
likeness loads no native library.

Settings used for every call (c2pa-rs 0.91 names): trust verification on, remote
manifest fetching and OCSP off, so reading and signing never touch the network.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from likeness.errors import MediaError, ProvenanceError, out_of_space
from likeness.provenance.keys import SigningKeys

MP4 = "video/mp4"
JPEG = "image/jpeg"
PNG = "image/png"
SIGNABLE = {MP4: (".mp4", ".m4v"), JPEG: (".jpg", ".jpeg"), PNG: (".png",)}
FORMAT_NAMES = {MP4: "MP4", JPEG: "JPEG", PNG: "PNG"}

# Formats we recognise only to name them in a refusal ("x.gif is a GIF ...").
_OTHER_MAGIC = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"RIFF", "RIFF (AVI/WebP/WAV)"),
    (b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (b"%PDF", "PDF"),
    (b"BM", "BMP"),
)


@dataclass(frozen=True)
class Status:
    """One validation status entry from c2pa (code + explanation)."""

    code: str
    explanation: str


@dataclass(frozen=True)
class ReadResult:
    """What c2pa says about a file that carries a manifest store."""

    state: str  # "Trusted" | "Valid" | "Invalid" (c2pa's validation_state)
    store: dict = field(repr=False)  # the whole manifest store, as c2pa's JSON
    active: dict | None = field(repr=False)
    active_label: str | None
    failures: list[Status]
    informational: list[Status]


@dataclass(frozen=True)
class IngredientSource:
    """One ingredient: the definition we give c2pa and the file it reads."""

    definition: dict
    path: Path
    mime: str


def sniff(path: Path) -> str | None:
    """MIME type of a file we can sign, from its first bytes (never from its name)."""
    head = _head(path)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return MP4
    return None


def describe(path: Path) -> str:
    """A short name for what a file is, for refusals."""
    head = _head(path)
    for magic, name in _OTHER_MAGIC:
        if head.startswith(magic):
            return f"a {name} file"
    if not head:
        return "empty"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file"
    return "not an MP4, JPEG or PNG file"


def _head(path: Path, n: int = 32) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError as err:
        raise MediaError(f"cannot read {path}: {err.strerror}") from err


def _settings(trust_pems: Sequence[bytes]) -> dict:
    verify = {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False}
    settings: dict = {"verify": verify}
    if trust_pems:
        anchors = b"\n".join(p.strip() for p in trust_pems).decode("ascii", "replace") + "\n"
        settings["trust"] = {"trust_anchors": anchors}
    return settings


def _message(err: Exception) -> str:
    """c2pa's message, first line, without its 'Kind: ' prefix, kept short."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    kind, sep, rest = text.partition(": ")
    if sep and kind.isalpha():
        text = rest
    return text if len(text) <= 160 else text[:157] + "..."


def _failure_codes(err: Exception) -> str:
    """Signing-time validation failures arrive as indented lines after the first."""
    lines = [ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()]
    codes = [ln.split(":", 1)[0] for ln in lines]
    return ", ".join(codes[:4])


class _WriteWatch:
    """A writable file as c2pa sees it, keeping the OSError of a failed write or flush:
    c2pa's stream callbacks swallow it and report an opaque error instead ("Other:
    UntrackedPointer"), which would otherwise be blamed on the input file."""

    def __init__(self, fh) -> None:
        self._fh = fh
        self.error: OSError | None = None

    def _watch(self, op, *args):
        try:
            return op(*args)
        except OSError as err:
            self.error = self.error or err
            raise

    def write(self, data) -> int:
        return self._watch(self._fh.write, data)

    def flush(self) -> None:
        self._watch(self._fh.flush)

    def read(self, size: int = -1) -> bytes:
        return self._fh.read(size)

    def readinto(self, buf) -> int | None:
        return self._fh.readinto(buf)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()


def sign_stream(
    src: Path,
    dst: Path,
    *,
    mime: str,
    manifest: dict,
    keys: SigningKeys,
    ingredients: Sequence[IngredientSource] = (),
    tsa_url: str | None = None,
) -> None:
    """Embed a signed manifest for `src` into `dst` (a fresh temp path the caller owns)."""
    import c2pa

    try:
        info = c2pa.C2paSignerInfo(
            c2pa.C2paSigningAlg.ES256, keys.chain_pem, keys.private_key_pem, tsa_url
        )
        signer = c2pa.Signer.from_info(info)
    except (c2pa.C2paError, ValueError, TypeError) as err:
        raise ProvenanceError(
            f"the signing key or certificate was refused ({_message(err)}): "
            "run `likeness keys init --force`"
        ) from None
    # Our own root is a trust anchor while signing, so that ingredients we made earlier
    # are recorded in the chain as validated against it.
    context = c2pa.Context.from_dict(_settings([keys.root_pem]))
    try:
        with c2pa.Builder(manifest, context=context) as builder:
            for ingredient in ingredients:
                try:
                    with open(ingredient.path, "rb") as fh:
                        builder.add_ingredient(ingredient.definition, ingredient.mime, fh)
                except c2pa.C2paError as err:
                    raise ProvenanceError(
                        f"cannot add ingredient {ingredient.path.name}: {_message(err)}"
                    ) from None
            with open(src, "rb") as source, open(dst, "w+b") as raw:
                dest = _WriteWatch(raw)
                try:
                    builder.sign(signer, mime, source, dest)
                except c2pa.C2paError:
                    if dest.error is not None:  # the real cause (a full disk, say)
                        raise dest.error from None
                    raise
    except c2pa.C2paError.Verify as err:
        codes = _failure_codes(err)
        raise ProvenanceError(
            f"c2pa refused to sign {src.name}: the manifest failed validation ({codes})"
        ) from None
    except (c2pa.C2paError.NotSupported, c2pa.C2paError.Decoding) as err:
        raise MediaError(
            f"{src.name} cannot be signed as {FORMAT_NAMES.get(mime, mime)}: {_message(err)}"
        ) from None
    except c2pa.C2paError as err:
        if "parse" in str(err).lower() or isinstance(err, c2pa.C2paError.Io):
            raise MediaError(
                f"{src.name} is not a readable {FORMAT_NAMES.get(mime, mime)} file "
                f"({_message(err)})"
            ) from None
        raise ProvenanceError(f"signing {src.name} failed: {_message(err)}") from None
    except OSError as err:
        raise out_of_space(err) or MediaError(
            f"cannot read or write while signing {src.name}: {err.strerror}"
        ) from err
    finally:
        context.close()
        signer.close()


def read_manifest(path: Path, *, mime: str, trust_pems: Sequence[bytes] = ()) -> ReadResult | None:
    """The manifest store of `path` validated against `trust_pems`, or None if it has none."""
    import c2pa

    context = c2pa.Context.from_dict(_settings(trust_pems))
    try:
        with open(path, "rb") as fh, c2pa.Reader(mime, fh, context=context) as reader:
            store = json.loads(reader.json())
    except c2pa.C2paError.ManifestNotFound:
        return None
    except (c2pa.C2paError.Io, c2pa.C2paError.Other, c2pa.C2paError.Decoding) as err:
        # Junk after a valid header, truncation before the manifest, wrong container.
        raise MediaError(
            f"{path.name} is not a readable {FORMAT_NAMES.get(mime, mime)} file ({_message(err)})"
        ) from None
    except c2pa.C2paError as err:
        raise ProvenanceError(
            f"cannot read the C2PA manifest of {path.name}: {_message(err)}"
        ) from None
    except OSError as err:
        raise MediaError(f"cannot read {path}: {err.strerror}") from err
    finally:
        context.close()
    label = store.get("active_manifest")
    active = (store.get("manifests") or {}).get(label) if label else None
    results = (store.get("validation_results") or {}).get("activeManifest") or {}

    def statuses(kind: str) -> list[Status]:
        return [
            Status(str(s.get("code", "")), str(s.get("explanation", "")))
            for s in results.get(kind) or []
        ]

    # Older stores report only a flat status list; treat a missing state as Invalid
    # only when there are failures.
    failures = statuses("failure")
    state = store.get("validation_state") or ("Invalid" if failures else "Valid")
    return ReadResult(
        state=str(state),
        store=store,
        active=active,
        active_label=label,
        failures=failures,
        informational=statuses("informational"),
    )
