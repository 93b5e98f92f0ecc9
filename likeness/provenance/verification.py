"""`Verification`: what `verify` answers about one file, typed (the `verify --json` line).

`verify.py` works with rich objects (the c2pa read result, the watermark detector's
result, the store's `Record`); this module is their JSON view as dataclasses, the shape
the CLI, the web app and `likeness.verify()` all give, and from which the shipped JSON
Schema is generated (`likeness/schemas/verification.schema.json`). It imports nothing
beyond the standard library, so a scan record can name its types without loading c2pa.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ManifestState = Literal["trusted", "valid-untrusted", "invalid", "tampered", "no-manifest"]


@dataclass(frozen=True)
class FindingInfo:
    """One thing c2pa reported about the active manifest or an ingredient: `finding` is
    likeness's name for it (e.g. `certificate-expired`), `code` c2pa's status code."""

    finding: str
    code: str
    severity: Literal["failure", "informational"]
    where: Literal["active_manifest", "ingredient"]
    ingredient: str | None
    recorded_at_signing: bool  # recorded by the signer when it signed, not found now
    url: str
    explanation: str

    @classmethod
    def from_dict(cls, data: dict) -> FindingInfo:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


@dataclass
class Verification:
    """Where a file came from and whether that answer can be trusted: the manifest's
    state, c2pa's findings by name, the watermark, the local store record, and
    `verified` (a trusted manifest, or a watermark whose payload the store holds)."""

    path: str
    verified: bool
    manifest: ManifestState
    validation_state: str | None  # c2pa-rs's own word: Trusted | Valid | Invalid
    findings: list[FindingInfo]
    reasons: list[str]
    manifest_summary: dict | None  # title, generator, signer, signed_at, actions, ...
    watermark: dict | None  # None: not checked; else {"found", "payload", "p_false", ...}
    store_match: Literal["payload", "sha256"] | None
    store_record: dict | None  # id, content_id, payload, key_id, sha256, file_name, ...
    sha256: str
    status_codes: dict | None  # every status code c2pa reported, as c2pa put it
    extra: dict[str, Any] = field(default_factory=dict)  # keys beyond the schema

    @property
    def signer(self) -> str | None:
        return (self.manifest_summary or {}).get("signer")

    @property
    def watermark_found(self) -> bool:
        return bool((self.watermark or {}).get("found"))

    @property
    def payload_hex(self) -> str | None:
        payload = (self.watermark or {}).get("payload")
        return payload.get("hex") if isinstance(payload, dict) else None

    def to_dict(self) -> dict:
        """The `verify --json` object (keys in this order)."""
        out = {name: getattr(self, name) for name in _KEYS}
        out["findings"] = [_finding_dict(f) for f in self.findings]
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> Verification:
        values = {k: data.get(k) for k in _KEYS}
        values["findings"] = [FindingInfo.from_dict(f) for f in data.get("findings") or []]
        values["reasons"] = list(values["reasons"] or [])
        extra = {k: v for k, v in data.items() if k not in _KEYS}
        return cls(**values, extra=extra)

    @classmethod
    def from_verdict(cls, verdict) -> Verification:
        """From `provenance.verify.verify_file`'s `Verdict` (through its `to_dict`)."""
        return cls.from_dict(verdict.to_dict())


def _finding_dict(finding: FindingInfo) -> dict:
    return {k: getattr(finding, k) for k in FindingInfo.__dataclass_fields__}


_KEYS = tuple(k for k in Verification.__dataclass_fields__ if k != "extra")
