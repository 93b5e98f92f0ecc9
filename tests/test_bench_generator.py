"""`likeness bench generator`: the metric functions on hand-made inputs, and a quick run
of the whole benchmark on a tiny random model and face clips made here (plumbing, not
quality: a random model's figures mean nothing)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from likeness.bench import face_metrics as fm
from likeness.bench import generator as bench
from likeness.bench import generator_inputs as inputs_mod
from likeness.bench import generator_quality as quality
from likeness.errors import ModelError, SetupError
from likeness.generator.motion import euler_to_matrix
from tests import samples

RNG = np.random.default_rng(7)


def mesh(seed: int = 0) -> np.ndarray:
    """A face-sized cloud of 468 points (pixels): enough structure for the fits."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(60, 200, 468), rng.uniform(50, 220, 468),
                            rng.normal(0, 20, 468)])  # fmt: skip


def similarity(points: np.ndarray, yaw: float, pitch: float, roll: float, scale: float,
               shift: tuple[float, float, float]) -> np.ndarray:  # fmt: skip
    centre = points.mean(0)
    rot = euler_to_matrix(yaw, pitch, roll)
    return scale * (points - centre) @ rot.T + centre + np.asarray(shift)


# ---------------------------------------------------------------- metrics


def test_akd_identical_is_zero_and_shift_is_its_length():
    a = mesh()
    assert fm.akd(a, a) == 0
    b = a.copy()
    b[:, :2] += (3.0, 4.0)
    b[:, 2] += 50  # depth is not part of AKD
    assert fm.akd(b, a) == pytest.approx(5.0)


def test_aed_ignores_head_pose_but_sees_expression():
    a = mesh()
    posed = similarity(a, 20, -10, 15, 1.3, (12, -7, 4))
    assert fm.aed(posed, a) == pytest.approx(0, abs=1e-6)
    assert fm.akd(posed, a) > 5  # AKD does see the pose
    smiling = a.copy()
    smiling[[61, 291], 1] -= 6.0  # mouth corners up: not rigid points
    assert 61 not in fm.RIGID_MESH and 291 not in fm.RIGID_MESH
    got = fm.aed(similarity(smiling, 20, -10, 15, 1.3, (12, -7, 4)), a)
    assert got == pytest.approx(2 * 6.0 / 468, rel=0.05)


def test_apd_of_a_known_pose_difference_and_wrap_around():
    assert fm.apd(np.array([10.0, 5, -3]), np.array([4.0, 5, 2])).tolist() == [6, 0, 5]
    assert fm.apd(np.array([179.0, 0, 0]), np.array([-179.0, 0, 0]))[0] == pytest.approx(2)


def test_relative_pose_error_compares_changes_not_poses():
    # Driver turned 10 degrees; an output that starts elsewhere and turns 10 is perfect.
    err = fm.relative_pose_error(np.array([25.0, 3, 0]), np.array([15.0, 3, 0]),
                                 np.array([-5.0, 0, 1]), np.array([-15.0, 0, 1]))  # fmt: skip
    assert err.tolist() == pytest.approx([0, 0, 0])
    still = fm.relative_pose_error(np.array([15.0, 3, 0]), np.array([15.0, 3, 0]),
                                   np.array([-5.0, 0, 1]), np.array([-15.0, 0, 1]))  # fmt: skip
    assert still.tolist() == pytest.approx([10, 0, 0])


def test_cross_expression_error_compares_faces_of_other_size_and_pose():
    drv0, out0 = mesh(1), similarity(mesh(1), 5, 0, -20, 0.5, (30, 10, 0))
    drv = drv0.copy()
    drv[[13, 14], 1] += (-4.0, 4.0)  # the driver opens the mouth by 8 px
    # The same change on the half-size, rolled output face, seen with a head turn.
    out = out0.copy()
    rot = euler_to_matrix(5, 0, -20)
    out[[13, 14]] += 0.5 * np.array([[0, -4.0, 0], [0, 4.0, 0]]) @ rot.T
    out = similarity(out, -10, 4, 3, 1.1, (5, 5, 0))
    assert fm.cross_expression_error(out, out0, drv, drv0) == pytest.approx(0, abs=1e-6)
    unchanged = fm.cross_expression_error(out0, out0, drv, drv0)
    assert unchanged == pytest.approx(8 / 468, rel=0.05)


