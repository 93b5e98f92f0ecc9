"""Several faces: `--face all`, `--drive N=clip`, faces followed by number, and the
side-by-side `--preview`. A tiny random model (64 px): plumbing, not looks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from likeness.errors import InputError
from likeness.pipelines.faces_plan import FaceIds, parse_drive, parse_face, plan_faces
from tests import samples
from tests.samples import decode, run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def drivers(tmp_path_factory, astronaut) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("faces-drivers")
    return {
        "a": samples.face_video(folder / "a.mp4", astronaut, frames=8),
        "b": samples.face_video(folder / "b.mp4", astronaut[:, ::-1].copy(), frames=6),
    }


@pytest.fixture(scope="module")
def two_people(corpus) -> Path:
    return corpus / "photos" / "fr-two-people.jpg"


def _boxes(face_stack, path: Path) -> list[np.ndarray]:
    from likeness.media import read_image

    return [f.box for f in face_stack.analyze(read_image(path))]


def test_face_all_moves_both_faces_and_nothing_else(
    capsys, root_pem, tiny_weights, face_stack, two_people, drivers, tmp_path
):
    from likeness.media import read_image
    from likeness.provenance.verify import verify_file

    out = tmp_path / "both.mp4"
    code, stdout, err = run_cli(
        capsys, "animate", two_people, drivers["a"], "-o", out, "--face", "all",
        "--weights", tiny_weights,
    )  # fmt: skip
    assert code == 0, err
    assert "2 faces in fr-two-people.jpg; animating face 0 by a.mp4, face 1 by a.mp4" in stdout
    frames = np.stack(decode(out)).astype(np.float32)
    assert len(frames) == 8
    photo = read_image(two_people)
    h, w = photo.shape[:2]  # the output is padded to even sides (661 -> 662 rows)
    change = np.abs(frames[1:] - frames[:1]).mean(-1).max(0)[:h, :w]  # per pixel, over time
    rest = np.ones(photo.shape[:2], bool)
    for x0, y0, x1, y1 in _boxes(face_stack, two_people):
        inner = change[int(y0) : int(y1), int(x0) : int(x1)]
        assert inner.mean() > 4.0, inner.mean()  # this face moves
        w, h = x1 - x0, y1 - y0  # the crop (and its paste) reaches about a face around it
        rest[max(0, int(y0 - h)) : int(y1 + h), max(0, int(x0 - w)) : int(x1 + w)] = False
    assert rest.mean() > 0.3  # enough of the frame left to judge
    assert change[rest].mean() < 1.5, change[rest].mean()  # the watermark and H.264 only
    verdict = verify_file(out, [root_pem])
    assert verdict.manifest == "trusted" and verdict.watermark_found


def test_drive_gives_each_face_its_clip_and_the_manifest_lists_both(
    capsys, root_pem, tiny_weights, two_people, drivers, tmp_path
):
    from likeness.media import probe
    from likeness.provenance.verify import verify_file

    out = tmp_path / "two-clips.mp4"
    code, stdout, err = run_cli(
        capsys, "animate", two_people, "-o", out, "--drive", f"0={drivers['a']}",
        "--drive", f"1={drivers['b']}", "--weights", tiny_weights, "--max-frames", 4,
    )  # fmt: skip
    assert code == 0, err
    assert "face 0 by a.mp4, face 1 by b.mp4" in stdout
    assert probe(out).frames == 4
    summary = verify_file(out, [root_pem]).summary
    assert summary.ingredients == ["fr-two-people.jpg", "a.mp4", "b.mp4"]


def test_drive_alone_moves_only_the_named_face(
    keys, tiny_weights, face_stack, two_people, drivers, tmp_path
):
    from likeness.pipelines.animate import AnimateConfig, prepare

    config = AnimateConfig(weights=tiny_weights, drive=((1, drivers["b"]),), max_frames=4)
    result = prepare(two_people, tmp_path / "one.mp4", None, config).run()
    frames = np.stack(decode(result.output)).astype(np.float32)
    change = np.abs(frames[1:] - frames[:1]).mean(-1).max(0)
    moved = []
    for x0, y0, x1, y1 in _boxes(face_stack, two_people):
        moved.append(change[int(y0) : int(y1), int(x0) : int(x1)].mean())
    assert moved[1] > 4.0 and moved[0] < 1.5, moved


def test_preview_is_driver_beside_output_and_signed(
    capsys, root_pem, tiny_weights, two_people, drivers, tmp_path
):
    from likeness.media import probe
    from likeness.provenance.verify import verify_file

    out, side = tmp_path / "out.mp4", tmp_path / "side.mp4"
    code, stdout, err = run_cli(
        capsys, "animate", two_people, drivers["a"], "-o", out, "--preview", side,
        "--weights", tiny_weights, "--max-frames", 3,
    )  # fmt: skip
    assert code == 0, err
    assert f"wrote {side}" in stdout
    main, preview = probe(out), probe(side)
    # The 256 px driver scaled to the output's height, beside it.
    assert preview.height == main.height and preview.frames == main.frames == 3
    assert preview.width == main.height + main.width
    verdict = verify_file(side, [root_pem])
    assert verdict.manifest == "trusted" and verdict.watermark_found, verdict.reasons
    assert verdict.summary.ingredients == ["fr-two-people.jpg", "a.mp4"]
    left = decode(side)[0][:, : main.height]
    driver0 = cv2.resize(decode(drivers["a"])[0], (main.height, main.height))
    assert samples.psnr(left, driver0) > 25  # the left half is the driver


def test_bad_face_choices_are_one_line_errors(
    capsys, keys, tiny_weights, two_people, drivers, tmp_path
):
    (tmp_path / "out").mkdir()
    for args, message in [
        (["--drive", f"2={drivers['a']}"], "--drive 2=a.mp4: fr-two-people.jpg has 2 face(s)"),
        (["--face", "3", drivers["a"]], "--face 3 asked for"),
        (["--face", "some", drivers["a"]], "--face must be a face number"),
        (["--drive", "x.mp4"], "--drive takes FACE=CLIP"),
        (["--drive", f"0={drivers['a']}", "--drive", f"0={drivers['b']}"], "same face twice"),
        (["--face", "all"], "give a driving video"),
    ]:
        code, _, err = run_cli(
            capsys, "animate", two_people, *args, "-o", tmp_path / "out" / "never.mp4",
            "--weights", tiny_weights,
        )  # fmt: skip
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)
    assert list((tmp_path / "out").iterdir()) == []


def test_plan_and_parsing():
    assert parse_face("all") == "all" and parse_face(" 2 ") == 2
    assert parse_drive(["0=a.mp4", "1 = b.mp4"]) == ((0, Path("a.mp4")), (1, Path("b.mp4")))
    plan = plan_faces(3, "all", ((1, Path("b.mp4")),), has_main=True, what="x")
    assert plan.drivers == {0: None, 1: Path("b.mp4"), 2: None}
    assert plan.clips(Path("a.mp4")) == [Path("a.mp4"), Path("b.mp4")]
    assert plan_faces(3, 0, ((2, Path("b.mp4")),), has_main=False, what="x").faces == [2]
    with pytest.raises(InputError, match="x has 1 face"):
        plan_faces(1, 0, ((1, Path("b.mp4")),), has_main=True, what="x")


def _face(x0: float, y0: float, side: float):
    from likeness.faces import Detection, Face

    box = np.array([x0, y0, x0 + side, y0 + side], float)
    return Face(detection=Detection(box, 0.9, np.zeros((6, 2))))


def test_face_ids_follow_each_face_through_reordering_gaps_and_newcomers():
    ids = FaceIds()
    first = ids([_face(300, 50, 60), _face(10, 10, 100)])  # largest first: the left one
    assert first[0].box[0] == 10 and first[1].box[0] == 300
    # The tracker lists them the other way round, and both moved a little.
    again = ids([_face(14, 12, 100), _face(296, 52, 60)])
    assert again[0].box[0] == 14 and again[1].box[0] == 296
    # Face 0 is lost for a frame; face 1 keeps its number, and 0 gets its own back.
    assert set(ids([_face(292, 54, 60)])) == {1}
    back = ids([_face(290, 55, 60), _face(20, 12, 100)])
    assert back[0].box[0] == 20 and back[1].box[0] == 290
    # A face that shrank (overlap IoU 0.16) is followed by centre distance; a newcomer
    # gets the next number.
    moved = ids([_face(75, 40, 40), _face(290, 55, 60), _face(500, 300, 40)])
    assert moved[0].box[0] == 75 and moved[2].box[0] == 500


def test_an_error_mid_scene_leaves_neither_output_nor_preview(
    keys, tiny_weights, two_people, drivers, tmp_path, monkeypatch
):
    from likeness.pipelines.animate import AnimateConfig, prepare

    outdir = tmp_path / "out"
    outdir.mkdir()
    config = AnimateConfig(weights=tiny_weights, face="all", preview=outdir / "side.mp4")
    job = prepare(two_people, outdir / "x.mp4", drivers["a"], config)
    samples.fail_render_after(monkeypatch, job.model, 3)
    with pytest.raises(RuntimeError, match="boom"):
        job.run()
    assert list(outdir.iterdir()) == []
