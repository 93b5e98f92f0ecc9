"""`likeness animate`: the pipeline, scripted motion, provenance of the output, and clear
errors without partial output.

Most tests use a tiny randomly initialised model (64 px, made once per session) and
256 px inputs, so they judge plumbing, not looks. The quality tests at the end need the
shipped weights and skip without them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from likeness.errors import InputError, NoFaceError
from likeness.generator import keypoints as kpt
from likeness.generator import scripted
from likeness.pipelines.animate import AnimateConfig, animate, crop_source, prepare
from tests import samples
from tests.samples import decode, psnr, run_cli, write_clip

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 256
SHIPPED = Path(__file__).resolve().parents[1] / "likeness" / "weights" / "generator"
needs_shipped = pytest.mark.skipif(
    not (SHIPPED / "model.safetensors").is_file(),
    reason=f"shipped generator weights not in {SHIPPED} yet (quality tests need them)",
)


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("animate-inputs")


@pytest.fixture(scope="session")
def photo(inputs: Path, astronaut: np.ndarray) -> Path:
    small = cv2.resize(astronaut, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return write_png(inputs / "photo.png", small)


@pytest.fixture(scope="session")
def driving(inputs: Path, astronaut: np.ndarray) -> Path:
    return samples.face_video(inputs / "driving.mp4", astronaut, frames=12, size=SIZE, audio=True)


@pytest.fixture(scope="session")
def source_kp(face_stack, astronaut: np.ndarray) -> np.ndarray:
    """The astronaut's keypoints in her 256 px crop."""
    source = load_source(astronaut, face_stack, SIZE, AnimateConfig(), "astronaut")
    return source.keypoints


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


def write_png(path: Path, rgb: np.ndarray) -> Path:
    path.write_bytes(samples.png_bytes(rgb))
    return path


# ---------------------------------------------------------------- end to end, tiny model


def test_animate_follows_the_driving_video_and_verifies(
    capsys, root_pem, tiny_weights, photo, driving, outdir
):
    from likeness.hashing import sha256_file
    from likeness.media import probe
    from likeness.provenance.verify import verify_file

    out = outdir / "animated.mp4"
    code, stdout, err = run_cli(
        capsys, "animate", photo, driving, "-o", out, "--weights", tiny_weights
    )
    assert code == 0, err
    info = probe(out)
    assert (info.frames, info.fps) == (12, 25.0)
    assert (info.width, info.height) == (SIZE, SIZE)  # pasted back into the photo
    assert info.has_audio
    verdict = verify_file(out, [root_pem])
    assert verdict.manifest == "trusted" and verdict.watermark_found, verdict.reasons
    summary = verdict.summary
    assert summary.ingredients == ["photo.png", "driving.mp4"]
    assert summary.digital_source_type.endswith("trainedAlgorithmicMedia")
    weights_hash = sha256_file(tiny_weights / "model.safetensors")
    assert summary.model == {"name": "likeness-portrait-tiny", "hash": weights_hash}
    payload = verdict.watermark.payload
    assert "signed (C2PA) and watermarked" in stdout and str(payload.content_id) in stdout
    assert "12 frames at 25 fps" in stdout

    code, stdout, _ = run_cli(capsys, "verify", out, "--trust", root_pem)
    assert code == 0 and "trusted" in stdout and "found" in stdout


def test_library_api_crop_only_without_audio(keys, tiny_weights, photo, driving, outdir):
    from likeness.media import probe

    config = AnimateConfig(
        weights=tiny_weights, paste_back=False, audio=False, max_frames=5, keypoints="learned",
        batch_size=2, relative=False, region="lips", smooth=False,
    )  # fmt: skip
    result = animate(photo, outdir / "crop.mp4", driving, config)
    assert (result.frames, result.fps, result.faces_missing) == (5, 25.0, 0)
    info = probe(result.output)
    # The tiny model's 64 px crops are enlarged to the smallest picture that can carry a
    # readable watermark (WatermarkConfig.min_side).
    from likeness.provenance.watermark import WatermarkConfig

    assert (info.width, info.frames, info.has_audio) == (WatermarkConfig().min_side, 5, False)
    assert result.sign.target == outdir / "crop.mp4" and result.seconds > 0


def test_scripted_motion_needs_no_driving_video(capsys, keys, tiny_weights, photo, outdir):
    from likeness.media import probe
    from likeness.provenance.verify import verify_file

    out = outdir / "scripted.mp4"
    code, _, err = run_cli(
        capsys, "animate", photo, "--motion", "nod, blink,talk", "--fps", 10, "-o", out,
        "--weights", tiny_weights, "--crop-only",
    )  # fmt: skip
    assert code == 0, err
    info = probe(out)
    assert (info.frames, info.fps, info.has_audio) == (60, 10.0, False)  # 3 motions x 2 s
    assert verify_file(out).summary.ingredients == ["photo.png"]


