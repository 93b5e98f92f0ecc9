"""The generator's math, networks, weights and training (tiny config, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from likeness.generator import keypoints as kpt
from likeness.generator import motion
from likeness.generator.config import TrainConfig, preset
from likeness.generator.networks.warp import make_grid, tps_grid

# ---------------------------------------------------------------- keypoints and motion


def random_face(seed: int = 0) -> np.ndarray:
    """Keypoints of a plausible face: a mirrored random shape around the crop centre."""
    rng = np.random.default_rng(seed)
    kp = rng.normal(scale=0.3, size=(kpt.N_KEYPOINTS, 3))
    kp[:, 2] *= 0.3
    return kp.astype(np.float32)


def test_mirror_permutation_is_an_involution_that_swaps_sides():
    perm = kpt.mirror_permutation()
    assert (perm[perm] == np.arange(kpt.N_KEYPOINTS)).all()
    assert perm[kpt.IRIS_ROWS[0]] == kpt.IRIS_ROWS[1]
    assert (perm != np.arange(kpt.N_KEYPOINTS)).sum() == kpt.N_KEYPOINTS - 9  # midline stays


def test_normalise_and_pixels_round_trip():
    pts = np.random.default_rng(1).uniform(0, 255, (10, 3)).astype(np.float32)
    back = kpt.to_pixels(kpt.normalise(pts, 256), 256)
    assert np.allclose(back, pts, atol=1e-3)
    # Pixel centres map to grid_sample's align_corners=False convention.
    assert kpt.normalise(np.array([[-0.5, 255.5, 0]]), 256)[0, :2] == pytest.approx([-1, 1])


def test_similarity_fit_recovers_a_known_transform():
    src = random_face(2)
    truth = motion.Similarity(1.3, motion.euler_to_matrix(20, -10, 5), np.array([0.1, -0.2, 0]))
    fit = motion.fit_similarity(src, truth(src))
    assert fit.scale == pytest.approx(1.3, abs=1e-6)
    assert np.allclose(fit.rotation, truth.rotation, atol=1e-6)
    assert np.allclose(fit.compose(fit.inverse())(src), src, atol=1e-6)


def test_euler_conventions_match_head_pose():
    # yaw > 0 turns the face (looking along -z) towards the image's right (+x).
    look = motion.euler_to_matrix(30, 0, 0) @ np.array([0, 0, -1.0])
    assert look[0] > 0.4
    # pitch > 0 looks up (towards -y, image up).
    assert (motion.euler_to_matrix(0, 30, 0) @ np.array([0, 0, -1.0]))[1] < -0.4


def test_relative_transfer_of_a_still_driver_is_the_source():
    source, driving0 = random_face(3), random_face(4)
    transfer = motion.MotionTransfer(source, driving0)
    assert np.allclose(transfer(driving0), source, atol=1e-5)


def test_relative_transfer_carries_head_turns_and_expression():
    source = random_face(5)
    driving0 = motion.Similarity(0.8, motion.euler_to_matrix(0, 0, 10), np.zeros(3))(source)
    turn = motion.rotation_about(driving0, 25, 0, 0)
    transfer = motion.MotionTransfer(source, driving0)
    moved = transfer(turn(driving0))
    # The head turn is found again in the source's frame, by the same angle.
    fit = motion.head_fit(source, moved)
    angle = np.degrees(np.arccos((np.trace(fit.rotation) - 1) / 2))
    assert angle == pytest.approx(25, abs=0.5)
    # An expression change (mouth opens) moves only the mouth rows of the source.
    opened = driving0.copy()
    opened[list(kpt.LIP_ROWS), 1] += 0.05
    out = transfer(opened)
    changed = np.abs(out - source).max(axis=1) > 1e-4
    assert set(np.flatnonzero(changed)) <= set(kpt.LIP_ROWS)
    only_eyes = motion.MotionTransfer(source, driving0, motion.TransferConfig(region="eyes"))
    assert np.allclose(only_eyes(opened), source, atol=1e-6)


# ---------------------------------------------------------------- warps


def test_tps_is_identity_when_keypoints_do_not_move_and_hits_its_targets():
    kp = torch.from_numpy(random_face(6))[None]
    grid = make_grid(8, 16, 16)
    out = tps_grid(kp, kp, grid, regularization=0.0)
    assert torch.allclose(out[0], grid, atol=1e-4)
    moved = kp + 0.05
    at_points = tps_grid(kp, moved, kp[0], regularization=0.0)
    assert torch.allclose(at_points, moved, atol=1e-3)


def test_renderer_keeps_the_source_when_motion_is_zero_at_init():
    """At initialisation the warp is the identity and the decoder adds nothing big:
    the architecture starts from 'copy the source', which is what makes it train fast."""
    torch.manual_seed(0)
    from likeness.generator.networks.portrait import WarpingGenerator

    cfg = preset("tiny")
    net = WarpingGenerator(cfg).eval()
    src = torch.rand(2, 3, cfg.output_size, cfg.output_size)
    kp = torch.from_numpy(np.stack([random_face(7), random_face(8)]))
    with torch.no_grad():
        out = net(src, src, kp, kp)
    assert torch.allclose(out["warped"], src, atol=2e-3)
    assert out["image"].shape == src.shape


@pytest.mark.parametrize("detail", [True, False])
def test_output_keeps_the_sources_detail_above_the_decoders_band(detail):
    """With `detail_from_warp`, an untrained renderer driven by still keypoints already
    carries the source's fine texture (the decoder, at half size, cannot); without it
    the fine texture is mostly gone."""
    import dataclasses

    import torch.nn.functional as F

    from likeness.generator.networks.portrait import WarpingGenerator

    torch.manual_seed(0)
    cfg = dataclasses.replace(preset("tiny"), output_size=128, detail_from_warp=detail)
    net = WarpingGenerator(cfg).eval()
    src = torch.rand(1, 3, 128, 128)
    kp = torch.from_numpy(random_face(3))[None]
    with torch.no_grad():
        out = net(F.interpolate(src, size=64, mode="area"), src, kp, kp)["image"]

    def high(x):
        return x - F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")

    kept = (high(out) * high(src)).sum() / (high(src) ** 2).sum()
    assert (kept > 0.8) if detail else (kept < 0.7), float(kept)


def test_weights_round_trip(tmp_path):
    from likeness.generator.model import GeneratorModel, GeneratorNetworks, save_weights

    torch.manual_seed(0)
    nets = GeneratorNetworks(preset("tiny"))
    save_weights(nets, tmp_path / "w")
    model = GeneratorModel.from_pretrained(tmp_path / "w")
    assert model.config == preset("tiny")
    for name, value in nets.state_dict().items():
        loaded = model.networks.state_dict()[name]
        assert torch.allclose(loaded.float(), value.float(), atol=1e-2 * (1 + value.abs().max()))
    assert len(model.weights_hash) == 64


def test_missing_or_broken_weights_are_clear_errors(tmp_path):
    from likeness.errors import ModelError
    from likeness.generator.model import GeneratorModel, GeneratorNetworks, save_weights

    with pytest.raises(ModelError, match="not found"):
        GeneratorModel.from_pretrained(tmp_path / "none")
    save_weights(GeneratorNetworks(preset("tiny")), tmp_path / "w")
    (tmp_path / "w" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="cannot be read"):
        GeneratorModel.from_pretrained(tmp_path / "w")


# ---------------------------------------------------------------- training


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory, astronaut, models_root):
    """A pack of one short face video made from scikit-image's astronaut."""
    from likeness.cli import main
    from tests import samples

    folder = tmp_path_factory.mktemp("pack")
    clip = samples.face_video(folder / "astro.mp4", astronaut, frames=16, size=256)
    # Packs run the face stack, which reads models from LIKENESS_HOME.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIKENESS_HOME", str(models_root.parent))
        assert main(["dataset", "pack", str(clip), "-o", str(folder / "pack"), "--every", "1"]) == 0
    return folder / "pack"


