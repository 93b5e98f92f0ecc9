"""Provenance: keys, manifests, C2PA signing and verification, the store, marking.

Everything runs in a temporary LIKENESS_HOME (the `home` fixture) on small media made
here (128x128, about 20 frames), so the whole file stays fast on 2 CPU cores.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import os
import stat
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from likeness.errors import InputError, LikenessError, OutputError, ProvenanceError, SetupError
from likeness.provenance import keys as keys_mod
from likeness.provenance import manifest as mf
from likeness.provenance.store import Store, payload_to_hex

SIZE = 128
WM_SIZE = 512  # frames whose watermark must survive CRF 28 (measured: 256 and 384 px do not)


# ---------------------------------------------------------------- helpers


def texture(i: int = 0, size: int = SIZE) -> np.ndarray:
    """A smooth moving pattern with some detail: like video, unlike noise."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    r = 128 + 60 * np.sin(x / 9 + i / 4) + 30 * np.cos(y / 13)
    g = 128 + 50 * np.sin((x + y) / 17 - i / 5)
    b = 128 + 40 * np.cos(x / 7 - y / 11 + i / 6)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def make_mp4(path: Path, frames: int = 20, fps: int = 25, crf: int = 18, size: int = SIZE) -> Path:
    """Written with PyAV directly, so these tests do not depend on our writer."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "ultrafast"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(texture(i, size), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def reencode(src: Path, dst: Path, crf: int = 28) -> Path:
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width = inp.streams.video[0].codec_context.width
        stream.height = inp.streams.video[0].codec_context.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in inp.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def write_image(path: Path, rgb: np.ndarray) -> Path:
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def flip_media_byte(path: Path) -> None:
    """Flip one byte in the middle of the MP4's mdat payload."""
    data = bytearray(path.read_bytes())
    at = data.find(b"mdat")
    assert at > 0
    size = int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 + (size - 8) // 2] ^= 0x55
    path.write_bytes(bytes(data))


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and text.strip() == text and text
    return text


def leftovers(folder: Path, known: set[str]) -> set[str]:
    return {p.name for p in folder.iterdir()} - known


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_mp4(tmp_path / "clip.mp4")


def private_needles() -> list[bytes]:
    """Byte strings that would betray a private key or the watermark secret."""
    from cryptography.hazmat.primitives import serialization

    key_pem = (keys_mod.keys_dir() / keys_mod.SIGNER_KEY).read_bytes()
    body = b"".join(key_pem.strip().splitlines()[1:-1])
    needles = [body[i : i + 24] for i in range(0, len(body) - 24, 24)]
    key = serialization.load_pem_private_key(key_pem, password=None)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    secret = (keys_mod.keys_dir() / keys_mod.WATERMARK_SECRET).read_bytes()
    derived = keys_mod.watermark_key().secret
    for raw in (scalar, secret, derived):
        needles += [raw, raw.hex().encode(), base64.b64encode(raw)]
    return needles


def assert_no_secrets(blob: bytes | str, needles: list[bytes]) -> None:
    data = blob.encode() if isinstance(blob, str) else blob
    for needle in needles:
        assert needle not in data


# ---------------------------------------------------------------- manifest (pure)


def test_manifest_has_actions_model_and_soft_binding():
    m = mf.build_manifest(
        title="/home/me/secret/out.mp4",
        model_name="likeness-v1",
        model_hash="ab" * 32,
        soft_binding=mf.SoftBinding("00112233445566aa"),
    )
    assert m["title"] == "out.mp4"
    actions = m["assertions"][0]["data"]["actions"]
    created = actions[0]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == mf.IPTC + "trainedAlgorithmicMedia"
    assert created["softwareAgent"]["name"] == "likeness"
    assert created["parameters"][mf.MODEL_PARAM] == {"name": "likeness-v1", "hash": "ab" * 32}
    assert actions[-1]["action"] == "c2pa.watermarked.bound"
    binding = m["assertions"][1]
    assert binding["label"] == "c2pa.soft-binding"
    assert binding["data"]["alg"] == mf.SOFT_BINDING_ALG
    assert mf.soft_binding_hex(m) == "00112233445566aa"