def test_two_faces_use_the_largest_and_say_so(
    capsys, keys, tiny_weights, astronaut, inputs, tmp_path
):
    big = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    small = cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA)
    canvas = np.full((256, 448, 3), 90, np.uint8)
    canvas[:, :256], canvas[48:208, 280:440] = big, small
    two = write_png(inputs / "two.png", canvas)
    out = tmp_path / "two.mp4"
    code, stdout, err = run_cli(
        capsys, "animate", two, "--motion", "blink", "--fps", 5, "-o", out,
        "--weights", tiny_weights, "--max-frames", 3,
    )  # fmt: skip
    assert code == 0, err
    assert "2 faces in two.png; animating the largest" in stdout
    config = AnimateConfig(weights=tiny_weights)
    centre = prepare(two, inputs / "x.mp4", motion="nod", config=config).source.crop.params.cx
    assert centre < 256  # the big face, on the left
    other = AnimateConfig(weights=tiny_weights, face=1)
    assert prepare(two, inputs / "x.mp4", motion="nod", config=other).source.crop.params.cx > 256
    code, _, err = run_cli(
        capsys, "animate", two, "--motion", "nod", "-o", out, "--weights", tiny_weights,
        "--face", 2,
    )  # fmt: skip
    assert code == 2 and "--face 2" in err


def test_two_people_photo_from_the_corpus(corpus, keys, tiny_weights, tmp_path):
    job = prepare(
        corpus / "photos" / "fr-two-people.jpg",
        tmp_path / "x.mp4",
        motion="nod",
        config=AnimateConfig(weights=tiny_weights),
    )
    assert job.source.faces == 2
    assert any("2 faces" in note and "largest" in note for note in job.notes)