def test_gaze_coords_are_relative_to_the_eye_corners():
    lm = np.zeros((468, 3))
    lm[133], lm[33] = (100, 100, 0), (60, 100, 0)  # right eye: inner, outer
    lm[362], lm[263] = (140, 100, 0), (180, 100, 0)  # left eye: inner, outer
    irises = np.array([[80.0, 100], [160, 100]])
    assert np.allclose(fm.gaze_coords(lm, irises), [[0.5, 0], [0.5, 0]])
    # Twice the face, same gaze: same coordinates.
    big = fm.gaze_coords(lm * 2, irises * 2)
    assert fm.gaze_error(big, fm.gaze_coords(lm, irises)) == pytest.approx(0)
    # Both irises 4 px (a tenth of an eye width) towards the image's left.
    moved = fm.gaze_coords(lm, irises - (4, 0))
    assert fm.gaze_error(moved, fm.gaze_coords(lm, irises)) == pytest.approx(0.1)


def test_affine_baseline_recovers_a_known_affine_warp():
    src = RNG.uniform(20, 230, (55, 2))
    truth = np.array([[1.1, 0.15, -8.0], [-0.05, 0.92, 12.0]])
    dst = src @ truth[:, :2].T + truth[:, 2]
    assert np.allclose(fm.affine_fit(src, dst), truth, atol=1e-9)
    image = cv2.resize(RNG.integers(0, 255, (32, 32, 3), dtype=np.uint8), (256, 256))
    warped = fm.affine_warp(image, truth)
    # A point of the source lands where the map sends it.
    y, x = 120, 100
    tx, ty = truth @ np.array([x, y, 1.0])
    assert np.abs(warped[round(ty), round(tx)].astype(int) - image[y, x]).max() <= 24


def test_psnr_ssim_l1_and_face_mask():
    a = RNG.integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    same = fm.image_scores(a, a)
    assert same.ssim == pytest.approx([1, 1]) and same.l1.tolist() == [0, 0]
    assert (same.psnr >= 99).all()
    b = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    diff = a.astype(float) - b
    assert fm.psnr(a[0], b[0]) == pytest.approx(10 * math.log10(255**2 / (diff[0] ** 2).mean()))
    assert fm.image_scores(a, b).l1.mean() == pytest.approx(np.abs(diff).mean() / 255)
    lm = np.zeros((468, 3))
    t = np.linspace(0, 2 * np.pi, len(fm.FACE_OVAL), endpoint=False)
    lm[list(fm.FACE_OVAL), 0] = 32 + 20 * np.cos(t)
    lm[list(fm.FACE_OVAL), 1] = 32 + 20 * np.sin(t)
    mask = fm.face_mask(lm, 64)
    assert mask[32, 32] and not mask[2, 2]
    assert mask.sum() == pytest.approx(math.pi * 20**2, rel=0.1)
    c = a[0].copy()
    c[~mask] = 0  # damage outside the face only
    assert fm.psnr(c, a[0], mask) >= 99 > fm.psnr(c, a[0])


def test_keypoints_move_into_the_first_crop():
    from likeness.faces.geometry import apply_affine_3d, compose_affine, invert_affine
    from likeness.generator import keypoints as kpt

    size = 64
    frame_pts = np.column_stack([RNG.uniform(100, 300, (5, 2)), RNG.normal(0, 5, 5)])
    m0 = np.array([[0.5, 0.0, -40.0], [0.0, 0.5, -30.0]])
    m1 = np.array([[0.4, 0.1, -20.0], [-0.1, 0.4, -10.0]])
    kps = np.stack([kpt.normalise(apply_affine_3d(m, frame_pts), size) for m in (m0, m1)])
    clip = inputs_mod.Clip("c", "c", Path("c.mp4"), np.zeros((2, size, size, 3), np.uint8),
                      np.stack([m0, m1]), kps)  # fmt: skip
    first = inputs_mod.to_first_crop(clip)
    # The same frame points, whichever crop measured them.
    assert np.allclose(first[1], first[0], atol=1e-5)
    assert np.allclose(compose_affine(m0, invert_affine(m0)), [[1, 0, 0], [0, 1, 0]])


