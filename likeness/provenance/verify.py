"""`verify_file`: where did this file come from, and can that answer be trusted?

Three independent witnesses, each with its reasons:

- the C2PA manifest (read with c2pa-rs, validated against the trust anchors passed in):
  `trusted` (valid, and the signer chains to a given anchor), `valid-untrusted` (valid,
  but no given anchor vouches for the signer), `tampered` (a hash a signed claim holds
  no longer matches: the content, an assertion or an ingredient's manifest changed after
  signing), `invalid` (a manifest is there but vouches for nothing: a signature that
  does not validate, an expired, revoked or unusable certificate, a missing ingredient
  manifest, a broken rule), `no-manifest`. The verdict is never more favourable than
  c2pa-rs's own `validation_state`; each status code behind it becomes a named finding
  (`Finding`, e.g. `certificate-expired`), for the active manifest and per ingredient;
- the watermark, detected with the local watermark key (only files marked with this
  installation's key can be found: the key is secret);
- the local store, looked up by the watermark payload, else by the file's sha256.

Trust anchors are only what the caller passes (`--trust ROOT.pem`); the local root is
not added behind the caller's back, so that "trusted" always means "chains to an
anchor you chose" and the same file reads `valid-untrusted` without one.

`verified` is true when the manifest is trusted, or when the watermark was found AND
the store holds the record it points to (a file whose manifest was stripped by
re-encoding still traces back to the manifest it was signed with), but never when a
manifest is there and fails (`tampered` or `invalid`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from likeness.errors import InputError, LikenessError, MediaError
from likeness.provenance import c2pa_io
from likeness.provenance.manifest import ManifestSummary, summarize
from likeness.provenance.store import Record, Store, payload_to_hex, sha256_file

TRUSTED = "trusted"
VALID_UNTRUSTED = "valid-untrusted"
INVALID = "invalid"
TAMPERED = "tampered"
NO_MANIFEST = "no-manifest"
VERDICTS = (TRUSTED, VALID_UNTRUSTED, INVALID, TAMPERED, NO_MANIFEST)

# Findings: what a C2PA status code means, in one word a person and a script can use.
CONTENT_CHANGED = "content-changed"
ASSERTION_EDITED = "assertion-edited"
INGREDIENT_CHANGED = "ingredient-manifest-changed"
BINDING_BROKEN = "binding-unverifiable"
SIGNATURE_BROKEN = "signature-broken"
CERT_EXPIRED = "certificate-expired"
CERT_REVOKED = "certificate-revoked"
CERT_INVALID = "certificate-invalid"
CERT_UNTRUSTED = "certificate-untrusted"
MANIFEST_MISSING = "ingredient-manifest-missing"
MALFORMED = "manifest-malformed"
TIMESTAMP = "timestamp-problem"
FAILED = "validation-failed"

# Findings that prove a change after signing: a hash that a signed claim holds no longer
# matches what it covers. Only these make a manifest `tampered`; other failures (a
# signature that does not validate, an expired or revoked certificate, a missing
# ingredient manifest) leave it `invalid`: it vouches for nothing, but shows no edit.
TAMPER_FINDINGS = frozenset({CONTENT_CHANGED, ASSERTION_EDITED, INGREDIENT_CHANGED})

_EXACT = {
    "assertion.dataHash.mismatch": CONTENT_CHANGED,
    "assertion.bmffHash.mismatch": CONTENT_CHANGED,
    "assertion.boxesHash.mismatch": CONTENT_CHANGED,
    "assertion.boxesHash.unknownBox": CONTENT_CHANGED,
    "assertion.collectionHash.mismatch": CONTENT_CHANGED,
    "assertion.hashedURI.mismatch": ASSERTION_EDITED,
    "assertion.missing": ASSERTION_EDITED,
    "assertion.undeclared": ASSERTION_EDITED,
    "assertion.outsideManifest": ASSERTION_EDITED,
    "ingredient.hashedURI.mismatch": INGREDIENT_CHANGED,
    "ingredient.manifest.mismatch": INGREDIENT_CHANGED,
    "ingredient.claimSignature.mismatch": INGREDIENT_CHANGED,
    "claimSignature.mismatch": SIGNATURE_BROKEN,
    "claimSignature.missing": SIGNATURE_BROKEN,
    "signingCredential.expired": CERT_EXPIRED,
    "claimSignature.outsideValidity": CERT_EXPIRED,
    "signingCredential.ocsp.revoked": CERT_REVOKED,
    "signingCredential.invalid": CERT_INVALID,
    "signingCredential.ocsp.unknown": CERT_INVALID,
    "algorithm.unsupported": CERT_INVALID,
    "signingCredential.untrusted": CERT_UNTRUSTED,
    "claim.missing": MANIFEST_MISSING,
    "ingredient.manifest.missing": MANIFEST_MISSING,
    "ingredient.claimSignature.missing": MANIFEST_MISSING,
    "manifest.inaccessible": MANIFEST_MISSING,
    "general.error": FAILED,
}
_PREFIXES = (
    ("timeStamp.", TIMESTAMP),
    ("claim.", MALFORMED),
    ("manifest.", MALFORMED),
    ("assertion.", MALFORMED),  # cbor/json invalid, required missing, action rules ...
    ("ingredient.", MALFORMED),
    ("signingCredential.", CERT_INVALID),
    ("algorithm.", CERT_INVALID),
)

_TEXT = {
    CONTENT_CHANGED: "the content changed after signing: its hash no longer matches the manifest",
    ASSERTION_EDITED: "an assertion was changed after signing",
    INGREDIENT_CHANGED: "an ingredient's manifest was changed after this one was signed",
    BINDING_BROKEN: "the content hash cannot be checked: the manifest's exclusions do not "
    "match where the manifest sits in the file (written wrongly, or bytes moved)",
    SIGNATURE_BROKEN: "the signature does not validate: the manifest cannot be attributed "
    "to anyone (its claim or signature was altered, or it was signed wrongly)",
    CERT_EXPIRED: "the signing certificate had expired (no trusted timestamp shows it was "
    "signed while valid)",
    CERT_REVOKED: "the signing certificate was revoked",
    CERT_INVALID: "the signing certificate or algorithm is not acceptable for C2PA",
    CERT_UNTRUSTED: "the signer chains to no given trust anchor",
    MANIFEST_MISSING: "a manifest it refers to (an ingredient's) is missing",
    MALFORMED: "the manifest breaks a C2PA rule",
    TIMESTAMP: "the signature's timestamp does not check out (the signing time is unproven)",
    FAILED: "validation failed",
}

# Informational codes that are routine and say nothing about this file.
_QUIET = {"signingCredential.ocsp.skipped", "ingredient.unknownProvenance"}


def finding_kind(code: str, explanation: str = "") -> str:
    """The finding a C2PA status code stands for (FAILED for codes we do not know)."""
    if code == "assertion.dataHash.mismatch" and "exclusion" in explanation.lower():
        return BINDING_BROKEN
    if code in _EXACT:
        return _EXACT[code]
    for prefix, kind in _PREFIXES:
        if code.startswith(prefix):
            return kind
    return FAILED


@dataclass(frozen=True)
class Finding:
    """One thing c2pa found wrong (or worth saying) about the manifest or an ingredient."""

    finding: str
    code: str
    explanation: str
    url: str
    severity: str  # "failure" | "informational"
    ingredient: str | None = None  # ingredient title; None: the active manifest
    recorded: bool = False  # recorded by the signer when it signed (not found now)

    @property
    def where(self) -> str:
        if self.ingredient is None:
            return "active manifest"
        return f"ingredient {self.ingredient}"

    def text(self) -> str:
        what = _TEXT.get(self.finding, self.finding)
        if self.severity == "informational":
            # c2pa reports it without failing the manifest (our own MP4s carry
            # bmffHash.additionalExclusionsPresent): a note, not a broken rule.
            what = f"note from c2pa: {self.explanation or self.code}"
        if self.finding == ASSERTION_EDITED and "c2pa.assertions/" in self.url:
            what += f" ({self.url.rsplit('c2pa.assertions/', 1)[-1]})"
        if self.ingredient is None:
            return f"{what} [{self.code}]"
        when = "recorded by the signer" if self.recorded else "found now"
        return f"ingredient {self.ingredient}: {what} [{self.code}, {when}]"

    def to_dict(self) -> dict:
        return {
            "finding": self.finding,
            "code": self.code,
            "severity": self.severity,
            "where": "ingredient" if self.ingredient is not None else "active_manifest",
            "ingredient": self.ingredient,
            "recorded_at_signing": self.recorded,
            "url": self.url,
            "explanation": self.explanation,
        }


def _findings(
    statuses: Sequence[c2pa_io.Status],
    severity: str,
    ingredient: str | None = None,
    recorded: bool = False,
) -> list[Finding]:
    out = []
    for status in statuses:
        if severity == "informational" and status.code in _QUIET:
            continue
        out.append(
            Finding(
                finding_kind(status.code, status.explanation),
                status.code,
                status.explanation,
                status.url,
                severity,
                ingredient,
                recorded,
            )
        )
    return out


def manifest_findings(result: c2pa_io.ReadResult) -> list[Finding]:
    """Every failure (and every telling informational code) of the active manifest,
    then per ingredient: what c2pa finds now, then what the signer recorded."""
    found = _findings(result.failures, "failure")
    found += _findings(result.informational, "informational")
    for ing in result.ingredients:
        name = ing.title or ing.label
        found += _findings(ing.deltas.failure, "failure", name)
        found += _findings(ing.deltas.informational, "informational", name)
        now = {s.code for s in ing.deltas.failure}
        recorded = [s for s in ing.recorded.failure if s.code not in now]
        found += _findings(recorded, "failure", name, recorded=True)
    return found


def manifest_verdict(result: c2pa_io.ReadResult, findings: Sequence[Finding]) -> str:
    """trusted / valid-untrusted / invalid / tampered, never more favourable than
    c2pa's validation_state: Invalid is never valid, Valid is never trusted, and any
    failure c2pa finds now (active manifest or ingredient delta) other than an untrusted
    signer makes the manifest invalid even where a state says otherwise. What a signer
    recorded about an ingredient when it signed is reported but, as in c2pa-rs, does not
    change the verdict."""
    current = [f for f in findings if f.severity == "failure" and not f.recorded]
    failing = [f for f in current if f.finding != CERT_UNTRUSTED]
    if result.state not in ("Trusted", "Valid") or failing:
        return TAMPERED if any(f.finding in TAMPER_FINDINGS for f in failing) else INVALID
    if result.state == "Trusted" and not any(f.finding == CERT_UNTRUSTED for f in current):
        return TRUSTED
    return VALID_UNTRUSTED


@dataclass
class Verdict:
    path: Path
    manifest: str
    reasons: list[str] = field(default_factory=list)
    summary: ManifestSummary | None = None
    watermark: Any | None = None  # WatermarkResult
    store_record: Record | None = None
    store_match: str | None = None  # "payload" | "sha256"
    sha256: str = ""
    validation_state: str | None = None  # c2pa-rs's own word: Trusted | Valid | Invalid
    findings: list[Finding] = field(default_factory=list)
    status_codes: dict | None = None  # every status code c2pa reported, as c2pa put it

    @property
    def watermark_found(self) -> bool:
        return bool(self.watermark is not None and getattr(self.watermark, "found", False))

    @property
    def verified(self) -> bool:
        if self.manifest == TRUSTED:
            return True
        # A failing manifest (content or manifest changed after signing, or a signature
        # or certificate that vouches for nothing): a watermark that survived must not
        # vouch for the file.
        if self.manifest in (TAMPERED, INVALID):
            return False
        return self.watermark_found and self.store_match == "payload"

    def to_dict(self) -> dict:
        watermark = None
        if self.watermark is not None:
            to_dict = getattr(self.watermark, "to_dict", None)
            watermark = to_dict() if callable(to_dict) else {"found": self.watermark_found}
            watermark = _plain(watermark)
        return {
            "path": str(self.path),
            "verified": self.verified,
            "manifest": self.manifest,
            "validation_state": self.validation_state,
            "findings": [f.to_dict() for f in self.findings],
            "reasons": list(self.reasons),
            "manifest_summary": self.summary.to_dict() if self.summary else None,
            "watermark": watermark,
            "store_match": self.store_match,
            "store_record": self.store_record.to_dict() if self.store_record else None,
            "sha256": self.sha256,
            "status_codes": self.status_codes,
        }


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars and arrays (from the detector) become Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalar or array
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "content_id") and hasattr(value, "key_id"):  # a Payload
        return payload_to_hex(value)
    return str(value)


def load_trust(paths: Sequence[Path]) -> list[bytes]:
    """Read trust anchor files; each must hold at least one PEM certificate."""
    from cryptography import x509

    pems = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise InputError(f"trust file {path} does not exist")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise InputError(f"cannot read trust file {path}: {err.strerror}") from err
        try:
            x509.load_pem_x509_certificates(data)
        except ValueError:
            raise InputError(
                f"{path} is not a PEM certificate (get one with `likeness keys export-trust`)"
            ) from None
        pems.append(data)
    return pems


def _check_file(path: Path) -> Path:
    from likeness.media import check_input_file

    check_input_file(path)
    return path


def _manifest_verdict(verdict: Verdict, path: Path, trust_pems: Sequence[bytes]) -> str | None:
    """Fill the manifest part; returns the soft-binding payload hex it names, if any."""
    mime = c2pa_io.sniff(path)
    if mime is None:
        verdict.manifest = NO_MANIFEST
        verdict.reasons.append(
            f"no C2PA manifest read: {path.name} is {c2pa_io.describe(path)}, "
            "likeness reads manifests in MP4, JPEG and PNG"
        )
        return None
    result = c2pa_io.read_manifest(path, mime=mime, trust_pems=trust_pems)
    if result is None:
        verdict.manifest = NO_MANIFEST
        verdict.reasons.append("no C2PA manifest in the file (never signed, or stripped)")
        return None
    if result.active is not None:
        verdict.summary = summarize(result.active)
    signer = (verdict.summary.signer if verdict.summary else None) or "unknown"
    findings = manifest_findings(result)
    verdict.findings = findings
    verdict.validation_state = result.reported_state
    verdict.status_codes = {
        "validation_state": result.reported_state,
        "active_manifest": result.active_codes.to_dict(),
        "ingredients": [ing.to_dict() for ing in result.ingredients],
    }
    verdict.manifest = manifest_verdict(result, findings)
    state = result.reported_state or "not given"
    if verdict.manifest == TRUSTED:
        verdict.reasons.append(
            f"manifest valid and its signer ({signer}) chains to a given trust anchor"
        )
    elif verdict.manifest == VALID_UNTRUSTED:
        hint = "" if trust_pems else "; pass the signer's root with --trust"
        verdict.reasons.append(
            f"manifest valid, but its signer ({signer}) chains to no given trust anchor{hint}"
        )
    elif verdict.manifest == TAMPERED:
        verdict.reasons.append(
            f"manifest tampered: content or manifest changed after signing (c2pa: {state})"
        )
    else:
        verdict.reasons.append(
            f"manifest invalid: it vouches for nothing, though no edit is shown (c2pa: {state})"
        )
    untrusted: list[str] = []
    for finding in findings:
        if finding.finding == CERT_UNTRUSTED:
            if finding.ingredient is not None and finding.ingredient not in untrusted:
                untrusted.append(finding.ingredient)
            continue  # the active signer's is said above, in the verdict's own line
        verdict.reasons.append(finding.text())
    if untrusted:
        verdict.reasons.append(
            f"ingredient signers that chain to no given trust anchor: {', '.join(untrusted)} "
            "[signingCredential.untrusted]"
        )
    return verdict.summary.soft_binding_hex if verdict.summary else None


def stored_manifest_fallback(verdict: Verdict) -> ManifestSummary | None:
    """The summary of the manifest the store kept for this file, when the file's own is
    gone (re-encoded, stripped) and the watermark or hash led to a store record; None
    when the file has its own manifest summary, or there is no record to fall back on.
    Callers show it marked as coming from the store, never as the file's manifest."""
    record = verdict.store_record
    if verdict.summary is not None or record is None:
        return None
    store = record.manifest_dict()
    manifests = store.get("manifests") if isinstance(store.get("manifests"), dict) else {}
    active = manifests.get(store.get("active_manifest") or "")
    return summarize(active) if isinstance(active, dict) else None