def test_faceless_driving_frames_ease_to_neutral(
    capsys, keys, tiny_weights, photo, astronaut, inputs, outdir
):
    face = cv2.resize(astronaut, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    grey = np.full_like(face, 128)
    # Two at the start (they take the first face's motion), three in the middle.
    frames = [grey if i in (0, 1, 5, 6, 7) else np.roll(face, i, axis=1) for i in range(12)]
    gappy = write_clip(inputs / "gappy.mp4", frames)
    out = outdir / "held.mp4"
    code, stdout, err = run_cli(
        capsys, "animate", photo, gappy, "-o", out, "--weights", tiny_weights
    )
    assert code == 0, err
    assert "5 of 12 driving frames had no face; eased back to neutral" in stdout
    from likeness.media import probe

    assert probe(out).frames == 12


def test_a_driving_video_without_any_face_is_refused(face_stack):
    from likeness.media import Frame
    from likeness.pipelines.driving import DrivingKeypoints

    model = type("M", (), {"config": type("C", (), {"output_size": 64})()})()
    tracker = DrivingKeypoints(face_stack, model, AnimateConfig(), 25.0)
    grey = np.full((96, 96, 3), 128, np.uint8)
    assert tracker.feed([Frame(i, i / 25, grey) for i in range(7)]) == []
    with pytest.raises(NoFaceError, match=r"any of the 7 frames of x\.mp4"):
        tracker.finish("x.mp4")


def test_an_error_mid_run_leaves_nothing(keys, tiny_weights, photo, driving, outdir, monkeypatch):
    job = prepare(
        photo, outdir / "x.mp4", driving, AnimateConfig(weights=tiny_weights, batch_size=4)
    )
    samples.fail_render_after(monkeypatch, job.model, 1)
    with pytest.raises(RuntimeError, match="boom"):
        job.run()
    assert list(outdir.iterdir()) == []


# ---------------------------------------------------------------- bad input


@pytest.fixture(scope="session")
def bad_inputs(inputs: Path, photo: Path, driving: Path) -> dict[str, Path]:
    from skimage import data

    grey = np.full((SIZE, SIZE, 3), 128, np.uint8)
    renamed = inputs / "renamed.mp4"
    renamed.write_bytes(photo.read_bytes())
    return {
        "coffee": write_png(inputs / "coffee.png", np.ascontiguousarray(data.coffee())),
        "grey": write_png(inputs / "grey.png", grey),
        "truncated": samples.truncated_copy(driving, inputs / "truncated.mp4"),
        "renamed": renamed,
        "faceless": write_clip(inputs / "faceless.mp4", [grey] * 6),
    }


BAD = [
    ("photo without a face", ["{coffee}", "{driving}"], "no face found in coffee.png"),
    ("flat grey photo", ["{grey}", "--motion", "nod"], "no face found in grey.png"),
    ("truncated driving video", ["{photo}", "{truncated}"], "truncated.mp4"),
    ("PNG named .mp4", ["{photo}", "{renamed}"], "renamed.mp4 is a PNG image, not a video"),
    ("no face in any frame", ["{photo}", "{faceless}"], "no face found in any of the 6 frames"),
    ("missing weights", ["{photo}", "{driving}", "--weights", "{missing}"], "weights not found"),
    ("neither driving nor motion", ["{photo}"], "give a driving video"),
    ("both driving and motion", ["{photo}", "{driving}", "--motion", "nod"], "not both"),
    ("unknown motion", ["{photo}", "--motion", "nod,wink"], "unknown motion 'wink'"),
    ("bad region", ["{photo}", "{driving}", "--region", "nose"], "unknown region 'nose'"),
    ("missing photo", ["{nothing}", "{driving}"], "no such file"),
]


@pytest.mark.parametrize(("args", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_exit_2_and_no_output(
    capsys, keys, tiny_weights, photo, driving, bad_inputs, outdir, args, message
):
    names = {**bad_inputs, "photo": photo, "driving": driving}
    names |= {"missing": outdir.parent / "no-weights", "nothing": outdir.parent / "none.jpg"}
    argv = [a.format(**names) for a in args]
    argv += ["-o", outdir / "out.mp4"]
    if "--weights" not in argv:
        argv += ["--weights", tiny_weights]
    code, stdout, err = run_cli(capsys, "animate", *argv)
    assert code == 2, (stdout, err)
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert list(outdir.iterdir()) == []


def test_missing_keys_say_how_to_make_them(capsys, home, tiny_weights, photo, outdir):
    code, _, err = run_cli(
        capsys, "animate", photo, "--motion", "nod", "-o", outdir / "x.mp4",
        "--weights", tiny_weights,
    )  # fmt: skip
    assert code == 2 and "likeness keys init" in err
    assert list(outdir.iterdir()) == []


def test_config_checks_and_help(capsys):
    with pytest.raises(InputError, match="keypoints"):
        AnimateConfig(keypoints="dlib")
    with pytest.raises(InputError, match="batch-size"):
        AnimateConfig(batch_size=0)
    with pytest.raises(InputError, match="crop-scale"):
        AnimateConfig(crop_scale=9)
    code, stdout, _ = run_cli(capsys, "animate", "--help")
    assert code == 0
    for text in ("--motion", "--absolute", "--crop-only", "likeness animate photo.jpg"):
        assert text in stdout


# ---------------------------------------------------------------- geometry


def test_learned_keypoints_map_into_the_first_crop(face_stack, astronaut):
    """A face measured in another frame's crop lands where it lies in crop 0."""
    from likeness.faces import AlignConfig, align_face, warp_crop
    from likeness.faces.align import AlignParams
    from likeness.pipelines.driving import to_crop0

    face = face_stack.analyze(astronaut)[0]
    crop0 = align_face(astronaut, face, AlignConfig(size=SIZE))
    p = crop0.params
    other = warp_crop(astronaut, AlignParams(p.cx + 30, p.cy - 12, p.half * 1.3, 0.2), SIZE)
    measured = kpt.from_face(face.landmarks, face.irises, other.matrix, SIZE)
    expected = kpt.from_face(face.landmarks, face.irises, crop0.matrix, SIZE)
    np.testing.assert_allclose(to_crop0(measured, other, crop0.matrix, SIZE), expected, atol=1e-4)


def test_windowed_paste_matches_a_full_frame_paste(face_stack, astronaut):
    from likeness.faces.paste import PasteConfig, paste_back
    from likeness.pipelines.compositing import Composer

    source = load_source(astronaut, face_stack, SIZE, AnimateConfig(), "astronaut")
    rendered = np.ascontiguousarray(source.crop.image[:, ::-1])
    ours = Composer(source, paste_back=True)(rendered)
    full = paste_back(astronaut, rendered, source.crop, PasteConfig())
    assert ours.shape == astronaut.shape
    assert np.abs(ours.astype(int) - full.astype(int)).max() <= 1


# ---------------------------------------------------------------- scripted motion


def fake_retarget(part, kp, current, wanted):
    """Stands in for the trained networks: moves the lids or lips the asked amount."""
    out = np.zeros_like(kp)
    if part == "eyes":
        for side, (upper, lower) in enumerate(kpt.LID_ROWS):
            shut = 1 - wanted[:, side] / current[:, side]
            out[:, upper, :2] = (kp[:, lower, :2] - kp[:, upper, :2]) * shut[:, None]
        return out
    lower = kpt.MOUTH_ROWS[1]
    ref = np.linalg.norm(kp[:, kpt.AXIS_ROWS[1], :2] - kp[:, kpt.AXIS_ROWS[0], :2], axis=-1)
    out[:, lower, 1] = (wanted[:, 0] - current[:, 0]) * ref
    a, b = kpt.MOUTH_CORNER_ROWS
    half = (kp[:, b, :2] - kp[:, a, :2]) / 2 * (wanted[:, 1] / current[:, 1] - 1)[:, None]
    out[:, a, :2], out[:, b, :2] = -half, half
    return out


def load_source(image, stack, size: int, config: AnimateConfig, name: str):
    """The chosen face of the photo, cropped at `size`, and its keypoints."""
    return crop_source(image, stack.analyze(image), size, config, name)


def keypoint_pose(kp: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) of keypoints (K, 3), read as faces.pose reads a mesh (the
    keypoints keep the mesh's axis points; roll is relative to the crop)."""
    from likeness.faces.pose import head_pose

    mesh = np.zeros((468, 3))
    mesh[list(kpt.MESH_POINTS)] = np.asarray(kp, np.float64)[: kpt.N_MESH]
    return head_pose(mesh).as_tuple()


def poses(kps: np.ndarray) -> np.ndarray:
    return np.array([keypoint_pose(k) for k in kps])


def test_parse_motions():
    assert scripted.parse_motions(" Nod,blink , look-left") == ("nod", "blink", "look-left")
    with pytest.raises(InputError, match="use nod, shake"):
        scripted.parse_motions("nod,jump")
    with pytest.raises(InputError, match="at least one"):
        scripted.parse_motions(" , ")


def test_nod_and_shake_swing_both_ways_and_come_back(source_kp):
    base = keypoint_pose(source_kp)
    for name, axis in (("nod", 1), ("shake", 0)):
        kps = scripted.script_keypoints(source_kp, scripted.script([name], 25), fake_retarget)
        change = poses(kps)[:, axis] - base[axis]
        assert len(kps) == 50
        assert change.min() < -8 and change.max() > 8, name
        assert abs(change[0]) < 0.5 and abs(change[-1]) < 2, name  # starts and ends at rest
        if name == "nod":
            assert change[np.argmax(np.abs(change) > 3)] < 0  # down first, as people nod
        # Smooth: no step bigger than the swing's own peak speed (about 5 degrees a
        # frame for a 20 degree shake at 1 Hz, 25 fps), slow at both ends.
        assert np.abs(np.diff(change)).max() < 6, name
        assert abs(change[1] - change[0]) < 1 and abs(change[-1] - change[-2]) < 1, name


def test_look_left_turns_towards_the_image_left_and_back(source_kp):
    base = keypoint_pose(source_kp)[0]
    yaw = poses(scripted.script_keypoints(source_kp, scripted.script(["look-left"]), fake_retarget))
    yaw = yaw[:, 0] - base
    assert yaw[25] < -20  # held in the middle (faces.HeadPose: left is negative)
    assert abs(yaw[-1]) < 2 and abs(yaw[0]) < 0.5
    # And the nose tip really moves to the image's left.
    kps = scripted.script_keypoints(source_kp, scripted.script(["look-left"]), fake_retarget)
    nose = kpt.MESH_POINTS.index(1)
    assert kps[25, nose, 0] < source_kp[nose, 0] - 0.05


def test_look_up_raises_the_pitch(source_kp):
    base = keypoint_pose(source_kp)[1]
    kps = scripted.script_keypoints(source_kp, scripted.script(["look-up"]), fake_retarget)
    assert poses(kps)[25, 1] - base > 10


def test_blink_closes_the_eyes_and_opens_them_again(source_kp):
    plan = scripted.script(["blink"], 25)
    kps = scripted.script_keypoints(source_kp, plan, fake_retarget)
    open0 = kpt.eye_openness(source_kp)
    ratio = kpt.eye_openness(kps) / open0
    closest = int(np.argmin(ratio.mean(1)))
    assert ratio[closest].max() < 0.1  # both eyes shut
    assert abs(closest / 25 - (scripted.BLINK_AT + scripted.BLINK_SECONDS / 2)) < 0.05
    assert np.allclose(ratio[0], 1) and np.allclose(ratio[-1], 1)
    shut = ratio.mean(1) < 0.5
    assert 0.08 < shut.sum() / 25 < 0.25  # about a third of 0.3 s below half open


def test_smile_widens_the_mouth_and_talk_moves_it_irregularly(source_kp):
    gap0, width0 = kpt.mouth_shape(source_kp)
    smile = scripted.script_keypoints(source_kp, scripted.script(["smile"]), fake_retarget)
    gap, width = kpt.mouth_shape(smile).T
    assert width[25] / width0 == pytest.approx(1.15, abs=0.02)
    assert 0 < gap[25] - gap0 < 0.1
    plan = scripted.script(["talk"], 50)
    talk = scripted.script_keypoints(source_kp, plan, fake_retarget)
    opening = kpt.mouth_shape(talk)[:, 0] - gap0
    peaks = [i for i in range(1, len(opening) - 1) if opening[i - 1] < opening[i] >= opening[i + 1]]
    assert 5 <= len(peaks) <= 10  # 3-5 syllables a second over 2 s
    assert np.std(np.diff(peaks)) > 0.5 and opening.max() > 0.1
    assert np.std(opening[peaks]) > 0.01  # not a metronome: loudness varies


def test_multiplier_scales_scripted_motion():
    half = scripted.script(["shake", "blink"], 25, multiplier=0.5)
    full = scripted.script(["shake", "blink"], 25)
    np.testing.assert_allclose(half.angles, full.angles / 2)
    np.testing.assert_allclose(1 - half.eyes, (1 - full.eyes) / 2)


# ---------------------------------------------------------------- quality, shipped weights


@needs_shipped
def test_trained_blink_closes_the_eyes(source_kp):
    from likeness.generator.model import GeneratorModel

    model = GeneratorModel.from_pretrained()
    kps = scripted.script_keypoints(source_kp, scripted.script(["blink"]), model.retarget)
    ratio = kpt.eye_openness(kps) / kpt.eye_openness(source_kp)
    assert ratio.mean(1).min() < 0.5


@needs_shipped
def test_still_driving_video_reproduces_the_source(keys, face_stack, astronaut, tmp_path):
    """Relative motion from a video that does not move: the output crop is the source
    crop (PSNR >= 30 dB) after rendering, watermarking and H.264."""
    from likeness.generator.model import GeneratorModel

    size = GeneratorModel.from_pretrained().config.output_size
    photo = write_png(tmp_path / "astronaut.png", astronaut)
    still = write_clip(tmp_path / "still.mp4", [astronaut] * 8)
    config = AnimateConfig(paste_back=False, device="cpu")
    result = animate(photo, tmp_path / "still-out.mp4", still, config)
    source = load_source(astronaut, face_stack, size, config, "astronaut")
    frames = decode(result.output)
    assert len(frames) == 8
    scores = [psnr(f, source.crop.image) for f in frames]
    assert min(scores) >= 30.0, scores


def head_yaw(face_stack, frames: list[np.ndarray]) -> np.ndarray:
    return np.array([face_stack.analyze(f)[0].pose.yaw for f in frames])


@needs_shipped
def test_driving_head_turn_turns_the_output_head_the_same_way(
    keys, face_stack, corpus, astronaut, tmp_path
):
    """lp-d3's first 25 frames turn the head to the image's left (yaw about 0 to -17)."""
    from likeness.media import iter_frames

    clip = [
        cv2.resize(f.image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        for f in iter_frames(corpus / "videos" / "lp-d3.mp4", max_frames=25)
    ]
    driving_yaw = head_yaw(face_stack, [clip[0], clip[-1]])
    assert driving_yaw[1] - driving_yaw[0] < -10
    turning = write_clip(tmp_path / "turn.mp4", clip, fps=30)
    photo = write_png(tmp_path / "astronaut.png", astronaut)
    result = animate(photo, tmp_path / "turned.mp4", turning, AnimateConfig(device="cpu"))
    frames = decode(result.output)
    out_yaw = head_yaw(face_stack, [frames[0], frames[-1]])
    assert out_yaw[1] - out_yaw[0] < -5, out_yaw


@needs_shipped
def test_scripted_look_left_turns_the_output_head_left(keys, face_stack, astronaut, tmp_path):
    photo = write_png(tmp_path / "astronaut.png", astronaut)
    config = AnimateConfig(device="cpu", fps=10)
    result = animate(photo, tmp_path / "left.mp4", motion="look-left", config=config)
    frames = decode(result.output)
    out_yaw = head_yaw(face_stack, [frames[0], frames[10]])  # the hold, at 1 s
    assert out_yaw[1] - out_yaw[0] < -8, out_yaw
