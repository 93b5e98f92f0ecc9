"""`likeness animate SOURCE.mp4 DRIVING.mp4`: a video as the source.

A tiny random model (64 px) judges plumbing: frame count and rate, audio choice,
provenance, the source's still background staying still, bad input. Inputs are 256 px
and a dozen frames, so each test takes seconds on two cores.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from likeness.errors import InputError
from likeness.pipelines.animate import AnimateConfig, prepare
from tests import samples
from tests.samples import decode, run_cli, write_clip

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 256


FACE_BOX = (60, 50, 200, 230)  # x0, y0, x1, y1 of the astronaut's head at 256 px


@pytest.fixture(scope="module")
def clips(tmp_path_factory, astronaut) -> dict[str, Path]:
    """A source whose head nods a little over a still background, and drivers."""
    folder = tmp_path_factory.mktemp("video-source")
    base = cv2.resize(astronaut, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    x0, y0, x1, y1 = FACE_BOX
    frames = []
    for i in range(12):
        frame = base.copy()
        m = np.float32([[1, 0, 0], [0, 1, 1.5 * np.sin(i / 2)]])
        moved = cv2.warpAffine(base, m, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT)
        frame[y0:y1, x0:x1] = moved[y0:y1, x0:x1]
        frames.append(frame)
    driver = samples.face_video(folder / "driving.mp4", astronaut, frames=16, audio=True)
    fast = [cv2.warpAffine(base, np.float32([[1, 0, 3 * np.sin(i)], [0, 1, 0]]), (SIZE, SIZE))
            for i in range(10)]  # fmt: skip
    return {
        "source": write_clip(folder / "source.mp4", frames, crf=14),
        "driving": driver,
        "driving30": write_clip(folder / "driving30.mp4", fast, fps=30, crf=14),
        "faceless": write_clip(folder / "faceless.mp4", [np.full_like(base, 128)] * 6, crf=14),
    }


def test_video_source_keeps_length_rate_provenance_and_still_background(
    capsys, root_pem, tiny_weights, clips, tmp_path
):
    from likeness.media import probe
    from likeness.provenance.verify import verify_file

    out = tmp_path / "out.mp4"
    code, _, err = run_cli(
        capsys, "animate", clips["source"], clips["driving"], "-o", out,
        "--weights", tiny_weights,
    )  # fmt: skip
    assert code == 0, err
    info = probe(out)
    # The shorter of the two (source 12, driver 16 frames), at the source's rate, with
    # the driver's audio (the default).
    assert (info.frames, info.fps, info.width, info.height) == (12, 25.0, SIZE, SIZE)
    assert info.has_audio
    verdict = verify_file(out, [root_pem])
    assert verdict.manifest == "trusted" and verdict.watermark_found, verdict.reasons
    assert verdict.summary.ingredients == ["source.mp4", "driving.mp4"]
    frames = np.stack(decode(out)).astype(np.float32)
    source = np.stack(decode(clips["source"])).astype(np.float32)
    # The source's still parts: more than 20 px away from the moving head box.
    still = np.ones((SIZE, SIZE), bool)
    x0, y0, x1, y1 = FACE_BOX
    still[max(0, y0 - 20) : y1 + 20, max(0, x0 - 20) : x1 + 20] = False
    assert np.abs(np.diff(source, axis=0)).mean(-1)[:, still].mean() < 0.5  # still indeed
    out_still = np.abs(np.diff(frames, axis=0)).mean(-1)[:, still].mean()
    out_face = np.abs(np.diff(frames, axis=0)).mean(-1)[:, y0:y1, x0:x1].mean()
    assert out_still < 1.0, out_still  # the watermark and H.264 only
    assert out_face > 3 * out_still, (out_face, out_still)  # the face does move
    # Outside the head the output is the source plus the watermark (measured 2.8 levels
    # mean), not a re-rendered background (the random model's crops are 50+ off).
    assert np.abs(frames - source).mean(-1)[:, still].mean() < 4.0


def test_rate_follows_the_source_and_loop_lasts_as_the_longer(keys, tiny_weights, clips, tmp_path):
    from likeness.media import probe

    config = AnimateConfig(weights=tiny_weights, audio=False)
    # A 30 fps driver of 10 frames (0.33 s) under a 25 fps source: 8 output frames.
    result = prepare(clips["source"], tmp_path / "a.mp4", clips["driving30"], config).run()
    assert (result.frames, result.fps) == (8, 25.0)
    assert probe(result.output).frames == 8
    looped = AnimateConfig(weights=tiny_weights, audio=False, loop=True, transfer_pose=True)
    job = prepare(clips["source"], tmp_path / "b.mp4", clips["driving30"], looped)
    assert job.total == 12
    assert job.run().frames == 12


def test_source_audio_and_max_frames(keys, tiny_weights, clips, tmp_path):
    from likeness.media import probe

    config = AnimateConfig(weights=tiny_weights, source_audio=True, max_frames=5)
    result = prepare(clips["source"], tmp_path / "s.mp4", clips["driving"], config).run()
    info = probe(result.output)
    assert (info.frames, info.has_audio) == (5, False)  # the source is silent


def test_target_keypoints_keep_the_source_pose_without_transfer_pose():
    """Expression only: a driver that just turns its head leaves the source as it is;
    with the pose transferred the same driver moves it."""
    from likeness.generator import keypoints as kpt
    from likeness.generator.motion import euler_to_matrix
    from likeness.pipelines.scene import transfer_config
    from likeness.pipelines.video_source import target_keypoints

    rng = np.random.default_rng(0)
    source = rng.normal(0, 0.3, (kpt.N_KEYPOINTS, 3)).astype(np.float32)
    driver0 = rng.normal(0, 0.3, (kpt.N_KEYPOINTS, 3)).astype(np.float32)
    turned = (driver0 @ euler_to_matrix(15, 0, 0).T).astype(np.float32)
    plain = transfer_config(AnimateConfig(), video=True, scripted_motion=False)
    posed = transfer_config(AnimateConfig(transfer_pose=True), video=True, scripted_motion=False)
    assert plain.region == "expression" and posed.region == "all"
    np.testing.assert_allclose(target_keypoints(source, driver0, turned, plain), source, atol=1e-4)
    moved = target_keypoints(source, driver0, turned, posed)
    assert np.abs(moved - source).max() > 0.05


def test_driver_frames_are_picked_by_time():
    from likeness.pipelines.video_source import frame_index

    assert [frame_index(i, 25, 25) for i in range(4)] == [0, 1, 2, 3]
    assert [frame_index(i, 30, 25) for i in range(7)] == [0, 1, 2, 3, 4, 6, 7]
    assert [frame_index(i, 12, 25) for i in range(5)] == [0, 0, 0, 1, 1]


BAD = [
    ("source video without a face", ["{faceless}", "{driving}"], "no face found in the source"),
    ("absolute on a video source", ["{source}", "{driving}", "--absolute"], "--absolute"),
    ("pose region without transfer", ["{source}", "{driving}", "--region", "pose"], "needs"),
    ("crop only", ["{source}", "{driving}", "--crop-only"], "--crop-only"),
    ("driver without a face", ["{source}", "{faceless}"], "no face found in any of the 6"),
    ("drive a face that is not there", ["{source}", "--drive", "3={driving}"], "--drive 3="),
]


@pytest.mark.parametrize(("args", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_video_source_input_is_one_line_and_writes_nothing(
    capsys, keys, tiny_weights, clips, tmp_path, args, message
):
    outdir = tmp_path / "out"
    outdir.mkdir()
    argv = [a.format(**clips) for a in args]
    code, stdout, err = run_cli(
        capsys, "animate", *argv, "-o", outdir / "x.mp4", "--weights", tiny_weights
    )
    assert code == 2, (stdout, err)
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert list(outdir.iterdir()) == []


def test_transfer_pose_on_a_photo_is_refused(keys, tiny_weights, clips, tmp_path, astronaut):
    photo = tmp_path / "p.png"
    photo.write_bytes(samples.png_bytes(cv2.resize(astronaut, (SIZE, SIZE))))
    with pytest.raises(InputError, match="--transfer-pose is for a video source"):
        prepare(
            photo, tmp_path / "x.mp4", clips["driving"],
            AnimateConfig(weights=tiny_weights, transfer_pose=True),
        )  # fmt: skip


def test_keyframes_encode_the_source_face_every_n_frames(
    keys, tiny_weights, clips, tmp_path, monkeypatch
):
    config = AnimateConfig(weights=tiny_weights, audio=False, keyframe_every=4)
    job = prepare(clips["source"], tmp_path / "k.mp4", clips["driving"], config)
    real, calls = job.model.extract_appearance, []

    def counted(crop):
        calls.append(1)
        return real(crop)

    monkeypatch.setattr(job.model, "extract_appearance", counted)  # the model is shared
    result = job.run()
    # 12 frames, a head that nods 1.5 px: a keyframe every 4 frames, no early one.
    assert result.frames == 12 and len(calls) == 3
    with pytest.raises(InputError, match="keyframe-every"):
        AnimateConfig(keyframe_every=0)
