"""likeness `verify` against the C2PA organisation's public test files.

Every file in ../shared/c2pa-testfiles/image/jpeg gets an expected verdict and the
findings that must be named (written from the file naming table in that folder's
README and the c2patool reports beside the files; where the newer c2pa-rs inside
c2pa-python disagrees with those reports, the newer one is the reference). The whole
module skips, with the reason, when the folder is absent.

Also checked on every file: the verdict is never more favourable than c2pa-rs's own
`validation_state`, every status code c2pa-rs reports is in `--json`, and every failure
code of the reference report is reported (bar the few that newer c2pa-rs dropped).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from likeness.provenance import c2pa_io
from likeness.provenance import verify as vf

TESTFILES = Path(
    os.environ.get(
        "LIKENESS_C2PA_TESTFILES", Path(__file__).resolve().parents[2] / "shared/c2pa-testfiles"
    )
)
JPEGS = TESTFILES / "image" / "jpeg"

pytestmark = pytest.mark.skipif(
    not JPEGS.is_dir(),
    reason=f"C2PA public test files not found at {JPEGS} (set LIKENESS_C2PA_TESTFILES)",
)

ACTIVE, INGREDIENT, RECORDED = "active", "ingredient", "recorded"
UNTRUSTED = (vf.CERT_UNTRUSTED, ACTIVE)

# name -> (verdict, findings that must be there as (finding, where)); where is the
# active manifest, an ingredient as c2pa-rs finds it now, or what the signer recorded
# about an ingredient when it signed.
VALID_CHAINS = (
    "C", "CA", "CACA", "CACAICAICICA", "CAI", "CAIAIIICAICIICAIICICA", "CAICA", "CAICAI",
    "CI", "CICA", "CICACACA", "CII",
)  # fmt: skip
EXPECTED: dict[str, tuple[str, set[tuple[str, str]]]] = {
    "adobe-20220124-A.jpg": (vf.NO_MANIFEST, set()),
    "adobe-20220124-I.jpg": (vf.NO_MANIFEST, set()),
    **{f"adobe-20220124-{code}.jpg": (vf.VALID_UNTRUSTED, {UNTRUSTED}) for code in VALID_CHAINS},
    # A valid manifest whose ingredient's signature was already broken when it was added.
    "adobe-20220124-CIE-sig-CA.jpg": (
        vf.VALID_UNTRUSTED,
        {UNTRUSTED, (vf.SIGNATURE_BROKEN, RECORDED)},
    ),
    "adobe-20220124-E-clm-CAICAI.jpg": (
        vf.TAMPERED,
        {(vf.MANIFEST_MISSING, ACTIVE), (vf.ASSERTION_EDITED, ACTIVE)},
    ),
    "adobe-20220124-E-dat-CA.jpg": (vf.TAMPERED, {(vf.CONTENT_CHANGED, ACTIVE)}),
    "adobe-20220124-E-sig-CA.jpg": (vf.INVALID, {(vf.SIGNATURE_BROKEN, ACTIVE)}),
    "adobe-20220124-E-uri-CA.jpg": (vf.TAMPERED, {(vf.ASSERTION_EDITED, ACTIVE)}),
    # c2pa-rs finds the edited c2pa.actions in the (signature-broken) ingredient manifest.
    "adobe-20220124-E-uri-CIE-sig-CA.jpg": (
        vf.TAMPERED,
        {(vf.ASSERTION_EDITED, INGREDIENT), (vf.SIGNATURE_BROKEN, RECORDED)},
    ),
    "adobe-20220124-XCA.jpg": (vf.TAMPERED, {(vf.CONTENT_CHANGED, ACTIVE)}),
    "adobe-20220124-XCI.jpg": (vf.TAMPERED, {(vf.CONTENT_CHANGED, ACTIVE)}),
    "nikon-20221019-building.jpeg": (vf.INVALID, {(vf.CERT_EXPIRED, ACTIVE), UNTRUSTED}),
    # Newer c2pa-rs rejects these camera files' data-hash exclusions (the hash cannot be
    # checked; nothing shows the pixels changed): invalid, not tampered.
    **{
        f"truepic-20230212-{name}.jpg": (vf.INVALID, {(vf.BINDING_BROKEN, ACTIVE)})
        for name in ("camera", "landscape", "library")
    },
}

# Failure codes in the old c2patool reports that the c2pa-rs inside c2pa-python no
# longer reports (it is the reference where they disagree).
DROPPED_BY_NEWER_C2PA_RS = {
    "nikon-20221019-building.jpeg": {"claimSignature.mismatch"},  # now: expired only
    "adobe-20220124-E-clm-CAICAI.jpg": {"claim.missing"},  # now: ingredient.manifest.missing
}

# Favourability, best first: nothing likeness says may rank above c2pa-rs's state.
RANK = {vf.TRUSTED: 0, vf.VALID_UNTRUSTED: 1, vf.INVALID: 2, vf.TAMPERED: 2, vf.NO_MANIFEST: 3}
STATE_BEST = {"Trusted": 0, "Valid": 1, "Invalid": 2}


def _where(finding: vf.Finding) -> str:
    if finding.ingredient is None:
        return ACTIVE
    return RECORDED if finding.recorded else INGREDIENT


def _all_files() -> list[str]:
    if not JPEGS.is_dir():
        return []
    return sorted(p.name for p in JPEGS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))


def _reader_json(path: Path) -> dict | None:
    """c2pa-rs's own report on the file, read here without likeness in between."""
    import c2pa

    context = c2pa.Context.from_dict(
        {"verify": {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False}}
    )
    try:
        with open(path, "rb") as fh, c2pa.Reader("image/jpeg", fh, context=context) as reader:
            return json.loads(reader.json())
    except c2pa.C2paError.ManifestNotFound:
        return None
    finally:
        context.close()


