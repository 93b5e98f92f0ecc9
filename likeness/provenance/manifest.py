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
from dataclasses import dataclass, field

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
# the C2PA spec asks of algorithms outside its registry). v2 since 2026-12-01: the
# embedder of pattern version 2 (band 5..22), rotation resync and small-frame tiling;
# its detector reads v1 files too. Readers take any version of the family (a payload
# named by a later version is still the payload its store maps).
SOFT_BINDING_ALG = "com.likeness.watermark.v2"
SOFT_BINDING_FAMILY = "com.likeness.watermark."
SOFT_BINDING_LABEL = "c2pa.soft-binding"
# What a resolver needs to know, in the assertion itself (`name`): where the payload
# comes from and how it maps to a manifest.
SOFT_BINDING_NAME = (
    "likeness invisible watermark: 64-bit payload (48-bit content id + 16-bit key id) "
    "in every frame, readable only with the signer's watermark key; the signer's store "
    "maps the payload to this manifest. value: the payload, base64; name ends in it as hex"
)
MODEL_PARAM = "com.likeness.model"
# A visible "AI-generated" label burnt into every frame (text, corner), as a parameter of
# the c2pa.created action: the pixels say so to people, the manifest says that they do.
VISIBLE_LABEL_PARAM = "com.likeness.visibleLabel"
# The ingredient's file hash, in the ingredient assertion's metadata (C2PA ingredients
# carry no hash of an asset without a manifest of its own).
INGREDIENT_SHA256 = "com.likeness.sha256"
# The `label` c2pa-rs links a c2pa.opened action to (its parentOf ingredient).
PARENT_ID = "likeness-parent"
# Labels of assertions likeness makes (c2pa-rs files these as *created*, vouched for by
# the signer, instead of *gathered*; the thumbnails and ingredients it makes for us too).
CREATED_LABELS = (
    "c2pa.actions",
    "c2pa.actions.v2",
    SOFT_BINDING_LABEL,
    "c2pa.ingredient",
    "c2pa.ingredient.v2",
    "c2pa.ingredient.v3",
    "c2pa.thumbnail.claim",
    "c2pa.thumbnail.claim.jpeg",
    "c2pa.thumbnail.claim.png",
    "c2pa.thumbnail.ingredient",
    "c2pa.thumbnail.ingredient.jpeg",
    "c2pa.thumbnail.ingredient.png",
)
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
    visible_label: dict | None = None,
) -> dict:
    """The manifest definition: actions (with software agent, source type and model),
    and, when the file carries our watermark, a soft-binding assertion that names it.
    `visible_label` (text, position) records a disclosure burnt into the pixels.

    Ingredients are not listed here: c2pa adds them from the files themselves, which is
    how their hashes and their own manifests get into the chain.
    """
    agent = {"name": SOFTWARE, "version": __version__}
    source_type = digital_source_type_url(digital_source_type)
    entries: list[dict] = []
    for name in check_actions(actions):
        entry: dict = {"action": name, "softwareAgent": agent}
        if name == "c2pa.opened":
            # C2PA 2.x: c2pa.opened names the parentOf ingredient it opened.
            entry["parameters"] = {"ingredientIds": [PARENT_ID]}
        if name == "c2pa.created":
            entry["digitalSourceType"] = source_type
            model = {
                key: value
                for key, value in (("name", model_name), ("hash", model_hash))
                if value is not None
            }
            params: dict = {}
            if model:
                params[MODEL_PARAM] = model
            if visible_label is not None:
                params[VISIBLE_LABEL_PARAM] = dict(visible_label)
            if params:
                entry["parameters"] = params
        entries.append(entry)
    assertions: list[dict] = []
    if soft_binding is not None:
        payload = bytes.fromhex(soft_binding.payload_hex)
        # The spec wants a watermark action to point at the soft binding that proves it.
        entries.append({"action": "c2pa.watermarked.bound", "softwareAgent": agent})
        assertions.append(
            {
                "label": SOFT_BINDING_LABEL,
                "created": True,
                "data": {
                    "alg": soft_binding.alg,
                    # The block value as c2pa-rs's reader types it (text: the payload in
                    # base64; c2pa-python's JSON builder cannot write a CBOR byte string),
                    # `pad` as its type requires; `name` ends in the payload as hex, to
                    # match against `likeness verify` output by eye.
                    "blocks": [{"scope": {}, "value": base64.b64encode(payload).decode()}],
                    "pad": [],
                    "name": f"{SOFT_BINDING_NAME}: {soft_binding.payload_hex}",
                },
            }
        )
    assertions.insert(0, {"label": "c2pa.actions", "created": True, "data": {"actions": entries}})
    return {
        "claim_generator_info": [agent],
        "title": safe_title(title),
        "assertions": assertions,
    }


