"""The C2PA manifest definition likeness signs, built as plain data (no I/O).

`build_manifest` returns the JSON-able dict that c2pa-python's `Builder` takes;
`ingredient_definition` the dict for one `add_ingredient` call; `summarize` turns a
manifest read back from a file into the few fields a person wants to see. Keeping this
pure means the manifest's shape is unit-tested without keys, files or the native SDK.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from likeness import __version__
from likeness.errors import InputError

SOFTWARE = "likeness"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
DIGITAL_SOURCE_TYPES = (
    "trainedAlgorithmicMedia",
    "compositeWithTrainedAlgorithmicMedia",
    "algorithmicMedia",
    "compositeSynthetic",
    "digitalCapture",
    "digitalCreation",
)
# The name our soft-binding assertion gives the watermark algorithm (reverse domain, as
# the C2PA spec asks of algorithms outside its registry).
SOFT_BINDING_ALG = "com.likeness.watermark.v1"
SOFT_BINDING_LABEL = "c2pa.soft-binding"
MODEL_PARAM = "com.likeness.model"
# C2PA 2.x: the first action must be one of these (c2pa-rs refuses to sign otherwise).
FIRST_ACTIONS = ("c2pa.created", "c2pa.opened")
_ACTION_NAME = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+$")
MAX_TITLE = 200


@dataclass(frozen=True)
class SoftBinding:
    """The watermark payload as the manifest names it: 8 bytes, shown as hex."""

    payload_hex: str
    alg: str = SOFT_BINDING_ALG


def digital_source_type_url(name: str) -> str:
    """Short IPTC name or full URL -> the full IPTC URL the manifest must carry."""
    short = name.removeprefix(IPTC)
    if short not in DIGITAL_SOURCE_TYPES:
        raise InputError(
            f"unknown digital source type {name!r}: use one of {', '.join(DIGITAL_SOURCE_TYPES)}"
        )
    return IPTC + short


def safe_title(name: str) -> str:
    """A file's base name only, with control characters replaced.

    Titles end up in manifests other people read: a full path would leak the maker's
    folders, and a newline could forge lines in someone's terminal or log. Both `/` and
    `\\` count as separators, whatever the platform.
    """
    base = re.split(r"[\\/]", str(name))[-1]
    base = "".join(ch if ch.isprintable() else "_" for ch in base).strip()
    if base in {"", ".", ".."}:
        base = "untitled"
    return base[:MAX_TITLE]


def check_actions(actions: Sequence[str]) -> list[str]:
    names = [str(a).strip() for a in actions]
    if not names:
        raise InputError("at least one action is needed (e.g. c2pa.created)")
    for name in names:
        if not _ACTION_NAME.match(name):
            raise InputError(
                f"action {name!r} is not a C2PA action name (c2pa.NAME or a reverse-domain name)"
            )
    if names[0] not in FIRST_ACTIONS:
        raise InputError(f"the first action must be {' or '.join(FIRST_ACTIONS)}, not {names[0]}")
    return names


def build_manifest(
    *,
    title: str,
    actions: Sequence[str] = ("c2pa.created",),
    digital_source_type: str = "trainedAlgorithmicMedia",
    model_name: str | None = None,
    model_hash: str | None = None,
    soft_binding: SoftBinding | None = None,
) -> dict:
    """The manifest definition: actions (with software agent, source type and model),
    and, when the file carries our watermark, a soft-binding assertion that names it.

    Ingredients are not listed here: c2pa adds them from the files themselves, which is
    how their hashes and their own manifests get into the chain.
    """
    agent = {"name": SOFTWARE, "version": __version__}
    source_type = digital_source_type_url(digital_source_type)
    entries: list[dict] = []
    for name in check_actions(actions):
        entry: dict = {"action": name, "softwareAgent": agent}
        if name == "c2pa.created":
            entry["digitalSourceType"] = source_type
            model = {
                key: value
                for key, value in (("name", model_name), ("hash", model_hash))
                if value is not None
            }
            if model:
                entry["parameters"] = {MODEL_PARAM: model}
        entries.append(entry)
    assertions: list[dict] = []
    if soft_binding is not None:
        payload = bytes.fromhex(soft_binding.payload_hex)
        # The spec wants a watermark action to point at the soft binding that proves it.
        entries.append({"action": "c2pa.watermarked.bound", "softwareAgent": agent})
        assertions.append(
            {
                "label": SOFT_BINDING_LABEL,
                "data": {
                    "alg": soft_binding.alg,
                    # The spec's block value is base64; `name` repeats it as hex so a
                    # person can match it against `likeness verify` output by eye.
                    "blocks": [{"scope": {}, "value": base64.b64encode(payload).decode()}],
                    "name": f"likeness watermark payload {soft_binding.payload_hex}",
                },
            }
        )
    assertions.insert(0, {"label": "c2pa.actions", "data": {"actions": entries}})
    return {
        "claim_generator_info": [agent],
        "title": safe_title(title),
        "assertions": assertions,
    }


def ingredient_definition(path_name: str, relationship: str = "inputTo") -> dict:
    """What we tell c2pa about an ingredient; it reads the rest (hash, format, and the
    ingredient's own manifest if it has one) from the file."""
    return {"title": safe_title(path_name), "relationship": relationship}


@dataclass(frozen=True)
class ManifestSummary:
    """The human-sized view of an active manifest."""

    title: str | None
    generator: str | None
    signer: str | None
    signed_at: str | None
    actions: list[str]
    digital_source_type: str | None
    model: dict | None
    ingredients: list[str]
    soft_binding_hex: str | None

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "generator": self.generator,
            "signer": self.signer,
            "signed_at": self.signed_at,
            "actions": self.actions,
            "digital_source_type": self.digital_source_type,
            "model": self.model,
            "ingredients": self.ingredients,
            "soft_binding": self.soft_binding_hex,
        }


def soft_binding_hex(manifest: dict) -> str | None:
    """Our watermark payload from an active manifest's soft-binding assertion, or None."""
    for assertion in manifest.get("assertions") or []:
        if assertion.get("label") != SOFT_BINDING_LABEL:
            continue
        data = assertion.get("data") or {}
        if data.get("alg") != SOFT_BINDING_ALG:
            continue
        for block in data.get("blocks") or []:
            try:
                return base64.b64decode(str(block.get("value")), validate=True).hex()
            except ValueError:
                continue
    return None


def summarize(manifest: dict) -> ManifestSummary:
    """Pick out what matters from an active manifest as c2pa's Reader reports it."""
    actions: list[str] = []
    source_type = None
    model = None
    for assertion in manifest.get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            actions.append(str(action.get("action")))
            source_type = source_type or action.get("digitalSourceType")
            params = action.get("parameters") or {}
            if isinstance(params, dict) and isinstance(params.get(MODEL_PARAM), dict):
                model = params[MODEL_PARAM]
    generators = manifest.get("claim_generator_info") or []
    generator = None
    if generators and isinstance(generators[0], dict):
        first = generators[0]
        generator = " ".join(str(first[k]) for k in ("name", "version") if first.get(k))
    signature = manifest.get("signature_info") or {}
    signer = signature.get("common_name") or signature.get("issuer")
    return ManifestSummary(
        title=manifest.get("title"),
        generator=generator,
        signer=signer,
        signed_at=signature.get("time"),
        actions=actions,
        digital_source_type=(source_type or "").removeprefix(IPTC) or None,
        model=model,
        ingredients=[str(i.get("title")) for i in manifest.get("ingredients") or []],
        soft_binding_hex=soft_binding_hex(manifest),
    )
