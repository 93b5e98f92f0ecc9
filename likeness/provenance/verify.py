"""`verify_file`: where did this file come from, and can that answer be trusted?

Three independent witnesses, each with its reasons:

- the C2PA manifest (read with c2pa, validated against the trust anchors passed in):
  `trusted` (valid, and the signer chains to a given anchor), `valid-untrusted` (valid,
  but no given anchor vouches for the signer), `tampered` (a manifest is there but its
  hashes or signature fail), `no-manifest`;
- the watermark, detected with the local watermark key (only files marked with this
  installation's key can be found: the key is secret);
- the local store, looked up by the watermark payload, else by the file's sha256.

Trust anchors are only what the caller passes (`--trust ROOT.pem`); the local root is
not added behind the caller's back, so that "trusted" always means "chains to an
anchor you chose" and the same file reads `valid-untrusted` without one.

`verified` is true when the manifest is trusted, or when the watermark was found AND
the store holds the record it points to (a file whose manifest was stripped by
re-encoding still traces back to the manifest it was signed with), but never when a
manifest is there and fails (the content changed after signing).
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
TAMPERED = "tampered"
NO_MANIFEST = "no-manifest"

# c2pa reports these for a valid signature by a signer outside the trust anchors.
_UNTRUSTED_CODES = {"signingCredential.untrusted"}


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

    @property
    def watermark_found(self) -> bool:
        return bool(self.watermark is not None and getattr(self.watermark, "found", False))

    @property
    def verified(self) -> bool:
        if self.manifest == TRUSTED:
            return True
        # A tampered manifest means the content changed after signing: a watermark that
        # survived the edit must not vouch for the edited file.
        if self.manifest == TAMPERED:
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
            "reasons": list(self.reasons),
            "manifest_summary": self.summary.to_dict() if self.summary else None,
            "watermark": watermark,
            "store_match": self.store_match,
            "store_record": self.store_record.to_dict() if self.store_record else None,
            "sha256": self.sha256,
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
    signer = verdict.summary.signer if verdict.summary else None
    if result.state == "Trusted":
        verdict.manifest = TRUSTED
        verdict.reasons.append(
            f"manifest valid and its signer ({signer or 'unknown'}) chains to a given trust anchor"
        )
    elif result.state == "Valid" or (
        result.failures and {s.code for s in result.failures} <= _UNTRUSTED_CODES
    ):
        verdict.manifest = VALID_UNTRUSTED
        hint = "" if trust_pems else "; pass the signer's root with --trust"
        verdict.reasons.append(
            f"manifest valid, but its signer ({signer or 'unknown'}) chains to no given "
            f"trust anchor{hint}"
        )
    else:
        verdict.manifest = TAMPERED
        failures = [s for s in result.failures if s.code not in _UNTRUSTED_CODES]
        for status in failures[:5] or result.failures[:5]:
            verdict.reasons.append(f"manifest check failed: {status.code}: {status.explanation}")
        if not result.failures:
            verdict.reasons.append(f"manifest validation state is {result.state}")
    return verdict.summary.soft_binding_hex if verdict.summary else None


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
        result = detect_file(path, key=key.secret, max_frames=max_frames)
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