def ingredient_definition(
    path_name: str, relationship: str = "inputTo", sha256: str | None = None
) -> dict:
    """What we tell c2pa about an ingredient; it reads the rest (format, thumbnail, and
    the ingredient's own manifest if it has one) from the file. Its sha256 goes in the
    assertion's metadata, so that an ingredient without a manifest is still bound to
    the exact file; a parentOf ingredient gets the label c2pa.opened links to."""
    definition: dict = {"title": safe_title(path_name), "relationship": relationship}
    if sha256 is not None:
        definition["metadata"] = {INGREDIENT_SHA256: sha256}
    if relationship == "parentOf":
        definition["label"] = PARENT_ID
    return definition


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
    ingredient_sha256: list[str | None] = field(default_factory=list)
    visible_label: dict | None = None  # a label burnt into the pixels (text, position)

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
            "ingredient_sha256": self.ingredient_sha256,
            "soft_binding": self.soft_binding_hex,
            "visible_label": self.visible_label,
        }


def soft_binding_hex(manifest: dict) -> str | None:
    """Our watermark payload from an active manifest's soft-binding assertion, or None."""
    for assertion in manifest.get("assertions") or []:
        if assertion.get("label") != SOFT_BINDING_LABEL:
            continue
        data = assertion.get("data") or {}
        # Any version of our watermark (files marked before a version bump still name it).
        if not str(data.get("alg", "")).startswith(SOFT_BINDING_FAMILY):
            continue
        for block in data.get("blocks") or []:
            value = block.get("value") if isinstance(block, dict) else None
            if isinstance(value, list) and all(isinstance(b, int) for b in value):
                try:  # a byte string, as a reader that decodes CBOR bytes shows it
                    return bytes(value).hex()
                except ValueError:
                    continue
            try:
                return base64.b64decode(str(value), validate=True).hex()
            except ValueError:
                continue
    return None


def _ingredient_hash(ingredient: dict) -> str | None:
    metadata = ingredient.get("metadata")
    value = metadata.get(INGREDIENT_SHA256) if isinstance(metadata, dict) else None
    return str(value) if isinstance(value, str) else None


def summarize(manifest: dict) -> ManifestSummary:
    """Pick out what matters from an active manifest as c2pa's Reader reports it."""
    actions: list[str] = []
    source_type = None
    model = None
    label = None
    for assertion in manifest.get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            actions.append(str(action.get("action")))
            source_type = source_type or action.get("digitalSourceType")
            params = action.get("parameters") or {}
            if isinstance(params, dict) and isinstance(params.get(MODEL_PARAM), dict):
                model = params[MODEL_PARAM]
            if isinstance(params, dict) and isinstance(params.get(VISIBLE_LABEL_PARAM), dict):
                label = params[VISIBLE_LABEL_PARAM]
    generators = manifest.get("claim_generator_info") or []
    generator = None
    if generators and isinstance(generators[0], dict):
        first = generators[0]
        generator = " ".join(str(first[k]) for k in ("name", "version") if first.get(k))
    ingredients = [i for i in manifest.get("ingredients") or [] if isinstance(i, dict)]
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
        ingredients=[str(i.get("title")) for i in ingredients],
        soft_binding_hex=soft_binding_hex(manifest),
        ingredient_sha256=[_ingredient_hash(i) for i in ingredients],
        visible_label=label,
    )
