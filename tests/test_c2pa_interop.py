"""likeness's C2PA manifests read by an independent implementation: @trustnxt/c2pa-ts.

c2pa-ts (pure TypeScript, from npm) is installed once into a cache folder
(`.pytest_cache/d/c2pa-ts` when pytest's cache is on, else the session's temp folder;
`LIKENESS_C2PA_TS_DIR` overrides) and run once, by one node process, over every file
this module makes. Skips, with the reason, where node or npm are missing or the
install fails (offline, say).

Must hold: likeness's MP4, JPEG and PNG outputs read valid in c2pa-ts; one flipped
byte in the media data, in an assertion, in the claim and in the signature each read
invalid there, with the status code likeness reports (and likeness's verdict for it).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from likeness.provenance import keys as keys_mod
from likeness.provenance import verify as vf
from tests.test_c2pa_conformance import JPEGS
from tests.test_provenance import texture, write_image

C2PA_TS = "@trustnxt/c2pa-ts@0.9.4"  # pinned: the codes below are what this version says
SCRIPT = Path(__file__).parent / "interop" / "c2pa_ts_read.mjs"
INSTALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 300
SIZE = 256

# Where the byte is flipped -> the code both readers must report, and likeness's verdict.
TAMPERS = {
    "media": ({"assertion.dataHash.mismatch", "assertion.bmffHash.mismatch"}, vf.TAMPERED),
    "assertion": ({"assertion.hashedURI.mismatch"}, vf.TAMPERED),
    "claim": ({"claimSignature.mismatch"}, vf.INVALID),
    "signature": ({"claimSignature.mismatch"}, vf.INVALID),
}
KINDS = ("video.mp4", "still.png", "still.jpg")


# ---------------------------------------------------------------- c2pa-ts


@pytest.fixture(scope="session")
def c2pa_ts(request, tmp_path_factory) -> Path:
    """A folder holding node_modules/@trustnxt/c2pa-ts and the reader script."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run @trustnxt/c2pa-ts")
    override = os.environ.get("LIKENESS_C2PA_TS_DIR")
    cache = getattr(request.config, "cache", None)
    if override:
        folder = Path(override)
    elif cache is not None:
        folder = Path(cache.mkdir("c2pa-ts"))
    else:
        folder = tmp_path_factory.mktemp("c2pa-ts")
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "installed.txt"
    if not (stamp.is_file() and stamp.read_text() == C2PA_TS):
        (folder / "package.json").write_text('{"name": "likeness-c2pa-ts", "private": true}\n')
        try:
            done = subprocess.run(
                [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund",
                 "--ignore-scripts", "--loglevel=error", C2PA_TS],
                capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, cwd=folder,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as err:
            pytest.skip(f"npm install {C2PA_TS} failed: {err}")
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            pytest.skip(f"npm install {C2PA_TS} failed: {tail[0]}")
        stamp.write_text(C2PA_TS)
    shutil.copyfile(SCRIPT, folder / SCRIPT.name)
    return folder


def read_with_c2pa_ts(folder: Path, files: list[Path]) -> dict[str, dict]:
    done = subprocess.run(
        ["node", str(folder / SCRIPT.name), *map(str, files)],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=folder,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results = {}
    for line in done.stdout.splitlines():
        data = json.loads(line)
        results[Path(data["file"]).name] = data
    assert set(results) == {f.name for f in files}, done.stderr[-2000:]
    return results


def ts_failures(result: dict) -> set[str]:
    return {s["code"] for s in result.get("status") or [] if not s["success"]}


# ---------------------------------------------------------------- tampering


def _after(data: bytearray, label: bytes, pattern: bytes) -> int:
    at = data.find(label)
    assert at > 0, f"{label!r} not in the file"
    pos = data.find(pattern, at)
    assert pos > 0, f"{pattern!r} not after {label!r}"
    return pos


def _fix_png_crc(data: bytearray, pos: int) -> None:
    """Recompute the CRC of the PNG chunk holding `pos`, as a real edit would."""
    i = 8
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        if i + 8 <= pos < i + 8 + length:
            data[i + 8 + length : i + 12 + length] = struct.pack(
                ">I", zlib.crc32(bytes(data[i + 4 : i + 8 + length]))
            )
            return
        i += 12 + length


def _media_offset(data: bytearray) -> int:
    if data.startswith(b"\x89PNG"):
        at = data.find(b"IDAT")
        (size,) = struct.unpack(">I", data[at - 4 : at])
        return at + 4 + size // 2
    if data.startswith(b"\xff\xd8"):
        sos = data.rfind(b"\xff\xda")  # entropy-coded data: avoid making or breaking a marker
        pos = sos + (len(data) - sos) // 2
        while 0xFF in (data[pos], data[pos - 1], data[pos] ^ 1):
            pos += 1
        return pos
    at = data.find(b"mdat")
    (size,) = struct.unpack(">I", data[at - 4 : at])
    return at + 4 + (size - 8) // 2


def tamper(src: Path, where: str, dst: Path) -> Path:
    """A copy of `src` with one byte flipped in the media data, an assertion (the
    actions' software agent name), the claim (its generator name) or the signature.
    Patterns are found contiguous in the file, so a JPEG segment boundary is never hit."""
    data = bytearray(src.read_bytes())
    if where == "media":
        pos = _media_offset(data)
    elif where == "assertion":
        pos = _after(data, b"c2pa.actions.v2\x00", b"likeness")
    elif where == "claim":
        pos = _after(data, b"c2pa.claim.v2\x00", b"likeness")
    elif where == "signature":  # COSE_Sign1 ends: nil payload, then 64 signature bytes
        pos = _after(data, b"c2pa.signature\x00", b"\xf6\x58\x40") + 3 + 32
    else:
        raise ValueError(where)
    data[pos] ^= 0x01
    if data.startswith(b"\x89PNG"):
        _fix_png_crc(data, pos)
    dst.write_bytes(bytes(data))
    return dst


# ---------------------------------------------------------------- tests


@pytest.fixture
def outputs(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """likeness outputs (watermarked, signed, with an ingredient) and their root."""
    from likeness.provenance.mark import MarkedVideoWriter, mark_image

    monkeypatch.delenv(keys_mod.PASSPHRASE_ENV, raising=False)
    keys_mod.init_keys(passphrase="")
    root = keys_mod.export_trust(tmp_path / "root.pem")
    photo = write_image(tmp_path / "photo.png", texture(2, SIZE))
    out = tmp_path / "out"
    out.mkdir()
    with MarkedVideoWriter(out / "video.mp4", 25, ingredients=[photo]) as writer:
        for i in range(10):
            writer.write(texture(i, SIZE))
    for name in ("still.png", "still.jpg"):
        mark_image(texture(5, SIZE), out / name, ingredients=[photo])
    return out, root


def test_c2pa_ts_reads_likeness_outputs_and_agrees_on_every_tampered_copy(c2pa_ts, outputs):
    out, root = outputs
    files = [out / kind for kind in KINDS]
    for kind in KINDS:
        for where in TAMPERS:
            files.append(tamper(out / kind, where, out / f"{where}-{kind}"))
    ts = read_with_c2pa_ts(c2pa_ts, files)
    for kind in KINDS:
        result = ts[kind]
        assert result.get("manifest") and "exception" not in result, result
        assert result["valid"] is True, (kind, ts_failures(result))
        assert vf.verify_file(out / kind, [root]).manifest == vf.TRUSTED
    for kind in KINDS:
        for where, (codes, verdict) in TAMPERS.items():
            name = f"{where}-{kind}"
            theirs = ts_failures(ts[name])
            likeness = vf.verify_file(out / name, [root])
            ours = {f.code for f in likeness.findings if f.severity == "failure"}
            assert ts[name]["valid"] is False, (name, ts[name])
            assert likeness.manifest == verdict, (name, likeness.reasons)
            shared = ours & theirs & codes
            assert shared, (name, "likeness:", ours, "c2pa-ts:", theirs)
            assert not likeness.verified


# What c2pa-ts 0.9.4 says about the public test files (active manifest only: it does not
# validate ingredients' manifests, nor trust chains), beside likeness's verdict (which
# follows c2pa-rs). Recorded so that the disagreements are known and stay known.
C2PA_TS_ON_PUBLIC_FILES = {
    "adobe-20220124-CAIAIIICAICIICAIICICA.jpg": {"assertion.action.ingredientMismatch"},
    "adobe-20220124-E-clm-CAICAI.jpg": {
        "assertion.action.ingredientMismatch",
        "assertion.hashedURI.mismatch",
    },
    "adobe-20220124-E-dat-CA.jpg": {"assertion.dataHash.mismatch"},
    "adobe-20220124-E-sig-CA.jpg": {"claimSignature.mismatch", "timeStamp.mismatch"},
    "adobe-20220124-E-uri-CA.jpg": {"assertion.hashedURI.mismatch"},
    "adobe-20220124-XCA.jpg": {"assertion.dataHash.mismatch"},
    "adobe-20220124-XCI.jpg": {"assertion.dataHash.mismatch"},
    "nikon-20221019-building.jpeg": {"signingCredential.expired"},
}  # every other file with a manifest: valid, no failure codes


@pytest.mark.skipif(not JPEGS.is_dir(), reason=f"C2PA public test files not found at {JPEGS}")
def test_c2pa_ts_on_the_public_test_files(c2pa_ts, home):
    files = sorted(p for p in JPEGS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    ts = read_with_c2pa_ts(c2pa_ts, files)
    for path in files:
        result = ts[path.name]
        verdict = vf.verify_file(path)
        if verdict.manifest == vf.NO_MANIFEST:
            assert result["manifest"] is False, result
            continue
        expected = C2PA_TS_ON_PUBLIC_FILES.get(path.name, set())
        assert ts_failures(result) == expected, (path.name, ts_failures(result))
        assert result["valid"] is (not expected)
        # Where c2pa-ts finds content or an assertion changed, likeness says so too.
        changed = expected & {"assertion.dataHash.mismatch", "assertion.hashedURI.mismatch"}
        if changed:
            assert verdict.manifest == vf.TAMPERED, (path.name, verdict.reasons)
            assert changed <= {f.code for f in verdict.findings}