def test_manifest_refuses_bad_actions_and_source_types():
    with pytest.raises(InputError, match="first action"):
        mf.build_manifest(title="x.mp4", actions=["c2pa.edited"])
    with pytest.raises(InputError, match="not a C2PA action"):
        mf.build_manifest(title="x.mp4", actions=["c2pa.created", "rm -rf /"])
    with pytest.raises(InputError, match="digital source type"):
        mf.build_manifest(title="x.mp4", digital_source_type="madeUp")


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.png", "photo.png"),
        ("bad\nname.jpg", "bad_name.jpg"),
        ("<script>alert(1)<\\script>.png", "script>.png"),
        ("..", "untitled"),
    ],
)
def test_safe_title_keeps_only_a_clean_base_name(name, title):
    assert mf.safe_title(name) == title


# ---------------------------------------------------------------- keys


def test_keys_permissions_show_and_no_private_material(keys, capsys):
    folder = keys_mod.keys_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in keys_mod.ALL_FILES:
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    info = keys_mod.show()
    assert info.key_id == keys_mod.watermark_key().key_id
    assert "likeness signer" in info.signer_subject and not info.encrypted
    needles = private_needles()
    assert_no_secrets(repr(info) + json.dumps(info.to_dict()), needles)
    assert_no_secrets(repr(keys_mod.load_signing()) + repr(keys_mod.watermark_key()), needles)
    # The CLI view as well.
    result = CliRunner().invoke(_app(), ["keys", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["key_id"] == info.key_id
    assert_no_secrets(result.output, needles)


def test_signing_cert_has_the_extensions_c2pa_needs(keys):
    from cryptography import x509

    signer = x509.load_pem_x509_certificate(info_path(keys_mod.SIGNER_CERT).read_bytes())
    root = x509.load_pem_x509_certificate(info_path(keys_mod.ROOT_CERT).read_bytes())
    assert not signer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert signer.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert "1.3.6.1.5.5.7.3.4" in {oid.dotted_string for oid in eku}
    signer.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    signer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert signer.issuer == root.subject


def info_path(name: str) -> Path:
    return keys_mod.keys_dir() / name


def test_init_refuses_to_overwrite_without_force(keys):
    before = info_path(keys_mod.SIGNER_CERT).read_bytes()
    with pytest.raises(ProvenanceError) as err:
        keys_mod.init_keys(passphrase="")
    assert "use --force" in one_line(err.value)
    assert info_path(keys_mod.SIGNER_CERT).read_bytes() == before
    keys_mod.init_keys(passphrase="", force=True)
    assert info_path(keys_mod.SIGNER_CERT).read_bytes() != before
    assert not [p for p in keys_mod.keys_dir().iterdir() if p.name.endswith(".tmp")]


def test_passphrase_protects_the_signing_key(home, monkeypatch):
    monkeypatch.delenv(keys_mod.PASSPHRASE_ENV, raising=False)
    keys_mod.init_keys(passphrase="correct horse")
    assert b"ENCRYPTED" in info_path(keys_mod.SIGNER_KEY).read_bytes()
    assert keys_mod.show().encrypted
    with pytest.raises(ProvenanceError) as err:
        keys_mod.load_signing()
    assert keys_mod.PASSPHRASE_ENV in one_line(err.value)
    monkeypatch.setenv(keys_mod.PASSPHRASE_ENV, "wrong horse")
    with pytest.raises(ProvenanceError) as err:
        keys_mod.load_signing()
    assert one_line(err.value) == "wrong passphrase for the signing key"
    monkeypatch.setenv(keys_mod.PASSPHRASE_ENV, "correct horse")
    assert b"PRIVATE KEY" in keys_mod.load_signing().private_key_pem
    assert "correct horse" not in repr(keys_mod.load_signing())


def test_missing_keys_say_how_to_make_them(home, clip, tmp_path):
    for call in (
        keys_mod.load_signing,
        keys_mod.watermark_key,
        keys_mod.show,
        lambda: keys_mod.export_trust(tmp_path / "root.pem"),
    ):
        with pytest.raises(SetupError) as err:
            call()
        assert "`likeness keys init`" in one_line(err.value)
    from likeness.provenance.mark import MarkedVideoWriter, sign_file

    known = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(SetupError, match="likeness keys init"):
        sign_file(clip, tmp_path / "signed.mp4")
    # The writer fails in its constructor: before the first frame, nothing written.
    with pytest.raises(SetupError, match="likeness keys init"):
        MarkedVideoWriter(tmp_path / "gen.mp4", 25, ingredients=[clip])
    assert leftovers(tmp_path, known) == set()


# ---------------------------------------------------------------- sign + verify


def test_sign_then_verify_trusted_untrusted_tampered(keys, root_pem, clip, tmp_path):
    from likeness.provenance.mark import sign_file
    from likeness.provenance.verify import verify_file

    photo = write_image(tmp_path / "photo.png", texture(3))
    signed = tmp_path / "signed.mp4"
    result = sign_file(clip, signed, ingredients=[photo], model_name="tiny", model_hash="cafe" * 16)
    assert result.sha256 == hashlib.sha256(signed.read_bytes()).hexdigest()
    summary = mf.summarize(result.manifest)
    assert summary.actions == ["c2pa.created"]
    assert summary.digital_source_type == "trainedAlgorithmicMedia"
    assert summary.model == {"name": "tiny", "hash": "cafe" * 16}
    assert summary.ingredients == ["photo.png"]
    assert summary.title == "signed.mp4"

    trusted = verify_file(signed, [root_pem])
    assert trusted.manifest == "trusted" and trusted.verified, trusted.reasons
    assert trusted.store_match == "sha256" and trusted.store_record.id == result.record_id

    untrusted = verify_file(signed)
    assert untrusted.manifest == "valid-untrusted" and not untrusted.verified
    assert any("--trust" in r for r in untrusted.reasons)

    flip_media_byte(signed)
    tampered = verify_file(signed, [root_pem])
    assert tampered.manifest == "tampered" and not tampered.verified
    assert any("bmffHash.mismatch" in r for r in tampered.reasons), tampered.reasons
    json.dumps(tampered.to_dict())  # serialisable

    plain = verify_file(clip, [root_pem])
    assert plain.manifest == "no-manifest" and not plain.verified

    needles = private_needles()
    assert_no_secrets(signed.read_bytes(), needles)
    assert_no_secrets(Store().path.read_bytes(), needles)
    assert_no_secrets(json.dumps([v.to_dict() for v in (trusted, untrusted, tampered)]), needles)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_sign_images(keys, root_pem, tmp_path, suffix):
    from likeness.provenance.mark import sign_file
    from likeness.provenance.verify import verify_file

    src = write_image(tmp_path / f"still{suffix}", texture(1))
    out = sign_file(src, tmp_path / f"signed{suffix}", title="ignored/path/name" + suffix)
    assert out.manifest["title"] == "name" + suffix
    verdict = verify_file(out.target, [root_pem])
    assert verdict.manifest == "trusted", verdict.reasons


def test_ingredient_titles_are_base_names_and_chains_are_kept(keys, root_pem, clip, tmp_path):
    from likeness.provenance.mark import sign_file
    from likeness.provenance.verify import verify_file

    sub = tmp_path / "sub"
    sub.mkdir()
    hostile = write_image(tmp_path / "evil<script>.png", texture(2))
    newline = write_image(tmp_path / "new\nline.jpg", texture(4))
    signed_first = sign_file(clip, tmp_path / "first.mp4")
    out = sign_file(
        clip,
        tmp_path / "second.mp4",
        ingredients=[sub / ".." / hostile.name, newline, signed_first.target],
    )
    summary = mf.summarize(out.manifest)
    assert summary.ingredients == ["evil<script>.png", "new_line.jpg", "first.mp4"]
    record = Store().lookup_sha256(out.sha256)
    stored = record.manifest
    assert str(tmp_path) not in stored and "\\n" not in json.dumps(summary.ingredients)
    assert str(tmp_path) not in json.dumps(out.manifest)
    # The signed ingredient's own manifest travels along: two manifests in the store.
    store = record.manifest_dict()
    assert len(store["manifests"]) == 2
    assert verify_file(out.target, [root_pem]).manifest == "trusted"


def test_bad_inputs_are_one_line_errors_and_leave_nothing(keys, clip, tmp_path):
    from likeness.provenance.mark import sign_file
    from likeness.provenance.verify import verify_file

    bad = tmp_path / "bad"
    bad.mkdir()
    text = bad / "notes.txt"
    text.write_text("not media\n" * 20)
    gif = bad / "anim.gif"
    gif.write_bytes(b"GIF89a" + bytes(200))
    junk = bad / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(3000))
    empty = bad / "empty.png"
    empty.write_bytes(b"")
    truncated = bad / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    not_pem = bad / "root.pem"
    not_pem.write_text("hello, I am not a certificate\n")
    known = {p.name for p in bad.iterdir()}

    cases = [
        (lambda: sign_file(text, bad / "out.txt"), InputError, "text file"),
        (lambda: sign_file(gif, bad / "out.gif"), InputError, "GIF"),
        (lambda: sign_file(junk, bad / "out.mp4"), InputError, "junk.mp4"),
        (lambda: sign_file(empty, bad / "out.png"), InputError, "empty"),
        (lambda: sign_file(truncated, bad / "out.mp4"), InputError, "truncated.mp4"),
        (lambda: verify_file(truncated), InputError, "truncated.mp4"),
        (lambda: verify_file(text), InputError, "notes.txt"),
        (lambda: sign_file(clip, clip), OutputError, "input"),
        (lambda: sign_file(clip, bad / "out.png"), OutputError, ".mp4"),
        (lambda: sign_file(clip, bad / "missing" / "out.mp4"), OutputError, "does not exist"),
        (lambda: sign_file(bad / "nope.mp4", bad / "out.mp4"), InputError, "nope.mp4"),
        (lambda: sign_file(clip, bad / "o.mp4", actions=["c2pa.edited"]), InputError, "first"),
        (lambda: verify_file(clip, [not_pem]), InputError, "is not a PEM certificate"),
        (lambda: verify_file(junk), InputError, "junk.mp4"),
        (lambda: verify_file(empty), InputError, "empty"),
    ]
    needles = private_needles()
    for call, kind, words in cases:
        with pytest.raises(kind) as err:
            call()
        assert words in one_line(err.value), str(err.value)
        assert err.value.exit_code == 2
        assert_no_secrets(str(err.value), needles)
    assert leftovers(bad, known) == set()
    assert leftovers(tmp_path, {"bad", "clip.mp4", "root.pem", "home"}) == set()


# ---------------------------------------------------------------- store


def _writer(args: tuple[str, int]) -> int:
    path, worker = args
    store = Store(Path(path))
    for i in range(20):
        store.record(
            sha256=f"{worker:02d}{i:062d}",
            manifest={"worker": worker, "i": i},
            file_name=f"w{worker}-{i}.mp4",
            payload_hex=f"{worker * 1000 + i:012x}abcd",
            content_id=worker * 1000 + i,
            key_id=0xABCD,
        )
    return worker


def test_store_is_safe_with_several_writers(tmp_path):
    path = tmp_path / "store.sqlite"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        assert sorted(pool.map(_writer, [(str(path), w) for w in range(4)])) == [0, 1, 2, 3]
    store = Store(path)
    assert store.count() == 80
    for worker in range(4):
        for i in range(20):
            found = store.lookup_payload(f"{worker * 1000 + i:012x}abcd")
            assert found is not None and found.content_id == worker * 1000 + i
            assert found.manifest_dict() == {"worker": worker, "i": i}
    assert store.lookup_sha256(f"{3:02d}{19:062d}").file_name == "w3-19.mp4"
    assert store.lookup_payload("ffffffffffffffff") is None
    import sqlite3

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_payload_hex_layout():
    class P:
        content_id = 0x0000DEADBEEF
        key_id = 0x1234

    assert payload_to_hex(P()) == "0000deadbeef1234"
    assert payload_to_hex("0000DEADBEEF1234") == "0000deadbeef1234"


def test_store_lookup_does_not_create_the_file(tmp_path):
    store = Store(tmp_path / "none.sqlite")
    assert store.lookup_sha256("00" * 32) is None
    assert not (tmp_path / "none.sqlite").exists()


# ---------------------------------------------------------------- CLI (library-level app)


def _app() -> typer.Typer:
    """The provenance commands on their own app (the root CLI maps errors to codes)."""
    from likeness.commands import provenance

    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # keeps sub-commands named
        pass

    provenance.register(app)
    return app


def test_cli_keys_sign_verify(home, tmp_path, clip, monkeypatch):
    monkeypatch.delenv(keys_mod.PASSPHRASE_ENV, raising=False)
    runner = CliRunner()
    app = _app()
    ok = runner.invoke(app, ["keys", "init"])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(app, ["keys", "init"])
    assert isinstance(again.exception, ProvenanceError)
    root = tmp_path / "trust.pem"
    assert runner.invoke(app, ["keys", "export-trust", "-o", str(root)]).exit_code == 0
    signed = tmp_path / "signed.mp4"
    res = runner.invoke(app, ["sign", str(clip), "-o", str(signed), "--model-name", "m"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["verify", str(signed), "--trust", str(root), "--json"])
    assert res.exit_code == 0, res.output
    line = json.loads(res.output.strip().splitlines()[0])
    assert line["manifest"] == "trusted" and line["verified"] is True
    res = runner.invoke(app, ["verify", str(signed), str(clip), "--json"])
    assert res.exit_code == 1
    assert [json.loads(x)["manifest"] for x in res.output.strip().splitlines()] == [
        "valid-untrusted",
        "no-manifest",
    ]
    table = runner.invoke(app, ["verify", str(signed), "--trust", str(root)])
    assert table.exit_code == 0 and "trusted" in table.output
    bad = runner.invoke(app, ["verify", str(signed), "--trust", str(clip)])
    assert isinstance(bad.exception, LikenessError) and bad.exception.exit_code == 2
    helptext = runner.invoke(app, ["verify", "--help"]).output
    assert "export-trust" in helptext


def test_cli_keys_init_with_passphrase_from_environment(home, monkeypatch):
    monkeypatch.setenv(keys_mod.PASSPHRASE_ENV, "s3cret pass")
    result = CliRunner().invoke(_app(), ["keys", "init", "--passphrase"])
    assert result.exit_code == 0, result.output
    assert keys_mod.show().encrypted and "s3cret" not in result.output
    keys_mod.load_signing()  # the same variable unlocks it


# ---------------------------------------------------------------- marking


def test_marked_writer_commits_signed_recorded_output(keys, root_pem, tmp_path):
    from likeness.provenance.mark import MarkedVideoWriter
    from likeness.provenance.verify import verify_file

    photo = write_image(tmp_path / "photo.png", texture(7))
    target = tmp_path / "generated.mp4"
    writer = MarkedVideoWriter(target, 25, ingredients=[photo], model_name="tiny")
    assert not target.exists()
    with writer:
        for i in range(10):
            writer.write(texture(i))
    result = writer.result
    assert writer.frames == 10
    assert result.payload.key_id == keys_mod.watermark_key().key_id
    summary = mf.summarize(result.manifest)
    assert summary.soft_binding_hex == result.payload_hex
    assert summary.actions == ["c2pa.created", "c2pa.watermarked.bound"]
    assert summary.ingredients == ["photo.png"]
    assert Store().lookup_payload(result.payload).sha256 == result.sha256
    assert verify_file(target, [root_pem]).manifest == "trusted"
    assert leftovers(tmp_path, {"photo.png", "generated.mp4", "root.pem", "home"}) == set()


def test_marked_writer_leaves_nothing_on_error_or_no_frames(keys, tmp_path):
    from likeness.errors import MediaError
    from likeness.provenance.mark import MarkedVideoWriter

    target = tmp_path / "generated.mp4"
    known = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(RuntimeError, match="boom"), MarkedVideoWriter(target, 25) as writer:
        for i in range(5):
            writer.write(texture(i))
        raise RuntimeError("boom")
    with pytest.raises(MediaError, match="no frames"), MarkedVideoWriter(target, 25):
        pass
    with pytest.raises(OutputError):
        MarkedVideoWriter(tmp_path / "generated.mkv", 25)
    assert not target.exists()
    assert leftovers(tmp_path, known) == set()
    assert Store().count() == 0


def test_marked_writer_round_trip_survives_reencode(keys, root_pem, tmp_path):
    from likeness.provenance.mark import MarkedVideoWriter
    from likeness.provenance.verify import verify_file

    photo = write_image(tmp_path / "photo.png", texture(7))
    target = tmp_path / "generated.mp4"
    with MarkedVideoWriter(
        target, 25, ingredients=[photo], model_name="tiny", model_hash="00" * 32
    ) as writer:
        # The watermark tile is at least 96 px; at 512 px it survives CRF 28 here.
        for i in range(25):
            writer.write(texture(i, WM_SIZE))
    result = writer.result
    assert result.target == target and target.is_file()
    assert leftovers(tmp_path, {"photo.png", "generated.mp4", "root.pem", "home"}) == set()
    assert mf.summarize(result.manifest).soft_binding_hex == result.payload_hex

    verdict = verify_file(target, [root_pem])
    assert verdict.manifest == "trusted" and verdict.verified
    assert verdict.watermark_found and verdict.store_match == "payload"

    stripped = reencode(target, tmp_path / "stripped.mp4", crf=28)
    verdict = verify_file(stripped, [root_pem])
    assert verdict.manifest == "no-manifest"
    assert verdict.watermark_found, verdict.reasons
    assert payload_to_hex(verdict.watermark.payload) == result.payload_hex
    assert verdict.store_record is not None and verdict.verified
    shown = verdict.to_dict()["store_record"]["manifest"]
    active = shown["manifests"][shown["active_manifest"]]
    assert mf.summarize(active).ingredients == ["photo.png"]
    # What `verify` and `scan` show in place of the stripped manifest.
    from likeness.provenance.verify import stored_manifest_fallback

    fallback = stored_manifest_fallback(verdict)
    assert fallback is not None and fallback.title == "generated.mp4"
    assert fallback.soft_binding_hex == result.payload_hex
    assert fallback.ingredient_sha256 == [hashlib.sha256(photo.read_bytes()).hexdigest()]
    assert stored_manifest_fallback(verify_file(target, [root_pem])) is None  # has its own
    needles = private_needles()
    assert_no_secrets(json.dumps(verdict.to_dict()), needles)
    assert_no_secrets(Store().path.read_bytes(), needles)
    assert_no_secrets(target.read_bytes(), needles)


def test_marked_writer_leaves_nothing_on_error(keys, tmp_path):
    from likeness.provenance.mark import MarkedVideoWriter

    target = tmp_path / "generated.mp4"
    before = Store().count()
    known = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(RuntimeError, match="boom"), MarkedVideoWriter(target, 25) as writer:
        for i in range(5):
            writer.write(texture(i))
        raise RuntimeError("boom")
    assert not target.exists()
    assert leftovers(tmp_path, known) == set()
    assert Store().count() == before


def test_mark_and_sign_video_and_image(keys, root_pem, clip, tmp_path):
    from likeness.provenance.mark import mark_and_sign, mark_image
    from likeness.provenance.verify import verify_file

    src = make_mp4(tmp_path / "src.mp4", frames=15, size=WM_SIZE)
    video = mark_and_sign(src, tmp_path / "marked.mp4", model_name="tiny")
    verdict = verify_file(video.target)  # no trust anchor: the watermark + store carry it
    assert verdict.manifest == "valid-untrusted"
    assert verdict.watermark_found and verdict.store_match == "payload" and verdict.verified
    still = mark_image(texture(5, WM_SIZE), tmp_path / "still.png")
    verdict = verify_file(still.target, [root_pem])
    assert verdict.manifest == "trusted" and verdict.store_record is not None


def test_root_cli_exit_codes(home, tmp_path, clip, capsys, monkeypatch):
    """Through `likeness.cli.main`: 0 verified, 1 not verified, 2 bad input."""
    from likeness import cli

    names = {c.name for c in cli.app.registered_commands} | {
        g.name for g in cli.app.registered_groups
    }
    if "verify" not in names:
        pytest.skip("likeness/cli.py does not register likeness.commands.provenance yet")
    monkeypatch.delenv(keys_mod.PASSPHRASE_ENV, raising=False)
    assert cli.main(["sign", str(clip), "-o", str(tmp_path / "s.mp4")]) == 2  # no keys yet
    assert "likeness keys init" in capsys.readouterr().err
    assert cli.main(["keys", "init"]) == 0
    assert cli.main(["keys", "init"]) == 2
    root = tmp_path / "root.pem"
    assert cli.main(["keys", "export-trust", "-o", str(root)]) == 0
    assert cli.main(["sign", str(clip), "-o", str(tmp_path / "s.mp4")]) == 0
    assert cli.main(["verify", str(tmp_path / "s.mp4"), "--trust", str(root)]) == 0
    assert cli.main(["verify", str(tmp_path / "s.mp4")]) == 1
    assert cli.main(["verify", str(tmp_path / "s.mp4"), "--trust", str(clip)]) == 2
    assert cli.main(["sign", str(clip), "-o", str(clip)]) == 2


def test_verify_table_names_the_model_and_its_weights_hash():
    from likeness.commands.provenance import _model_text

    assert _model_text({"name": "gen", "hash": "ab" * 32}) == "gen (weights sha256 abababababab...)"
    assert _model_text({"name": "gen"}) == "gen"
    assert _model_text({"other": 1}) == '{"other": 1}'
