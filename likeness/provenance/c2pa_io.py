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
THUMBNAIL_ID = "likeness-thumbnail.jpg"
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
    """One validation status entry from c2pa: its code, explanation and the JUMBF URL of
    what it is about (an assertion, a signature, ...)."""

    code: str
    explanation: str
    url: str = ""

    def to_dict(self) -> dict:
        return {"code": self.code, "url": self.url, "explanation": self.explanation}


@dataclass(frozen=True)
class StatusCodes:
    """c2pa's three lists for one manifest: success, informational, failure."""

    success: list[Status] = field(default_factory=list)
    informational: list[Status] = field(default_factory=list)
    failure: list[Status] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "success": [s.to_dict() for s in self.success],
            "informational": [s.to_dict() for s in self.informational],
            "failure": [s.to_dict() for s in self.failure],
        }


@dataclass(frozen=True)
class IngredientResult:
    """One ingredient assertion anywhere in the manifest store, with what c2pa found
    now (`deltas`: c2pa-rs's ingredient deltas, problems not already recorded) and what
    the signer recorded about it when it signed (`recorded`)."""

    uri: str  # JUMBF URI of the ingredient assertion
    manifest_label: str  # the manifest that lists this ingredient
    manifest_title: str | None
    label: str  # the assertion's label, e.g. c2pa.ingredient__1
    title: str | None
    relationship: str | None
    ingredient_manifest: str | None  # label of the ingredient's own manifest, if any
    deltas: StatusCodes
    recorded: StatusCodes

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "relationship": self.relationship,
            "assertion_uri": self.uri,
            "in_manifest": self.manifest_title or self.manifest_label,
            "ingredient_manifest": self.ingredient_manifest,
            "validation_deltas": self.deltas.to_dict(),
            "recorded_validation_status": self.recorded.to_dict(),
        }


@dataclass(frozen=True)
class ReadResult:
    """What c2pa says about a file that carries a manifest store."""

    state: str  # "Trusted" | "Valid" | "Invalid" (c2pa's validation_state)
    store: dict = field(repr=False)  # the whole manifest store, as c2pa's JSON
    active: dict | None = field(repr=False)
    active_label: str | None
    failures: list[Status]
    informational: list[Status]
    success: list[Status] = field(default_factory=list)
    ingredients: list[IngredientResult] = field(default_factory=list)
    reported_state: str | None = None  # validation_state as c2pa gave it (None: absent)

    @property
    def active_codes(self) -> StatusCodes:
        return StatusCodes(list(self.success), list(self.informational), list(self.failures))


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
    thumbnail: bytes | None = None,
    created_labels: Sequence[str] = (),
) -> None:
    """Embed a signed manifest for `src` into `dst` (a fresh temp path the caller owns).

    `thumbnail` (JPEG bytes) becomes the claim thumbnail where c2pa makes none itself
    (video); assertions whose labels are in `created_labels` are filed as *created* (the
    signer vouches for them) rather than *gathered*."""
    import io

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
    settings = _settings([keys.root_pem])
    if created_labels:
        settings["builder"] = {"created_assertion_labels": list(created_labels)}
    if thumbnail is not None:
        manifest = {**manifest, "thumbnail": {"format": JPEG, "identifier": THUMBNAIL_ID}}
    context = c2pa.Context.from_dict(settings)
    try:
        with c2pa.Builder(manifest, context=context) as builder:
            if thumbnail is not None:
                builder.add_resource(THUMBNAIL_ID, io.BytesIO(thumbnail))
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
    return parse_store(store)


# Status codes c2pa-rs files as success or informational (C2PA 2.x, "Standard Status
# Codes"); every other code is a failure. Older stores (and the validation status an
# ingredient assertion records) carry no kind, so it is derived from the code.
_SUCCESS_SUFFIXES = (".match", ".validated", ".trusted", ".insideValidity", ".notRevoked")
_INFORMATIONAL = {
    "signingCredential.ocsp.skipped",
    "signingCredential.ocsp.inaccessible",
    "timeStamp.mismatch",
    "timeStamp.malformed",
    "timeStamp.outsideValidity",
    "timeStamp.untrusted",
    "manifest.unknownProvenance",
    "manifest.unreferenced",
    "ingredient.unknownProvenance",
    "algorithm.deprecated",
    "timeOfSigning.insideValidity",
    "timeOfSigning.outsideValidity",
    "assertion.dataHash.additionalExclusionsPresent",
    "assertion.bmffHash.additionalExclusionsPresent",
    "assertion.boxesHash.additionalExclusionsPresent",
}