def _watermark(verdict: Verdict, path: Path, max_frames: int) -> None:
    from likeness.provenance.keys import keys_exist, watermark_key

    if not keys_exist():
        verdict.reasons.append(
            "watermark not checked: no local keys (`likeness keys init`); only the key "
            "that marked a file can find its watermark"
        )
        return
    try:
        from likeness.provenance.watermark import detect_file
    except ImportError:
        verdict.reasons.append("watermark not checked: the watermark module is not installed")
        return
    key = watermark_key()
    try:
        result = detect_file(path, key=key.secret, key_id=key.key_id, max_frames=max_frames)
    except MediaError as err:
        if verdict.manifest == NO_MANIFEST:
            raise  # nothing else speaks for this file: it is simply unreadable
        verdict.reasons.append(f"watermark not checked: {err}")
        return
    verdict.watermark = result
    if result.found:
        payload = payload_to_hex(result.payload)
        p_false = getattr(result, "p_false", None)
        odds = f", false-positive probability {p_false:.1e}" if p_false is not None else ""
        verdict.reasons.append(f"watermark found: payload {payload}{odds}")
    else:
        verdict.reasons.append("no likeness watermark found with the local key")


def verify_file(path: Path, trust: Sequence[Path] = (), *, max_frames: int = 120) -> Verdict:
    """One verdict for one file; bad input raises (InputError / MediaError)."""
    path = _check_file(Path(path))
    trust_pems = load_trust(trust)
    verdict = Verdict(path=path, manifest=NO_MANIFEST)
    bound_hex = _manifest_verdict(verdict, path, trust_pems)
    if verdict.manifest == NO_MANIFEST:
        # Nothing else speaks for this file, so it must at least be media we can open:
        # a text file or a broken video is bad input, not an unverified file.
        from likeness.media import probe

        probe(path)
    _watermark(verdict, path, max_frames)
    verdict.sha256 = sha256_file(path)

    store = Store()
    found_hex = payload_to_hex(verdict.watermark.payload) if verdict.watermark_found else None
    if bound_hex and found_hex and bound_hex != found_hex:
        verdict.reasons.append(
            f"the manifest names watermark {bound_hex} but the pixels carry {found_hex}"
        )
    try:
        record = store.lookup_payload(found_hex) if found_hex else None
        if record is not None:
            verdict.store_record, verdict.store_match = record, "payload"
            verdict.reasons.append(
                f"store record #{record.id} for this watermark: {record.file_name}, "
                f"signed {record.created_utc}"
            )
        else:
            record = store.lookup_sha256(verdict.sha256)
            if record is not None:
                verdict.store_record, verdict.store_match = record, "sha256"
                verdict.reasons.append(f"store record #{record.id} has this exact file")
            elif found_hex:
                verdict.reasons.append("the watermark's payload is not in the local store")
    except LikenessError as err:
        verdict.reasons.append(f"store not checked: {err}")
    return verdict
