"""Security: keys stay private, file-controlled text stays inert, outputs never go
through links, limits hold, and nothing untrusted or altered reads as trusted.

Commands run in this process through `likeness.cli.main` (what the console script
calls), except where a child process is the point (umask, passphrase from the
environment)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests import samples
from tests.reliability.conftest import (
    child_env,
    likeness_argv,
    make_home,
    make_keyed_home,
    run_likeness,
)

PASSPHRASE = "correct horse battery staple 7"
NASTY = "\x1b[2J[red]x[/red]<script>alert(1)</script>"
# The same for file names, which cannot hold "/".
NASTY_NAME = "\x1b[2J[bold red]x<script>alert(1)<!--"


def cli(capsys, *args: object) -> tuple[int, str, str]:
    from likeness.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home with keys (no passphrase), set for in-process commands."""
    from likeness.provenance import keys as keys_mod

    path = make_home(tmp_path / "home")
    monkeypatch.setenv("LIKENESS_HOME", str(path))
    monkeypatch.delenv(keys_mod.PASSPHRASE_ENV, raising=False)
    keys_mod.init_keys(passphrase="")
    return path


@pytest.fixture
def root_pem(home: Path, tmp_path: Path) -> Path:
    from likeness.provenance import keys as keys_mod

    return keys_mod.export_trust(tmp_path / "root.pem")


@pytest.fixture
def clip(tmp_path: Path, astronaut: np.ndarray) -> Path:
    return samples.face_video(tmp_path / "clip.mp4", astronaut, frames=8, size=256)


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------- keys


