"""The visible "AI-generated" label: drawn where asked, scaled to the frame, legible,
burnt in before the watermark, and recorded in the signed manifest."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from likeness.errors import InputError
from likeness.media.label import POSITIONS, LabelStyle, burn_label, label_box
from tests import samples
from tests.samples import run_cli


def _grey(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(90, 170, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(("h", "w"), [(256, 256), (1080, 1920), (1920, 1080), (192, 192)])
def test_label_sits_in_its_corner_and_scales_with_the_frame(h, w):
    for position in POSITIONS:
        box = label_box(w, h, LabelStyle(position=position))
        assert 0 <= box.x0 < box.x1 <= w and 0 <= box.y0 < box.y1 <= h
        assert (box.x0 < w / 2) == position.endswith("left")
        assert (box.y0 < h / 2) == position.startswith("top")
    height = label_box(w, h).y1 - label_box(w, h).y0
    # Cap height 3.5 % of the shorter side, at least 11 px: a box of about 2x that.
    assert height == pytest.approx(max(11, 0.035 * min(h, w)) * 2, rel=0.25)


def test_label_is_dark_box_with_bright_text_and_touches_nothing_else():
    frame = _grey(256, 256)
    out = burn_label(frame)
    box = label_box(256, 256)
    inside = out[box.y0 : box.y1, box.x0 : box.x1].astype(int)
    outside = np.ones((256, 256), bool)
    outside[box.y0 : box.y1, box.x0 : box.x1] = False
    assert (out[outside] == frame[outside]).all()
    assert (inside.mean(-1) > 200).mean() > 0.05  # the letters: white strokes
    assert np.median(inside) < 80  # on a dark box
    assert frame.flags.writeable and (frame == _grey(256, 256)).all()  # a copy


def test_label_text_is_readable_at_256_px():
    """Legible: the strokes of each letter come apart, as OCR needs: each character
    of 'AI-generated' is at least 5 px tall in a 256 px frame (the smallest we write)."""
    box = label_box(256, 256)
    cap = (box.y1 - box.y0) / 2
    assert cap >= 10
    (text_w, _), _ = cv2.getTextSize("AI-generated", cv2.FONT_HERSHEY_SIMPLEX, box.scale, 1)
    assert text_w / len("AI-generated") >= 5


def test_long_text_shrinks_to_fit_a_narrow_frame():
    style = LabelStyle(text="Synthetic video made with likeness")
    box = label_box(192, 192, style)
    assert box.x0 >= 0 and box.x1 <= 192


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("", "bottom-right", "empty"),
        ("ok", "middle", "unknown label position"),
        ("x" * 65, "top-left", "keep it to 64"),
        ("généré par IA", "top-left", "plain printable ASCII"),
    ],
)
def test_bad_label_options_are_refused(text, position, message):
    with pytest.raises(InputError, match=message):
        LabelStyle(text=text, position=position)


def test_animate_label_is_in_the_pixels_and_in_the_manifest(
    capsys, root_pem, tiny_weights, astronaut, tmp_path
):
    from likeness.media import iter_frames
    from likeness.provenance.verify import verify_file

    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    photo = tmp_path / "photo.png"
    photo.write_bytes(samples.png_bytes(small))
    driving = samples.face_video(tmp_path / "driving.mp4", astronaut, frames=4)
    outs = {}
    for name, extra in [("plain", []), ("label", ["--label", "--label-position", "top-left"])]:
        outs[name] = tmp_path / f"{name}.mp4"
        code, _, err = run_cli(
            capsys, "animate", photo, driving, "-o", outs[name], "--weights", tiny_weights,
            *extra,
        )  # fmt: skip
        assert code == 0, err
    box = label_box(256, 256, LabelStyle(position="top-left"))
    region = (slice(box.y0, box.y1), slice(box.x0, box.x1))
    plain = [f.image[region].astype(int) for f in iter_frames(outs["plain"])]
    labelled = [f.image[region].astype(int) for f in iter_frames(outs["label"])]
    for a, b in zip(plain, labelled, strict=True):
        assert np.abs(a - b).mean() > 40  # every frame carries it
    verdict = verify_file(outs["label"], [root_pem])
    assert verdict.manifest == "trusted" and verdict.watermark_found, verdict.reasons
    assert verdict.summary.visible_label == {
        "text": "AI-generated",
        "position": "top-left",
        "frames": "all",
    }
    assert verify_file(outs["plain"], [root_pem]).summary.visible_label is None


def test_the_label_record_is_a_parameter_of_the_created_action():
    from likeness.provenance.manifest import VISIBLE_LABEL_PARAM, build_manifest, summarize

    record = {"text": "AI-generated", "position": "bottom-right", "frames": "all"}
    manifest = build_manifest(title="x.mp4", model_name="m", visible_label=record)
    created = manifest["assertions"][0]["data"]["actions"][0]
    assert created["action"] == "c2pa.created"
    assert created["parameters"][VISIBLE_LABEL_PARAM] == record
    assert "com.likeness.model" in created["parameters"]
    assert summarize(manifest).visible_label == record
    bare = build_manifest(title="x.mp4")
    assert "parameters" not in bare["assertions"][0]["data"]["actions"][0]


def test_scene_path_labels_too(keys, tiny_weights, corpus, astronaut, tmp_path):
    """--face all goes through the scene path: it labels and records as well."""
    from likeness.media import iter_frames, read_image
    from likeness.pipelines.animate import AnimateConfig, animate
    from likeness.provenance.manifest import summarize

    driving = samples.face_video(tmp_path / "d.mp4", astronaut, frames=3)
    photo = corpus / "photos" / "fr-two-people.jpg"
    config = AnimateConfig(weights=tiny_weights, face="all", label=True, label_text="Synthetic")
    result = animate(photo, tmp_path / "x.mp4", driving, config)
    frame = next(iter(iter_frames(result.output))).image
    source = read_image(photo)
    h, w = source.shape[:2]
    box = label_box(w, h, LabelStyle(text="Synthetic"))
    part = (slice(box.y0, box.y1), slice(box.x0, box.x1))
    assert np.abs(frame[part].astype(int) - source[part].astype(int)).mean() > 40
    assert summarize(result.sign.manifest).visible_label["text"] == "Synthetic"