def _every_code(store: dict) -> set[str]:
    results = store.get("validation_results") or {}
    codes = set()
    for kind in ("success", "informational", "failure"):
        codes |= {s["code"] for s in (results.get("activeManifest") or {}).get(kind) or []}
        for delta in results.get("ingredientDeltas") or []:
            codes |= {s["code"] for s in (delta.get("validationDeltas") or {}).get(kind) or []}
    return codes


def test_every_test_file_has_an_expectation():
    """A file added to the folder without an expected verdict fails here, by name."""
    assert set(_all_files()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_public_test_file_verdict_and_findings(name, home):
    expected_verdict, expected_findings = EXPECTED[name]
    verdict = vf.verify_file(JPEGS / name)
    got = {(f.finding, _where(f)) for f in verdict.findings}
    assert verdict.manifest == expected_verdict, verdict.reasons
    assert expected_findings <= got, (got, verdict.reasons)
    assert not verdict.verified
    if expected_verdict == vf.VALID_UNTRUSTED:
        # Nothing but an untrusted signer fails now in a valid chain.
        current = [f for f in verdict.findings if f.severity == "failure" and not f.recorded]
        assert {f.finding for f in current} == {vf.CERT_UNTRUSTED}, verdict.reasons
    if expected_verdict == vf.INVALID:
        assert not {f.finding for f in verdict.findings} & vf.TAMPER_FINDINGS
    # Every finding is said to a person too, with its code.
    for finding in verdict.findings:
        if finding.finding != vf.CERT_UNTRUSTED:
            assert any(finding.code in r for r in verdict.reasons), (finding, verdict.reasons)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_never_more_favourable_than_c2pa_rs(name, home):
    store = _reader_json(JPEGS / name)
    verdict = vf.verify_file(JPEGS / name)
    if store is None:
        assert verdict.manifest == vf.NO_MANIFEST
        return
    state = store["validation_state"]
    assert verdict.validation_state == state
    assert RANK[verdict.manifest] >= STATE_BEST[state], (state, verdict.manifest)


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if EXPECTED[n][0] != vf.NO_MANIFEST))
def test_json_carries_every_status_code_and_the_reference_failures(name, home):
    from likeness.cli import app

    path = JPEGS / name
    result = CliRunner().invoke(app, ["verify", "--json", str(path)])
    assert result.exit_code == 1, result.output  # none of these verifies
    data = json.loads(result.output.strip().splitlines()[-1])
    blob = json.dumps(data["status_codes"])
    store = _reader_json(path)
    for code in _every_code(store):
        assert f'"{code}"' in blob, code
    reported = {f["code"] for f in data["findings"]}
    reference = JPEGS / name.replace(".jpeg", ".c2patool.json").replace(".jpg", ".c2patool.json")
    if reference.is_file():
        old = json.loads(reference.read_text())
        codes = {s["code"] for s in old.get("validation_status") or []}
        failures = {c for c in codes if c2pa_io.status_kind(c) == "failure"}
        missing = failures - reported - DROPPED_BY_NEWER_C2PA_RS.get(name, set())
        assert not missing, (missing, reported)


# ---------------------------------------------------------------- the mapping (pure)


