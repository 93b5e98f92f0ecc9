"""The manifests likeness writes mean to other C2PA tools what likeness means by them.

- every assertion likeness makes (actions, soft binding, ingredients, thumbnails) is
  filed as *created* (the signer vouches for it), none as *gathered*;
- the soft binding has the fields c2pa-rs's own type needs (`pad`, a text `value`);
- `c2pa.opened` links its `parentOf` ingredient, and signs and verifies `trusted`;
- every ingredient carries its sha256, with or without a manifest of its own;
- MP4 manifests carry a thumbnail (a frame of the output);
- files signed with the older manifest layout still verify.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from likeness.errors import InputError
from likeness.provenance import c2pa_io
from likeness.provenance import manifest as mf
from tests.test_provenance import WM_SIZE, _app, make_mp4, texture, write_image


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_mp4(tmp_path / "clip.mp4")


def _reader(path: Path, mime: str):
    import c2pa

    context = c2pa.Context.from_dict({"verify": {"verify_trust": False}})
    fh = open(path, "rb")  # noqa: SIM115  (closed with the reader below)
    return fh, c2pa.Reader(mime, fh, context=context), context


def _claim(path: Path, mime: str) -> dict:
    fh, reader, context = _reader(path, mime)
    with fh, reader:
        detailed = json.loads(reader.detailed_json())
    context.close()
    return detailed["manifests"][detailed["active_manifest"]]["claim"]


def _active(path: Path, mime: str) -> dict:
    fh, reader, context = _reader(path, mime)
    with fh, reader:
        store = json.loads(reader.json())
    context.close()
    return store["manifests"][store["active_manifest"]]


def _label(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("__")[0]


# ---------------------------------------------------------------- pure


def test_soft_binding_has_pad_a_text_value_and_says_what_a_resolver_needs():
    m = mf.build_manifest(title="x.png", soft_binding=mf.SoftBinding("00112233445566aa"))
    binding = next(a for a in m["assertions"] if a["label"] == mf.SOFT_BINDING_LABEL)
    data = binding["data"]
    assert binding["created"] is True
    assert data["alg"] == "com.likeness.watermark.v2"
    assert data["pad"] == []
    assert data["blocks"] == [{"scope": {}, "value": "ABEiM0RVZqo="}]
    assert data["name"].endswith("00112233445566aa") and "key" in data["name"]
    assert mf.soft_binding_hex(m) == "00112233445566aa"
    # A reader that decodes the value as bytes (a list of ints) reads the same payload.
    data["blocks"][0]["value"] = list(bytes.fromhex("00112233445566aa"))
    assert mf.soft_binding_hex(m) == "00112233445566aa"
    data["alg"] = "com.likeness.watermark.v1"  # files marked before the bump
    assert mf.soft_binding_hex(m) == "00112233445566aa"
    data["alg"] = "com.likeness.watermark.v3"  # a later version of our own watermark
    assert mf.soft_binding_hex(m) == "00112233445566aa"
    data["alg"] = "org.example.other"
    assert mf.soft_binding_hex(m) is None


def test_opened_action_names_its_parent_and_ingredients_carry_their_hash():
    m = mf.build_manifest(title="x.png", actions=["c2pa.opened", "c2pa.edited"])
    opened = m["assertions"][0]["data"]["actions"][0]
    assert opened["parameters"]["ingredientIds"] == [mf.PARENT_ID]
    parent = mf.ingredient_definition("a/b.png", "parentOf", sha256="ab" * 32)
    assert parent == {
        "title": "b.png",
        "relationship": "parentOf",
        "metadata": {mf.INGREDIENT_SHA256: "ab" * 32},
        "label": mf.PARENT_ID,
    }
    assert "label" not in mf.ingredient_definition("c.png", sha256="cd" * 32)


# ---------------------------------------------------------------- signed files


def test_every_likeness_assertion_is_created_not_gathered(keys, root_pem, tmp_path):
    from likeness.provenance.mark import mark_image

    photo = write_image(tmp_path / "photo.png", texture(2))
    still = mark_image(texture(5, WM_SIZE), tmp_path / "still.png", ingredients=[photo])
    claim = _claim(still.target, c2pa_io.PNG)
    assert claim["claim_version"] == 2
    assert not claim.get("gathered_assertions"), claim.get("gathered_assertions")
    created = {_label(a["url"]) for a in claim["created_assertions"]}
    assert {"c2pa.actions.v2", "c2pa.soft-binding", "c2pa.ingredient.v3"} <= created


def test_cli_sign_opened_with_ingredient_verifies_trusted_with_hashes(keys, root_pem, tmp_path):
    src = write_image(tmp_path / "edited.png", texture(3))
    photo = write_image(tmp_path / "photo.jpg", texture(4))
    out = tmp_path / "signed.png"
    runner = CliRunner()
    app = _app()
    res = runner.invoke(
        app,
        ["sign", str(src), "-o", str(out), "--action", "c2pa.opened", "--action",
         "c2pa.edited", "--ingredient", str(photo)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["verify", str(out), "--trust", str(root_pem), "--json"])
    assert res.exit_code == 0, res.output
    verdict = json.loads(res.output.strip().splitlines()[-1])
    assert verdict["manifest"] == "trusted" and verdict["verified"]
    assert verdict["findings"] == []
    summary = verdict["manifest_summary"]
    assert summary["actions"] == ["c2pa.opened", "c2pa.edited"]
    assert summary["ingredients"] == ["edited.png", "photo.jpg"]
    assert summary["ingredient_sha256"] == [
        hashlib.sha256(src.read_bytes()).hexdigest(),
        hashlib.sha256(photo.read_bytes()).hexdigest(),
    ]
    active = _active(out, c2pa_io.PNG)
    parent = next(i for i in active["ingredients"] if i["relationship"] == "parentOf")
    assert parent["title"] == "edited.png"
    actions = next(a for a in active["assertions"] if a["label"].startswith("c2pa.actions"))
    opened = actions["data"]["actions"][0]
    # c2pa-rs resolved the link: the action points at the parent's ingredient assertion.
    assert opened["parameters"]["ingredients"][0]["url"].endswith(parent["label"])


def test_opened_without_a_parent_is_refused_before_any_work(keys, tmp_path):
    from likeness.provenance.mark import MarkedVideoWriter, mark_image

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match=r"c2pa\.opened needs the file that was opened"):
        mark_image(texture(1), out / "x.png", actions=["c2pa.opened"])
    with pytest.raises(InputError, match=r"c2pa\.opened"):
        MarkedVideoWriter(out / "x.mp4", 25, actions=["c2pa.opened"])
    assert list(out.iterdir()) == []


def test_mp4_manifest_has_a_thumbnail_of_the_output(keys, root_pem, clip, tmp_path):
    from likeness.provenance.mark import sign_file
    from likeness.provenance.verify import verify_file

    out = sign_file(clip, tmp_path / "signed.mp4")
    assert verify_file(out.target, [root_pem]).manifest == "trusted"
    active = _active(out.target, c2pa_io.MP4)
    thumb = active.get("thumbnail")
    assert thumb and thumb["format"] == "image/jpeg", active.keys()
    fh, reader, context = _reader(out.target, c2pa_io.MP4)
    buf = io.BytesIO()
    with fh, reader:
        reader.resource_to_stream(thumb["identifier"], buf)
    context.close()
    image = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (128, 128)
    # It is the output's first frame (texture(0)), not some other picture.
    first = cv2.cvtColor(texture(0), cv2.COLOR_RGB2BGR).astype(np.float32)
    assert np.abs(image.astype(np.float32) - first).mean() < 12
    claim = _claim(out.target, c2pa_io.MP4)
    assert "c2pa.thumbnail.claim" in {_label(a["url"]) for a in claim["created_assertions"]}


def test_files_signed_with_the_older_manifest_layout_still_verify(keys, root_pem, tmp_path):
    """The layout likeness wrote before: every assertion gathered, soft binding without
    `pad`, ingredients by name only."""
    import base64

    from likeness.provenance.keys import load_signing
    from likeness.provenance.verify import verify_file

    src = write_image(tmp_path / "old.png", texture(6))
    photo = write_image(tmp_path / "photo.png", texture(2))
    payload = "0123456789abcdef"
    value = base64.b64encode(bytes.fromhex(payload)).decode()
    agent = {"name": "likeness", "version": "0.1.0"}
    legacy = {
        "claim_generator_info": [agent],
        "title": "old-signed.png",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {"action": "c2pa.created", "softwareAgent": agent,
                         "digitalSourceType": mf.IPTC + "trainedAlgorithmicMedia"},
                        {"action": "c2pa.watermarked.bound", "softwareAgent": agent},
                    ]
                },
            },
            {
                "label": "c2pa.soft-binding",
                "data": {
                    "alg": "com.likeness.watermark.v1",  # what files of then say
                    "blocks": [{"scope": {}, "value": value}],
                    "name": f"likeness watermark payload {payload}",
                },
            },
        ],
    }  # fmt: skip
    out = tmp_path / "old-signed.png"
    ingredient = c2pa_io.IngredientSource(
        {"title": "photo.png", "relationship": "inputTo"}, photo, c2pa_io.PNG
    )
    c2pa_io.sign_stream(
        src, out, mime=c2pa_io.PNG, manifest=legacy, keys=load_signing(), ingredients=[ingredient]
    )
    verdict = verify_file(out, [root_pem])
    assert verdict.manifest == "trusted", verdict.reasons
    assert verdict.summary.soft_binding_hex == payload
    assert verdict.summary.ingredients == ["photo.png"]
    assert verdict.summary.ingredient_sha256 == [None]
    assert _claim(out, c2pa_io.PNG).get("gathered_assertions")  # it really is the old layout
