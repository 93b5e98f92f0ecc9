"""Training packs: writer, reader, identities and split, synthetic motion."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from likeness.datasets.identities import (
    DEEPFACE,
    default_split_path,
    identity_for,
    load_split,
    parse_split,
)
from likeness.datasets.pack import PackConfig, assign_ids, write_pack
from likeness.datasets.pack_format import MANIFEST_NAME, PACK_FORMAT, PACK_VERSION, SPLITS
from likeness.datasets.pack_reader import Pack
from likeness.datasets.synthetic_motion import draw_warp, random_warp
from likeness.errors import InputError, NoFaceError
from likeness.faces.regions import KEY_LANDMARKS, positions
from likeness.faces.types import LEFT_EYE_RING, RIGHT_EYE_RING
from tests import samples
from tests.samples import psnr, run_cli

VIDEO_FRAMES = 12


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files or folders a failed run could leave behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, astronaut) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    video = samples.face_video(folder / "astro.mp4", astronaut, frames=VIDEO_FRAMES, fps=25)
    photo = folder / "astro.png"
    photo.write_bytes(samples.png_bytes(astronaut))
    blank = folder / "blank.png"  # no face anywhere
    gradient = np.tile(np.linspace(0, 255, 160, dtype=np.uint8)[None, :, None], (120, 1, 3))
    blank.write_bytes(samples.png_bytes(gradient))
    text = folder / "notes.mp4"
    text.write_text("not a video\n" * 20)
    return {"video": video, "photo": photo, "blank": blank, "text": text}


@pytest.fixture(scope="module")
def packed(tmp_path_factory, inputs, face_stack):
    out = tmp_path_factory.mktemp("packs") / "pack"
    warnings: list[str] = []
    report = write_pack(
        [inputs["video"], inputs["photo"], inputs["blank"]],
        out,
        PackConfig(every=1),
        stack=face_stack,
        warn=warnings.append,
    )
    return out, report, warnings


# --- writer and reader -----------------------------------------------------------------


def test_manifest_records_the_format_items_and_split(packed, inputs):
    out, report, warnings = packed
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["format"] == PACK_FORMAT and manifest["version"] == PACK_VERSION
    assert manifest["crop"] == {"size": 256, "scale": 1.0, "shift": 0.1}
    assert manifest["landmark_indices"] == list(KEY_LANDMARKS)
    split_sha = hashlib.sha256(default_split_path().read_bytes()).hexdigest()
    assert manifest["split"] == {"file": "split.tsv", "sha256": split_sha}
    assert (out / "split.tsv").read_bytes() == default_split_path().read_bytes()
    video, photo = manifest["items"]
    assert video["id"] == "astro" and photo["id"] == "astro-photo"  # stems clash
    assert video["kind"] == "video" and photo["kind"] == "photo"
    assert video["frames"] == VIDEO_FRAMES and video["frames_without_face"] == 0
    assert video["fps"] == 25.0 and video["every"] == 1
    assert video["file"] == "clips/astro.mp4" and video["arrays"] == "clips/astro.npz"
    assert photo["file"] == "photos/astro-photo.png" and photo["frames"] == 1
    sha = hashlib.sha256(inputs["video"].read_bytes()).hexdigest()
    assert video["source_sha256"] == sha and video["source"] == "astro.mp4"
    assert video["identity"] == "astro" and video["split"] == "train"  # unknown: train
    # The faceless photo is skipped with a warning, not fatal.
    assert report.skipped == ["blank.png"]
    assert any("blank.png" in w for w in warnings)
    assert not leftovers(out.parent)


def test_reader_rows_match_frames(packed):
    out, _, _ = packed
    pack = Pack.open(out, split_file=default_split_path())
    assert pack.crop_size == 256 and pack.landmark_indices == KEY_LANDMARKS
    assert [i.id for i in pack.select(kind="video")] == ["astro"]
    assert [i.id for i in pack.select(split="train", kind="photo")] == ["astro-photo"]
    assert pack.select(split="test") == []
    for item in pack.items:
        frames, arrays = pack.frames(item), pack.arrays(item)
        assert frames.shape == (item.frames, 256, 256, 3) and frames.dtype == np.uint8
        assert len(arrays) == item.frames
        assert arrays.landmarks.shape == (item.frames, len(KEY_LANDMARKS), 3)
        assert arrays.landmarks.dtype == np.float32 and arrays.irises.shape == (item.frames, 2, 3)
    video = pack.item("astro")
    np.testing.assert_array_equal(pack.arrays(video).frame_index, np.arange(VIDEO_FRAMES))
    small = pack.frames(video, size=128)
    assert small.shape == (VIDEO_FRAMES, 128, 128, 3)
    arrays = pack.arrays(video)
    np.testing.assert_allclose(arrays.scaled(0.5).landmarks, arrays.landmarks * 0.5)
    np.testing.assert_array_equal(arrays.scaled(0.5).params, arrays.params)


def test_landmarks_land_on_the_face_in_the_crop(packed, face_stack):
    out, _, _ = packed
    pack = Pack.open(out)
    for item in pack.items:
        crop, arrays = pack.frames(item)[0], pack.arrays(item)
        seen = face_stack.analyze(crop)[0].landmarks[list(KEY_LANDMARKS), :2]
        distance = np.linalg.norm(seen - arrays.landmarks[0, :, :2], axis=1)
        assert np.median(distance) < 3.0, item.id
        # Eyes where align_face puts them: level, either side of the centre, upper half.
        right = arrays.landmarks[0, positions(RIGHT_EYE_RING), :2].mean(0)
        left = arrays.landmarks[0, positions(LEFT_EYE_RING), :2].mean(0)
        assert right[0] < 128 < left[0] and abs(right[1] - left[1]) < 6
        assert 60 < (right[1] + left[1]) / 2 < 128
        np.testing.assert_allclose(arrays.irises[0, :, :2], [right, left], atol=4)


def test_decoded_crops_match_the_source_through_params(packed, inputs):
    """Crops rebuilt from the recorded params and the source match what was stored:
    the clip (H.264) closely, the photo (PNG) exactly."""
    from likeness.faces.align import AlignParams, warp_crop
    from likeness.media import iter_frames, read_image

    pack = Pack.open(packed[0])
    video = pack.item("astro")
    frames, params = pack.frames(video), pack.arrays(video).params
    sources = [f.image for f in iter_frames(inputs["video"])]
    for k in (0, VIDEO_FRAMES // 2, VIDEO_FRAMES - 1):
        expected = warp_crop(sources[k], AlignParams(*map(float, params[k])), 256).image
        assert psnr(frames[k], expected) > 30
    photo = pack.item("astro-photo")
    p = pack.arrays(photo).params[0]
    expected = warp_crop(read_image(inputs["photo"]), AlignParams(*map(float, p)), 256).image
    assert psnr(pack.frames(photo)[0], expected) > 45


def test_every_and_max_frames_per_clip(tmp_path, inputs, face_stack):
    out = tmp_path / "pack"
    config = PackConfig(every=2, max_frames_per_clip=4)
    report = write_pack([inputs["video"]], out, config, stack=face_stack)
    (item,) = report.items
    assert item["frames"] == 4 and item["every"] == 2 and item["fps"] == 12.5
    pack = Pack.open(out)
    np.testing.assert_array_equal(pack.arrays(pack.items[0]).frame_index, [0, 2, 4, 6])
    assert len(pack.frames(pack.items[0])) == 4


def test_split_file_decides_the_split_and_is_recorded(tmp_path, inputs, face_stack):
    split = tmp_path / "my-split.tsv"
    split.write_text("# mine\nidentity\tsplit\nastro\ttest\n")
    out = tmp_path / "pack"
    config = PackConfig(split_file=split)
    write_pack([inputs["video"]], out, config, stack=face_stack)
    pack = Pack.open(out, split_file=split)
    assert [i.split for i in pack.items] == ["test"]
    assert pack.manifest["split"]["sha256"] == hashlib.sha256(split.read_bytes()).hexdigest()
    with pytest.raises(InputError, match="different split file"):
        Pack.open(out, split_file=default_split_path())


# --- the command and its errors --------------------------------------------------------


def test_cli_packs_refuses_to_overwrite_and_replaces_with_force(capsys, home, tmp_path, inputs):
    out = tmp_path / "pack"
    code, stdout, err = run_cli(capsys, "dataset", "pack", inputs["video"], "-o", out)
    assert code == 0, err
    assert "1 video(s) (6 frames" in stdout and "train:" in stdout
    before = (out / MANIFEST_NAME).read_bytes()
    code, _, err = run_cli(capsys, "dataset", "pack", inputs["video"], "-o", out)
    assert code == 2 and "already exists" in err and "--force" in err
    assert (out / MANIFEST_NAME).read_bytes() == before
    code, _, err = run_cli(
        capsys, "dataset", "pack", inputs["video"], inputs["photo"], "-o", out, "--force"
    )
    assert code == 0, err
    assert len(Pack.open(out).items) == 2
    assert not leftovers(tmp_path)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["settings"]["smooth_keypoints"] is True
    raw = tmp_path / "raw"
    code, _, err = run_cli(capsys, "dataset", "pack", inputs["video"], "-o", raw, "--raw-keypoints")
    assert code == 0, err
    assert json.loads((raw / MANIFEST_NAME).read_text())["settings"]["smooth_keypoints"] is False


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such file or folder"),
        ("text", "notes.mp4"),
        ("empty-folder", "no video or photo found"),
        ("no-face", "no face found"),
        ("no-output-folder", "does not exist"),
        ("not-a-pack", "not a likeness pack"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_leaves_nothing(
    capsys, home, tmp_path, inputs, case, message
):
    out = tmp_path / "pack"
    src: Path = inputs["video"]
    if case == "missing":
        src = tmp_path / "nope.mp4"
    elif case == "text":
        src = inputs["text"]
    elif case == "empty-folder":
        src = tmp_path / "empty"
        src.mkdir()
    elif case == "no-face":
        src = inputs["blank"]
    elif case == "no-output-folder":
        out = tmp_path / "missing" / "pack"
    elif case == "not-a-pack":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    extra = ["--force"] if case == "not-a-pack" else []
    code, _, err = run_cli(capsys, "dataset", "pack", src, "-o", out, *extra)
    assert code == 2, err
    assert message in err and "Traceback" not in err
    lines = err.strip().splitlines()  # one error line, after any warnings
    assert lines[-1].startswith("error:") and all(
        line.startswith("warning:") for line in lines[:-1]
    )
    if case == "not-a-pack":
        assert (out / "keep.txt").read_text() == "mine"  # --force never deletes it
    else:
        assert not out.exists()
    assert not leftovers(tmp_path)


def test_reader_refuses_what_is_not_a_good_pack(tmp_path, packed):
    with pytest.raises(InputError, match="no such folder"):
        Pack.open(tmp_path / "nothing")
    with pytest.raises(InputError, match="not a likeness pack"):
        Pack.open(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="not a likeness pack"):
        Pack.open(tmp_path)

    def damaged(change) -> Path:
        import shutil

        copy = tmp_path / f"copy{len(list(tmp_path.iterdir()))}"
        shutil.copytree(packed[0], copy)
        manifest = json.loads((copy / MANIFEST_NAME).read_text())
        change(copy, manifest)
        (copy / MANIFEST_NAME).write_text(json.dumps(manifest))
        return copy

    newer = damaged(lambda root, m: m.update(version=PACK_VERSION + 1))
    with pytest.raises(InputError, match="version"):
        Pack.open(newer)
    gone = damaged(lambda root, m: (root / "clips" / "astro.mp4").unlink())
    with pytest.raises(InputError, match="missing"):
        Pack.open(gone)
    escape = damaged(lambda root, m: m["items"][0].update(file="../../etc/passwd"))
    with pytest.raises(InputError, match="outside the pack"):
        Pack.open(escape)
    miscounted = damaged(lambda root, m: m["items"][0].update(frames=VIDEO_FRAMES + 1))
    pack = Pack.open(miscounted)
    with pytest.raises(InputError, match="frames"):
        pack.frames(pack.item("astro"))
    with pytest.raises(InputError, match="shape"):
        pack.arrays(pack.item("astro"))
    with pytest.raises(InputError, match="unknown split"):
        pack.select(split="holdout")


def test_reader_runs_without_pyav_or_the_face_stack():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['av'] = None; sys.modules['likeness.faces'] = None; "
        "sys.modules['likeness.media'] = None; import likeness.datasets.pack_reader"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_item_ids_are_unique_and_prefer_videos():
    names = ["a/lp-d9.jpg", "lp-d9.mp4", "x/clip.mp4", "y/clip.mp4", "we ird?.png"]
    kinds = ["photo", "video", "video", "video", "photo"]
    assert assign_ids(names, kinds) == ["lp-d9-photo", "lp-d9", "clip", "clip-2", "we-ird"]


def test_no_face_anywhere_is_a_no_face_error(tmp_path, inputs, face_stack):
    with pytest.raises(NoFaceError):
        write_pack([inputs["blank"]], tmp_path / "pack", stack=face_stack)
    assert not list(tmp_path.iterdir())


# --- identities and the split ----------------------------------------------------------


def test_identity_rules():
    assert identity_for("videos/dt-m030-front-angry-level3-001.mp4") == "m030"
    assert identity_for("st2-andrew-clip-2.mp4") == "andrew"
    assert identity_for("st2-sadgirl-clip1.mp4") == "st2-sadgirl"
    assert identity_for("df-img11_reflection.jpg") == DEEPFACE
    for name in ("st2-obama-clip3.mp4", "ed-uncrop-obama.mp4", "fr-obama.jpg", "fr-obama2.jpg"):
        assert identity_for(name) == "obama"
    # One stem, two people: LivePortrait's d9 video is a man, its d9 photo a woman.
    assert identity_for("lp-d9.mp4") != identity_for("lp-d9.jpg")
    assert identity_for("somebody-new.mp4") == "somebody-new"


def test_split_file_is_identity_disjoint_and_deepface_trains():
    text = default_split_path().read_text()
    rows = [
        line.split("\t")
        for line in text.splitlines()
        if line.strip() and not line.startswith("#") and line != "identity\tsplit"
    ]
    identities = [r[0] for r in rows]
    assert len(identities) == len(set(identities)), "an identity is listed twice"
    table = load_split()
    assert set(table.splits.values()) == set(SPLITS)
    assert table.split_for(DEEPFACE) == "train"
    assert table.split_for("never-heard-of") == "train"
    with pytest.raises(InputError, match="already in"):
        parse_split("a\ttest\na\ttrain\n")
    with pytest.raises(InputError, match="must be train"):
        parse_split("deepface\ttest\n")
    with pytest.raises(InputError, match="line 1"):
        parse_split("a\tholdout\n")


@pytest.mark.corpus
def test_every_corpus_file_has_a_listed_identity_and_the_split_is_sized(corpus):
    with open(corpus / "MANIFEST.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    table = load_split()
    frames = dict.fromkeys(SPLITS, 0)
    photos = dict.fromkeys(SPLITS, 0)
    for row in rows:
        identity = identity_for(row["file"])
        assert identity in table.splits, f"{row['file']} ({identity}) is not in split.tsv"
        split = table.split_for(identity)
        if row["kind"] == "video":
            frames[split] += int(row["frames"])
        else:
            photos[split] += 1
        if row["file"].startswith("photos/df-"):
            assert split == "train"
    total = sum(frames.values())
    assert 0.12 <= frames["test"] / total <= 0.15
    assert 0.06 <= frames["val"] / total <= 0.10
    assert photos["test"] >= 5 and photos["val"] >= 2
    assert len(table.identities("test")) >= 8


# --- synthetic motion ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_warped_points_follow_the_image(seed):
    rng = np.random.default_rng(seed)
    size = 256
    points = np.array([[128.0, 96.0, 10.0], [80.0, 170.0, -5.0], [180.0, 150.0, 0.0]])
    points[:, :2] += rng.uniform(-10, 10, size=(3, 2))
    image = np.zeros((size, size, 3), np.uint8)
    for x, y, _ in points:
        cv2.circle(image, (round(x * 16), round(y * 16)), 40, (255, 255, 255), -1,
                   cv2.LINE_AA, shift=4)  # fmt: skip
    warped, moved = random_warp(image, points, rng)
    assert warped.shape == image.shape and moved.shape == points.shape
    grey = warped[..., 0].astype(np.float64)
    for x, y, _ in moved:
        x0, y0 = round(float(x)), round(float(y))
        window = grey[y0 - 8 : y0 + 9, x0 - 8 : x0 + 9]
        ys, xs = np.mgrid[y0 - 8 : y0 + 9, x0 - 8 : x0 + 9]
        centre = np.array([(window * xs).sum(), (window * ys).sum()]) / window.sum()
        assert np.linalg.norm(centre - [x, y]) < 1.5
    shift = np.linalg.norm(moved[:, :2] - points[:, :2], axis=1)
    assert shift.max() < 0.25 * size
    np.testing.assert_allclose(moved[2, 2], 0.0)
    assert 0.7 < moved[0, 2] / points[0, 2] < 1.4  # depth follows the local scale


def test_zero_strength_is_the_identity_and_moves_are_invertible():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(64, 80, 3), dtype=np.uint8)
    points = np.array([[10.0, 20.0], [40.5, 33.25]])
    same, still = random_warp(image, points, rng, strength=0.0)
    np.testing.assert_array_equal(same, image)
    np.testing.assert_allclose(still, points, atol=1e-4)
    warp = draw_warp(80, 64, np.random.default_rng(1))
    np.testing.assert_allclose(warp.source_of(warp.forward(points)), points, atol=1e-3)


def test_corpus_index_lists_a_file_stored_under_two_names_once(tmp_path):
    from likeness.datasets.corpus import manifest_rows
    from likeness.datasets.pack import find_sources

    body = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for name, image in (("a.png", body), ("b.png", body), ("c.png", body[::-1].copy())):
        cv2.imwrite(str(tmp_path / name), image)
    digest = {
        name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        for name in ("a.png", "b.png", "c.png")
    }
    assert digest["a.png"] == digest["b.png"] != digest["c.png"]
    with (tmp_path / "MANIFEST.tsv").open("w", newline="") as fh:
        out = csv.writer(fh, delimiter="\t")
        out.writerow(["file", "kind", "sha256"])
        for name in ("a.png", "b.png", "c.png"):
            out.writerow([name, "photo", digest[name]])
    assert [r["file"] for r in manifest_rows(tmp_path)] == ["a.png", "c.png"]
    # a lookup by name still finds every name
    assert [r["file"] for r in manifest_rows(tmp_path, unique=False)] == ["a.png", "b.png", "c.png"]
    assert sorted(s.path.name for s in find_sources([tmp_path])) == ["a.png", "c.png"]
    (tmp_path / "MANIFEST.tsv").write_text("name\tkind\nx.png\tphoto\n")
    with pytest.raises(InputError, match="no 'file' column"):
        manifest_rows(tmp_path)


@pytest.mark.corpus
def test_the_shared_corpus_index_holds_each_file_once(corpus):
    from likeness.datasets.corpus import manifest_rows

    rows = manifest_rows(corpus)
    assert len({r["sha256"] for r in rows}) == len(rows)
    assert "videos/r3dp-may5s.mp4" not in {r["file"] for r in rows}  # = ap-pose-ref.mp4