def _store(state, active_failures=(), deltas=(), recorded=()):
    """A Reader-JSON-shaped store: one active manifest with one ingredient."""
    status = [{"code": c, "url": "u", "explanation": ""} for c in active_failures]
    ingredient = {"title": "in.jpg", "label": "c2pa.ingredient", "relationship": "parentOf"}
    if recorded:
        ingredient["validation_status"] = [{"code": c} for c in recorded]
    uri = "self#jumbf=/c2pa/urn:a/c2pa.assertions/c2pa.ingredient"
    store = {
        "active_manifest": "urn:a",
        "manifests": {"urn:a": {"title": "a.jpg", "ingredients": [ingredient]}},
        "validation_results": {
            "activeManifest": {"success": [], "informational": [], "failure": status},
            "ingredientDeltas": [
                {
                    "ingredientAssertionURI": uri,
                    "validationDeltas": {
                        "success": [],
                        "informational": [],
                        "failure": [{"code": c} for c in deltas],
                    },
                }
            ],
        },
    }
    if state is not None:
        store["validation_state"] = state
    return store


def _verdict(store):
    result = c2pa_io.parse_store(store)
    return vf.manifest_verdict(result, vf.manifest_findings(result)), result


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        (_store("Trusted"), vf.TRUSTED),
        (_store("Valid", ["signingCredential.untrusted"]), vf.VALID_UNTRUSTED),
        # A state that says more than its own failures allow is not believed.
        (_store("Trusted", ["signingCredential.untrusted"]), vf.VALID_UNTRUSTED),
        (_store("Valid", ["claimSignature.mismatch"]), vf.INVALID),
        (_store("Invalid"), vf.INVALID),
        (_store("Invalid", ["signingCredential.untrusted"]), vf.INVALID),
        (_store("Invalid", deltas=["assertion.hashedURI.mismatch"]), vf.TAMPERED),
        (_store("Invalid", ["assertion.bmffHash.mismatch"]), vf.TAMPERED),
        (_store("Invalid", ["signingCredential.ocsp.revoked"]), vf.INVALID),
        (_store("Valid", deltas=["ingredient.hashedURI.mismatch"]), vf.TAMPERED),
        (_store("Valid", recorded=["claimSignature.mismatch"]), vf.VALID_UNTRUSTED),
        (_store(None, ["signingCredential.untrusted"]), vf.VALID_UNTRUSTED),
        (_store(None, ["assertion.dataHash.mismatch"]), vf.TAMPERED),
        (_store("Weird"), vf.INVALID),
    ],
)
def test_verdict_from_validation_results(store, expected):
    verdict, _ = _verdict(store)
    assert verdict == expected
    state = store.get("validation_state")
    if state in STATE_BEST:
        assert RANK[verdict] >= STATE_BEST[state]


def test_ingredient_findings_name_the_ingredient_and_when():
    _, result = _verdict(
        _store(
            "Invalid",
            deltas=["assertion.hashedURI.mismatch"],
            recorded=["claimSignature.mismatch", "timeStamp.mismatch"],
        )
    )
    findings = vf.manifest_findings(result)
    by_code = {f.code: f for f in findings}
    assert by_code["assertion.hashedURI.mismatch"].ingredient == "in.jpg"
    assert not by_code["assertion.hashedURI.mismatch"].recorded
    assert by_code["claimSignature.mismatch"].recorded
    assert "timeStamp.mismatch" not in by_code  # recorded informational codes are not findings
    assert "in.jpg" in by_code["claimSignature.mismatch"].text()


@pytest.mark.parametrize(
    ("code", "explanation", "finding"),
    [
        ("assertion.dataHash.mismatch", "Hashes do not match", "content-changed"),
        ("assertion.dataHash.mismatch", "exclusion does not match", "binding-unverifiable"),
        ("assertion.bmffHash.mismatch", "", "content-changed"),
        ("assertion.hashedURI.mismatch", "", "assertion-edited"),
        ("claimSignature.mismatch", "", "signature-broken"),
        ("signingCredential.expired", "", "certificate-expired"),
        ("signingCredential.untrusted", "", "certificate-untrusted"),
        ("signingCredential.ocsp.revoked", "", "certificate-revoked"),
        ("ingredient.manifest.missing", "", "ingredient-manifest-missing"),
        ("claim.cbor.invalid", "", "manifest-malformed"),
        ("assertion.action.ingredientMismatch", "", "manifest-malformed"),
        ("timeStamp.mismatch", "", "timestamp-problem"),
        ("com.example.something", "", "validation-failed"),
    ],
)  # fmt: skip
def test_finding_names(code, explanation, finding):
    assert vf.finding_kind(code, explanation) == finding