def status_kind(code: str) -> str:
    """ "success", "informational" or "failure" for a status code without a kind."""
    if code in _INFORMATIONAL:
        return "informational"
    if code.endswith(_SUCCESS_SUFFIXES) or code == "assertion.accessible":
        return "success"
    return "failure"


def _status(entry: object) -> Status:
    data = entry if isinstance(entry, dict) else {}
    return Status(
        str(data.get("code", "")), str(data.get("explanation", "")), str(data.get("url") or "")
    )


def _codes(data: object) -> StatusCodes:
    data = data if isinstance(data, dict) else {}

    def entries(kind: str) -> list[Status]:
        items = data.get(kind)
        return [_status(s) for s in items] if isinstance(items, list) else []

    return StatusCodes(entries("success"), entries("informational"), entries("failure"))


def _by_kind(statuses: Sequence[Status]) -> StatusCodes:
    codes = StatusCodes()
    for status in statuses:
        getattr(codes, status_kind(status.code)).append(status)
    return codes


def _recorded(ingredient: dict) -> StatusCodes:
    """What the signer recorded about an ingredient: v3 `validation_results` (kinds
    given), else the flat `validation_status` list (kinds derived from the codes)."""
    results = ingredient.get("validation_results")
    if isinstance(results, dict) and isinstance(results.get("activeManifest"), dict):
        return _codes(results["activeManifest"])
    flat = ingredient.get("validation_status")
    return _by_kind([_status(s) for s in flat]) if isinstance(flat, list) else StatusCodes()


def _ingredient_uri(manifest_label: str, assertion_label: str) -> str:
    return f"self#jumbf=/c2pa/{manifest_label}/c2pa.assertions/{assertion_label}"


def parse_store(store: dict) -> ReadResult:
    """A ReadResult from c2pa's Reader JSON (pure: the conformance tests feed it too)."""
    label = store.get("active_manifest")
    manifests = store.get("manifests") if isinstance(store.get("manifests"), dict) else {}
    active = manifests.get(label) if label else None
    results = store.get("validation_results")
    results = results if isinstance(results, dict) else {}
    if isinstance(results.get("activeManifest"), dict):
        active_codes = _codes(results["activeManifest"])
    else:  # older stores: one flat list, no kinds
        flat = store.get("validation_status")
        active_codes = (
            _by_kind([_status(s) for s in flat]) if isinstance(flat, list) else _codes({})
        )
    deltas: dict[str, StatusCodes] = {}
    for delta in results.get("ingredientDeltas") or []:
        if isinstance(delta, dict) and delta.get("ingredientAssertionURI"):
            deltas[str(delta["ingredientAssertionURI"])] = _codes(delta.get("validationDeltas"))
    ingredients: list[IngredientResult] = []
    seen: set[str] = set()
    for manifest_label, manifest in manifests.items():
        if not isinstance(manifest, dict):
            continue
        for number, ingredient in enumerate(manifest.get("ingredients") or []):
            if not isinstance(ingredient, dict):
                continue
            assertion = str(ingredient.get("label") or "")
            if not assertion:
                assertion = "c2pa.ingredient" + (f"__{number}" if number else "")
            uri = _ingredient_uri(manifest_label, assertion)
            seen.add(uri)
            own = ingredient.get("active_manifest")
            ingredients.append(
                IngredientResult(
                    uri=uri,
                    manifest_label=str(manifest_label),
                    manifest_title=manifest.get("title"),
                    label=assertion,
                    title=ingredient.get("title"),
                    relationship=ingredient.get("relationship"),
                    ingredient_manifest=str(own) if own else None,
                    deltas=deltas.get(uri, StatusCodes()),
                    recorded=_recorded(ingredient),
                )
            )
    for uri, codes in deltas.items():  # a delta for an ingredient the JSON does not list
        if uri not in seen:
            holder = uri.removeprefix("self#jumbf=/c2pa/").split("/c2pa.assertions/")
            ingredients.append(
                IngredientResult(
                    uri=uri,
                    manifest_label=holder[0],
                    manifest_title=None,
                    label=holder[-1],
                    title=None,
                    relationship=None,
                    ingredient_manifest=None,
                    deltas=codes,
                    recorded=StatusCodes(),
                )
            )
    reported = store.get("validation_state")
    failures = active_codes.failure
    # No state given (older stores): Invalid if anything but an untrusted signer failed.
    state = reported or (
        "Invalid"
        if any(s.code != "signingCredential.untrusted" for s in failures)
        or any(i.deltas.failure for i in ingredients)
        else "Valid"
    )
    return ReadResult(
        state=str(state),
        store=store,
        active=active,
        active_label=label,
        failures=list(failures),
        informational=list(active_codes.informational),
        success=list(active_codes.success),
        ingredients=ingredients,
        reported_state=str(reported) if reported else None,
    )