TINY = {
    "preset": "tiny", "batch_size": 4, "lr": 2e-3, "extractor_lr": 2e-3, "warmup": 5,
    "steps": 400, "log_every": 5, "checkpoint_every": 10, "photo_fraction": 0.0,
}  # fmt: skip


def test_tiny_training_halves_the_loss(tiny_pack, tmp_path):
    """Measured on one fixed batch of training pairs before and after a short run, so
    that batch-to-batch differences in difficulty do not decide the outcome. The total
    objective (renderer + motion extractor) halves. The renderer starts at the warped
    source (zero-initialised residuals), which on this near-still clip is already close
    to the best possible, so it must only not get worse."""
    from likeness.generator.train import Trainer

    overrides = {**TINY, "checkpoint_every": 1000, "colour_jitter": 0.0, "flip": 0.0}
    trainer = Trainer(tiny_pack, tmp_path / "run", overrides=overrides)
    fixed = trainer.sampler.batch(10**6, batch_size=16)
    before = trainer.evaluate(fixed)
    trainer.run(steps=100)
    after = trainer.evaluate(fixed)
    assert after["total"] <= 0.5 * before["total"], (before, after)
    assert after["renderer"] <= 1.05 * before["renderer"], (before, after)
    assert (tmp_path / "run" / "weights" / "model.safetensors").is_file()
    assert list((tmp_path / "run" / "samples").glob("*.png"))