def test_beats_baselines_and_cross_pairs():
    table = {
        "ours": {"psnr": 25.0, "akd": 1.0},
        "affine": {"psnr": 24.0, "akd": 1.0},
        "no_motion": {"psnr": 23.0, "akd": 2.0},
    }
    assert quality.beats_baselines(table, ("psnr", "akd", "gaze")) == {
        "psnr": True, "akd": False, "gaze": None,
    }  # fmt: skip
    table["learned"] = {"psnr": 25.0, "akd": 1.5, "mouth_corr": 0.6}
    table["ours"]["mouth_corr"] = 0.5
    # At least as good as the mesh: ties count, worse does not, unmeasured is None.
    assert quality.learned_vs_mesh(table, ("psnr", "akd", "mouth_corr", "gaze")) == {
        "psnr": True, "akd": False, "mouth_corr": True, "gaze": None,
    }  # fmt: skip
    empty = np.zeros((2, 4, 4, 3), np.uint8)

    def clip(name: str, identity: str) -> inputs_mod.Clip:
        return inputs_mod.Clip(
            name, identity, Path(name), empty, np.zeros((2, 2, 3)), np.zeros((2, 3, 3))
        )

    def photo(identity: str) -> inputs_mod.Photo:
        return inputs_mod.Photo(identity, identity, Path(identity), empty[0], np.zeros((3, 3)))

    clips = [clip("a1", "a"), clip("a2", "a"), clip("b", "b"), clip("c", "c")]
    inputs = inputs_mod.BenchInputs(clips, [photo("a"), photo("x"), photo("y")], "test")
    pairs = quality.cross_pairs(inputs, 2)
    assert len(pairs) == 6
    assert all(p.identity != c.identity for p, c in pairs)
    assert {c.name for _, c in pairs} == {"a1", "b", "c"}  # one clip per identity


# ---------------------------------------------------------------- the benchmark


@pytest.fixture(scope="module")
def held_out(tmp_path_factory, astronaut: np.ndarray) -> inputs_mod.Sources:
    """Two clips of two 'people' (the astronaut and her mirror image) and a photo."""
    folder = tmp_path_factory.mktemp("bench-inputs")
    mirror = np.ascontiguousarray(astronaut[:, ::-1])
    videos = (
        samples.face_video(folder / "astro-a.mp4", astronaut, frames=8),
        samples.face_video(folder / "astro-b.mp4", mirror, frames=8),
    )
    photo = folder / "portrait.png"
    cv2.imwrite(str(photo), cv2.cvtColor(cv2.resize(astronaut, (256, 256)), cv2.COLOR_RGB2BGR))
    return inputs_mod.Sources(videos, (photo,), "made by the test")