def test_keys_are_owner_only_even_under_a_permissive_umask(tmp_path: Path):
    home = make_home(tmp_path / "home")
    proc = subprocess.run(
        likeness_argv("keys", "init", "--no-passphrase"),
        env=child_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0),
    )
    assert proc.returncode == 0, proc.stderr
    folder = home / "keys"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("signer.key.pem", "watermark.secret"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    again = run_likeness(home, "keys", "init", "--no-passphrase")
    assert again.code != 0 and "--force" in again.err and "Traceback" not in again.err


def secrets_of(home: Path, passphrase: str | None) -> list[str]:
    """Every form in which the private material could leak: the key file's PEM lines, the
    private scalar and its DER, the watermark secret and the key derived from it, and
    the passphrase."""
    from cryptography.hazmat.primitives import serialization

    keys = home / "keys"
    pem = (keys / "signer.key.pem").read_bytes()
    needles = [line for line in pem.decode().splitlines() if len(line) >= 32]
    key = serialization.load_pem_private_key(pem, (passphrase or "").encode() or None)
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    secret = (keys / "watermark.secret").read_bytes()
    from likeness.provenance.keys import watermark_key  # of LIKENESS_HOME, set by the caller

    derived = watermark_key().secret
    for raw in (der, scalar, secret, derived):
        needles += [raw.hex(), base64.b64encode(raw).decode()[:40]]
    needles.append(scalar.hex()[:24])
    if passphrase:
        needles.append(passphrase)
    return needles


def test_private_keys_never_appear_in_output_files_or_errors(
    tmp_path: Path, tiny_weights: Path, portrait: Path, monkeypatch
):
    """A session with a passphrase-protected key: init, show, doctor, animate, sign,
    verify, scan (JSONL + HTML), then failures (wrong passphrase, damaged key) with and
    without --debug. No key material in any stdout, stderr or file written."""
    home = make_home(tmp_path / "home")
    out = tmp_path / "out"
    out.mkdir()
    env = {**child_env(home), "LIKENESS_KEY_PASSPHRASE": PASSPHRASE}

    def run(*args: object, extra: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            likeness_argv(*args), env={**env, **(extra or {})}, capture_output=True,
            text=True, timeout=240,
        )  # fmt: skip

    runs = [run("keys", "init", "--passphrase")]
    assert runs[0].returncode == 0, runs[0].stderr
    monkeypatch.setenv("LIKENESS_HOME", str(home))
    needles = secrets_of(home, PASSPHRASE)
    video = out / "made.mp4"
    runs += [
        run("keys", "show"),
        run("keys", "show", "--json"),
        run("keys", "export-trust", "-o", out / "root.pem"),
        run("doctor"),
        run("animate", portrait, "--motion", "blink", "--fps", 5, "--crop-only",
            "--weights", tiny_weights, "-o", video),
        run("sign", portrait, "-o", out / "signed.png", "--ingredient", portrait),
        run("verify", video, "--json", "--trust", out / "root.pem"),
        run("verify", video, out / "signed.png"),
        run("scan", video, out / "signed.png", "--json", out / "scan.jsonl",
            "--html", out / "scan.html"),
        run("sign", portrait, "-o", out / "wrong.png", extra={"LIKENESS_KEY_PASSPHRASE": "nope"}),
        run("--debug", "sign", portrait, "-o", out / "wrong.png",
            extra={"LIKENESS_KEY_PASSPHRASE": "nope"}),
    ]  # fmt: skip
    # verify exits 1 on the second pass: signed.png has no trust anchor given and no mark.
    codes = [r.returncode for r in runs]
    assert codes[:9] == [0] * 8 + [1] and codes[9] in (0, 3), [r.stderr for r in runs]
    assert codes[10] == 2 and "passphrase" in runs[10].stderr.lower()
    assert not (out / "wrong.png").exists()
    # A damaged key file: the error names the file, never its bytes.
    key_file = home / "keys" / "signer.key.pem"
    good = key_file.read_bytes()
    key_file.write_bytes(good[:200])
    runs.append(run("sign", portrait, "-o", out / "damaged.png"))
    key_file.write_bytes(good)
    assert runs[-1].returncode != 0 and "Traceback" not in runs[-1].stderr

    texts = {f"run {i} stdout": r.stdout for i, r in enumerate(runs)}
    texts |= {f"run {i} stderr": r.stderr for i, r in enumerate(runs)}
    files = [p for p in out.rglob("*") if p.is_file()]
    files += [p for p in home.rglob("*") if p.is_file() and "keys" not in p.parts]
    assert {p.name for p in files} >= {"made.mp4", "signed.png", "scan.jsonl", "scan.html"}
    for path in files:
        texts[str(path)] = path.read_bytes().decode("latin-1")
    leaks = [(where, n[:12]) for where, text in texts.items() for n in needles if n in text]
    assert leaks == []


# ---------------------------------------------------------------- output paths


SUFFIX = {"export-trust": ".pem", "sign": ".png", "scan-json": ".jsonl", "scan-html": ".html",
          "faces": ".png"}  # fmt: skip


@pytest.mark.parametrize("command", sorted(SUFFIX))
def test_symlinked_output_targets_are_refused(command, capsys, home, tmp_path, portrait):
    """An output path that is a symbolic link is refused, dangling or not: writing through
    it would let whoever planted it in a shared folder choose what gets overwritten, and
    replacing it would silently break the user's link. Nothing is written anywhere."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / f"link{SUFFIX[command]}"
    link.symlink_to(victim)
    dangling = tmp_path / f"dangling{SUFFIX[command]}"
    dangling.symlink_to(tmp_path / "nowhere" / "x")
    for target in (link, dangling):
        args = {
            "export-trust": ["keys", "export-trust", "-o", target],
            "sign": ["sign", portrait, "-o", target],
            "scan-json": ["scan", portrait, "--json", target, "--no-provenance"],
            "scan-html": ["scan", portrait, "--html", target, "--no-provenance"],
            "faces": ["faces", portrait, "-o", target],
        }[command]
        code, _, err = cli(capsys, *args)
        assert code == 2, err
        assert "symbolic link" in one_error_line(err)
        assert target.is_symlink()
    assert victim.read_text() == "precious"
    assert not (tmp_path / "nowhere").exists()


ODD_NAMES = [
    "line\nbreak.png",
    "ünïcødé 名前 😀.png",
    "-starts-with-dash.png",
    "x" * 240 + ".png",
    "tab\tand [bold]markup.png",
]


@pytest.mark.parametrize("name", ODD_NAMES, ids=["newline", "unicode", "dash", "long", "markup"])
def test_odd_output_and_ingredient_names(name, capsys, home, root_pem, tmp_path, portrait):
    """Odd names work as outputs, and as ingredients their titles in the manifest are a
    bare, printable file name of bounded length (no folders, no control characters)."""
    from likeness.provenance.verify import verify_file

    odd_input = tmp_path / ("in-" + name)
    odd_input.write_bytes(portrait.read_bytes())
    target = tmp_path / "out" / name
    target.parent.mkdir()
    code, out, err = cli(capsys, "sign", portrait, "-o", target, "--ingredient", odd_input)
    assert code == 0, err
    assert "\x1b" not in out + err and "\t" not in out + err
    verdict = verify_file(target, [root_pem])
    assert verdict.manifest == "trusted"
    (title,) = verdict.summary.ingredients
    assert title.isprintable() and "/" not in title and len(title) <= 200
    assert title.startswith("in-")


def test_ingredient_path_components_never_reach_the_manifest(
    capsys, home, root_pem, tmp_path, monkeypatch
):
    """`../` and absolute paths in what the user passes are paths, not titles: only the
    file's own name is recorded (a manifest must not leak the signer's folders)."""
    from likeness.provenance.verify import verify_file

    deep = tmp_path / "private" / "case-4711"
    deep.mkdir(parents=True)
    photo = deep / "face.png"
    photo.write_bytes(samples.png_bytes(np.full((64, 64, 3), 120, np.uint8)))
    source = tmp_path / "source.png"
    source.write_bytes(samples.png_bytes(np.full((256, 256, 3), 90, np.uint8)))
    monkeypatch.chdir(tmp_path / "private")
    code, _, err = cli(
        capsys, "sign", source, "-o", tmp_path / "s.png",
        "--ingredient", "../private/case-4711/face.png", "--ingredient", photo,
    )  # fmt: skip
    assert code == 0, err
    verdict = verify_file(tmp_path / "s.png", [root_pem])
    assert verdict.summary.ingredients == ["face.png", "face.png"]
    raw = json.dumps(verdict.to_dict()["manifest_summary"])
    assert "case-4711" not in raw and "private" not in raw


# ---------------------------------------------------------------- file-controlled text


def evil_manifest_file(home: Path, tmp_path: Path) -> Path:
    """A PNG signed with our keys whose manifest title and ingredient title carry markup,
    an ANSI escape and a newline, as a hostile signer could write them."""
    from likeness.provenance import c2pa_io
    from likeness.provenance.keys import load_signing
    from likeness.provenance.manifest import build_manifest

    src = tmp_path / "plain.png"
    src.write_bytes(samples.png_bytes(np.full((200, 200, 3), 100, np.uint8)))
    manifest = build_manifest(
        title="t", actions=["c2pa.created"], digital_source_type="trainedAlgorithmicMedia",
        model_name=NASTY + "\nsecond line", model_hash=None, soft_binding=None,
    )  # fmt: skip
    manifest["title"] = NASTY + "\nsecond line"
    ingredient = c2pa_io.IngredientSource({"title": NASTY}, src, c2pa_io.PNG)
    out = tmp_path / "evil-manifest.png"
    c2pa_io.sign_stream(src, out, mime=c2pa_io.PNG, manifest=manifest, keys=load_signing(),
                        ingredients=[ingredient], tsa_url=None)  # fmt: skip
    return out


def test_file_controlled_text_is_inert_on_the_terminal_and_in_html(capsys, home, tmp_path, clip):
    """A file name and manifest fields with an ANSI escape, rich markup, a newline and a
    script tag: the terminal gets no escape byte and shows the markup literally, every
    error is one line, and the HTML report carries the script only escaped."""
    folder = tmp_path / "in"
    folder.mkdir()
    named = folder / (NASTY_NAME + ".mp4")
    named.write_bytes(clip.read_bytes())
    broken = folder / (NASTY_NAME + "\nbroken.mp4")
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(300))
    evil = evil_manifest_file(home, tmp_path)
    (folder / evil.name).write_bytes(evil.read_bytes())

    html = tmp_path / "report.html"
    code, out, err = cli(capsys, "scan", folder, "--html", html, "--json", tmp_path / "r.jsonl")
    assert code in (0, 3), err
    _, out_v, err_v = cli(capsys, "verify", folder / evil.name, named)
    code_e, out_e, err_e = cli(capsys, "verify", broken)
    assert code_e == 2 and "Traceback" not in err_e
    one_error_line(err_e)
    terminal = out + err + out_v + err_v + out_e + err_e
    assert "\x1b" not in terminal
    assert "[bold red]x" in terminal  # shown, not interpreted as markup
    page = html.read_text(encoding="utf-8")
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "\x1b" not in page
    lines = (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)


# ---------------------------------------------------------------- limits


def test_size_and_frame_limits_give_one_clear_line(capsys, home, tmp_path, clip):
    from likeness.errors import MediaError
    from likeness.media import MediaLimits, iter_frames

    sparse = tmp_path / "huge.mp4"
    with open(sparse, "wb") as fh:
        fh.write(clip.read_bytes())
        fh.truncate(9 * 2**30)  # sparse: 9 GiB claimed, nothing stored
    code, _, err = cli(capsys, "verify", sparse)
    assert code == 2 and "limit" in one_error_line(err)
    wide = samples.huge_png_header(tmp_path / "wide.png")
    code, out, err = cli(capsys, "scan", wide, "--no-provenance")
    assert code == 2 and "limit" in out and "Traceback" not in out + err
    with pytest.raises(MediaError, match="limit"):
        list(iter_frames(clip, limits=MediaLimits(max_frames=5)))


# ---------------------------------------------------------------- trust


def test_altered_or_foreign_files_never_verify(capsys, home, root_pem, tmp_path, clip):
    """A signed video with one byte changed in its pictures is `tampered` and not
    verified, even though its watermark still reads and the store knows its payload; a
    file signed by another installation (whose root has the very same name as ours) is
    not trusted with our root."""
    from likeness.provenance.mark import mark_and_sign
    from likeness.provenance.verify import verify_file

    signed = mark_and_sign(clip, tmp_path / "signed.mp4", ingredients=[clip])
    data = bytearray(signed.target.read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 4000] ^= 0x01
    altered = tmp_path / "altered.mp4"
    altered.write_bytes(bytes(data))
    verdict = verify_file(altered, [root_pem])
    assert verdict.manifest == "tampered"
    assert not verdict.verified, verdict.reasons
    code, _, _ = cli(capsys, "verify", altered, "--trust", root_pem)
    assert code == 1

    other = make_keyed_home(tmp_path / "other-home")
    foreign = tmp_path / "foreign.png"
    plain = tmp_path / "p.png"
    plain.write_bytes(samples.png_bytes(np.full((200, 200, 3), 70, np.uint8)))
    made = run_likeness(other, "sign", plain, "-o", foreign)
    assert made.code == 0, made.err
    verdict = verify_file(foreign, [root_pem])
    assert verdict.manifest == "valid-untrusted" and not verdict.verified
    code, _, _ = cli(capsys, "verify", foreign, "--trust", root_pem)
    assert code == 1