def test_resume_continues_the_same_loss_curve(tiny_pack, tmp_path):
    from likeness.generator.train import Trainer
    from likeness.training import read_losses

    straight = Trainer(tiny_pack, tmp_path / "a", overrides=TINY)
    straight.run(steps=20)
    first = Trainer(tiny_pack, tmp_path / "b", overrides=TINY)
    first.run(steps=10)
    resumed = Trainer(tiny_pack, tmp_path / "b", resume=True)
    assert resumed.state.step == 10
    resumed.run(steps=10)
    a, b = read_losses(tmp_path / "a"), read_losses(tmp_path / "b")
    la = [r["loss"] for r in a if r["step"] > 10]
    lb = [r["loss"] for r in b if r["step"] > 10]
    assert len(la) == len(lb) == 2
    assert np.allclose(la, lb, rtol=1e-4), (la, lb)


@pytest.mark.parametrize("still", [0.0, 1.0])
def test_still_pairs_drive_with_the_source_frame_itself(tiny_pack, still):
    from likeness.datasets.pack_reader import Pack
    from likeness.generator.data import PairSampler, load_clips

    cfg = preset("tiny")
    train = TrainConfig(still_fraction=still, photo_fraction=0.0, flip=0.0, colour_jitter=0.0)
    sampler = PairSampler(load_clips(Pack.open(tiny_pack), "train", cfg, None), cfg, train)
    batch = sampler.batch(0, batch_size=8)
    same = [torch.equal(batch.kp_source[k], batch.kp_driving[k]) for k in range(8)]
    assert all(same) if still else not all(same)


def test_a_new_run_refuses_to_overwrite_and_resume_needs_a_run(tiny_pack, tmp_path):
    from likeness.errors import InputError
    from likeness.generator.train import Trainer

    with pytest.raises(InputError, match="no checkpoint"):
        Trainer(tiny_pack, tmp_path / "none", resume=True)
    Trainer(tiny_pack, tmp_path / "r", overrides=TINY).run(steps=1)
    with pytest.raises(InputError, match="already holds a run"):
        Trainer(tiny_pack, tmp_path / "r", overrides=TINY)


def test_train_config_rejects_unknown_fields():
    from likeness.errors import InputError

    with pytest.raises(InputError, match="unknown fields"):
        TrainConfig.from_dict({"batchsize": 3})