def test_quick_bench_writes_tables_and_signed_media(
    home, models_root, tiny_weights, held_out, tmp_path, monkeypatch
):
    from likeness.provenance import keys as keys_mod
    from likeness.provenance.verify import verify_file

    monkeypatch.delenv(keys_mod.PASSPHRASE_ENV, raising=False)
    keys_mod.init_keys(passphrase="")
    out = tmp_path / "out"
    path = bench.run(out, quick=True, weights=tiny_weights, sources=held_out)
    result = json.loads(path.read_text())

    assert result["benchmark"] == "generator"
    assert result["model"]["weights_sha256"] and result["model"]["output_size"] == 64
    assert set(result["method"]) >= {"self_reenactment", "cross_reenactment", "baselines"}
    assert result["inputs"]["clips"] == ["astro-a.mp4", "astro-b.mp4"]
    # Self-reenactment also drives the model with its own extractor (learnt keypoints).
    assert set(result["self_reenactment"]["overall"]) == {"ours", "affine", "no_motion", "learned"}
    assert set(result["cross_reenactment"]["overall"]) == {"ours", "affine", "no_motion"}
    self_rows = result["self_reenactment"]["clips"]
    assert len(self_rows) == 2 and self_rows[0]["frames"] == 7
    for method in ("ours", "affine", "no_motion", "learned"):
        assert {"psnr", "ssim", "l1", "face_psnr", "face_lost"} <= set(self_rows[0][method])
    # Consecutive frames with animate's smoothing: every clip, its frames in a row.
    consecutive = result["self_reenactment_consecutive"]
    assert "self_reenactment_consecutive" in result["method"]
    assert [r["clip"] for r in consecutive["clips"]] == ["astro-a.mp4", "astro-b.mp4"]
    assert all(r["frames"] == 7 for r in consecutive["clips"])  # 8 frames in each clip
    overall = consecutive["overall"]
    assert overall["psnr"] > 10 and 0 < overall["motion_error"] < 0.5
    # Two people, one photo, one driver each in a quick run; never the photo's identity.
    assert result["inputs"]["cross_pairs"] == ["portrait.png x astro-a.mp4"]
    speed = result["speed"]
    assert speed["model_only_cpu"]["fps"] > 0
    assert speed["end_to_end_cpu"]["measured"] and speed["end_to_end_cpu"]["frames"] == 8
    # The astronaut clips are 256 px: no source video big enough for the video-source row.
    assert speed["end_to_end_video_source_cpu"]["measured"] is False
    assert set(result["targets"]) == {
        "beats_both_baselines", "self_psnr", "self_ssim", "end_to_end_cpu_fps",
        "end_to_end_video_source_cpu_fps", "learned_at_least_mesh",
    }  # fmt: skip
    learned = result["targets"]["learned_at_least_mesh"]
    assert set(learned["per_metric"]) >= {"psnr", "ssim", "l1", "akd", "gaze", "mouth_corr"}

    root = keys_mod.export_trust(tmp_path / "root.pem")
    video = verify_file(out / "generator.mp4", [root])
    assert video.manifest == "trusted" and video.watermark_found
    assert result["outputs"]["video"]["frames"] == 2 * 7 + 7
    grid = verify_file(out / "generator.png", [root])
    assert grid.manifest == "trusted"


def test_bench_errors_are_one_line(home, tiny_weights, held_out, tmp_path):
    with pytest.raises(ModelError, match="generator weights not found"):
        bench.run(tmp_path / "a", quick=True, weights=tmp_path / "none", sources=held_out)
    with pytest.raises(SetupError, match="likeness keys init"):  # no keys in this home
        bench.run(tmp_path / "b", quick=True, weights=tiny_weights, sources=held_out)
    assert not (tmp_path / "b" / "generator.json").exists()


def test_cli_passes_weights_and_refuses_them_elsewhere(capsys, home, tmp_path):
    from likeness.cli import main

    code = main(["bench", "generator", "-o", str(tmp_path), "--weights", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "generator weights not found" in err and str(tmp_path / "x") in err
    code = main(["bench", "faces", "-o", str(tmp_path), "--weights", str(tmp_path)])
    assert (
        code == 2 and "--weights does not apply to the faces benchmark" in capsys.readouterr().err
    )


def test_a_corpus_file_the_media_layer_refuses_is_left_out_with_its_reason(tmp_path, face_stack):
    """A truncated test clip and a PNG renamed .mp4 in the held-out set: the benchmark
    notes each with its one-line reason and goes on (it stopped at lrd-sample.mp4)."""
    frames = [np.full((64, 64, 3), 40 + i, np.uint8) for i in range(12)]
    clip = samples.write_clip(tmp_path / "clip.mp4", frames)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    renamed = tmp_path / "photo.mp4"
    renamed.write_bytes(samples.png_bytes(frames[0]))
    got = inputs_mod.BenchInputs([], [], "test")
    inputs_mod._load_all(got, [cut, renamed], [], face_stack, 64, True, lambda: None)
    assert not got.clips and len(got.notes) == 2
    assert "cut.mp4" in got.notes[0] and "photo.mp4" in got.notes[1]
    assert all(n.endswith(", left out") for n in got.notes)
