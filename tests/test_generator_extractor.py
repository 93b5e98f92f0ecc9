"""Training the motion extractor alone (TrainConfig.mode "extractor"): its views move
image, keypoints and roll together, its equivariance loss, and the trainer mode (the
renderer stays as the `init` weights left it; resumable)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from likeness.generator import keypoints as kpt
from likeness.generator.config import ExtractorAugment, preset
from likeness.generator.data import Clip, local_shape
from likeness.generator.extractor_data import FrameSampler
from tests.test_generator import random_face, tiny_pack  # noqa: F401  (fixture)

SIZE = 128


def _clip(seed: int = 0) -> Clip:
    """One photo whose image holds a bright dot at every keypoint."""
    kp = random_face(seed) * 0.6
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    for x, y, _ in kpt.to_pixels(kp, SIZE):
        image[int(round(y)), int(round(x))] = 255
    angles = np.array([10.0, -5.0, 3.0], np.float32)
    canon = local_shape(kp, angles)
    return Clip(None, image[None], kp[None], angles[None], canon, np.zeros((1, 2, 3)))


GEOMETRY_ONLY = ExtractorAugment(
    rotation=25, scale=0.15, shift=0.05, colour=0, grey=0, blur=0, noise=0, lowres=0, jpeg=0
)


def test_a_view_moves_keypoints_with_the_image_and_roll_with_the_turn():
    clip = _clip()
    sampler = FrameSampler([clip], 2, 0, 1.0, 0.0, GEOMETRY_ONLY)
    rng = np.random.default_rng(3)
    image, kp, ang = clip.frames[0], clip.keypoints[0], clip.angles[0]
    for _ in range(5):
        view, moved, angles, matrix = sampler.view(image, kp, ang, rng)
        turn = np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))
        assert angles[2] == pytest.approx(ang[2] + turn, abs=1e-4)
        # The head's pose-free shape is the same in the view: roll moved with the turn.
        assert np.abs(local_shape(moved, angles) - local_shape(kp, ang)).max() < 1e-3
        wrong = angles.copy()
        wrong[2] = ang[2] - turn
        if abs(turn) > 3:
            assert np.abs(local_shape(moved, wrong) - local_shape(kp, ang)).max() > 0.02
        # Each dot lands where its keypoint went.
        grey = view.max(axis=2)
        for x, y, _ in kpt.to_pixels(moved, SIZE):
            xi, yi = int(round(x)), int(round(y))
            if 1 <= xi < SIZE - 1 and 1 <= yi < SIZE - 1:
                assert grey[yi - 1 : yi + 2, xi - 1 : xi + 2].max() > 30


def test_equivariance_is_zero_for_predictions_that_move_with_the_image():
    from likeness.generator.extractor_loss import equivariance

    sampler = FrameSampler([_clip(1)], 4, 0, 1.0, 0.5, GEOMETRY_ONLY)
    batch = sampler.batch(7)
    kp = batch.keypoints
    exact = equivariance(kp[:4], kp[4:], batch.a_to_b, batch.depth_scale)
    assert exact.item() < 1e-4
    still = equivariance(kp[:4], kp[:4], batch.a_to_b, batch.depth_scale)
    assert still.item() > 100 * exact.item() + 1e-3


EXTRACTOR = {
    "preset": "tiny", "mode": "extractor", "batch_size": 4, "extractor_lr": 2e-3,
    "warmup": 5, "steps": 400, "log_every": 5, "checkpoint_every": 10, "photo_fraction": 0.0,
}  # fmt: skip


@pytest.fixture()
def tiny_weights(tmp_path):
    from likeness.generator.model import GeneratorNetworks, save_weights

    torch.manual_seed(0)
    save_weights(GeneratorNetworks(preset("tiny")), tmp_path / "init")
    return tmp_path / "init"


def _state(folder):
    from likeness.generator.config import GeneratorConfig
    from likeness.generator.model import GeneratorNetworks, load_weights

    nets = GeneratorNetworks(GeneratorConfig.load(folder / "config.json"))
    load_weights(nets, folder / "model.safetensors")
    return nets.state_dict()


def test_extractor_mode_trains_only_the_extractor_from_init(tiny_pack, tiny_weights, tmp_path):  # noqa: F811
    from likeness.generator.train import Trainer

    overrides = {**EXTRACTOR, "init": str(tiny_weights), "extractor_size": 48}
    trainer = Trainer(tiny_pack, tmp_path / "run", overrides=overrides)
    assert trainer.config.extractor_size == 48
    fixed = trainer.sampler.batch(10**6, batch_size=8)
    assert fixed.images.shape[-1] == 48
    before = trainer.evaluate(fixed)["extractor"]
    trainer.run(steps=150)
    after = trainer.evaluate(fixed)["extractor"]
    assert after < 0.5 * before, (before, after)
    init, got = _state(tiny_weights), _state(tmp_path / "run" / "weights")
    frozen = [k for k in init if not k.startswith("extractor.")]
    assert frozen and all(torch.equal(init[k], got[k]) for k in frozen)
    trained = [k for k in init if k.startswith("extractor.") and init[k].is_floating_point()]
    assert any(not torch.equal(init[k], got[k]) for k in trained)
    assert list((tmp_path / "run" / "samples").glob("*.png"))


def test_extractor_mode_resumes_the_same_loss_curve(tiny_pack, tmp_path):  # noqa: F811
    from likeness.generator.train import Trainer
    from likeness.training import read_losses

    Trainer(tiny_pack, tmp_path / "a", overrides=EXTRACTOR).run(steps=20)
    Trainer(tiny_pack, tmp_path / "b", overrides=EXTRACTOR).run(steps=10)
    resumed = Trainer(tiny_pack, tmp_path / "b", resume=True)
    assert resumed.extractor_only and resumed.state.step == 10
    resumed.run(steps=10)
    la = [r["extractor"] for r in read_losses(tmp_path / "a") if r["step"] > 10]
    lb = [r["extractor"] for r in read_losses(tmp_path / "b") if r["step"] > 10]
    assert len(la) == len(lb) == 2
    assert np.allclose(la, lb, rtol=1e-4), (la, lb)


def test_init_must_be_a_weights_folder_and_mode_must_exist(tiny_pack, tmp_path):  # noqa: F811
    from likeness.errors import InputError
    from likeness.generator.train import Trainer

    with pytest.raises(InputError, match="not a generator weights folder"):
        Trainer(tiny_pack, tmp_path / "r", overrides={**EXTRACTOR, "init": str(tmp_path)})
    with pytest.raises(InputError, match="joint or extractor"):
        Trainer(tiny_pack, tmp_path / "r", overrides={**EXTRACTOR, "mode": "renderer"})
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_damage_jpeg_codes_rgb_so_fine_red_detail_survives_as_in_any_jpeg():
    """The extractor's JPEG damage goes through the project's RGB round trip: red detail
    rides on luma (0.299 of it) and keeps its contrast; RGB handed to OpenCV as BGR puts
    it on blue's 0.114 and loses it to chroma subsampling (what it did before)."""
    import cv2

    from likeness.generator.extractor_data import damage

    image = np.zeros((64, 64, 3), np.uint8)
    image[:, ::2, 0] = 255  # one-pixel red stripes on black
    only_jpeg = ExtractorAugment(colour=0, grey=0, blur=0, noise=0, lowres=0, jpeg=1.0)
    out = damage(image, np.random.default_rng(0), only_jpeg)
    contrast = float(np.abs(np.diff(out[..., 0].astype(float), axis=1)).mean())
    # The swapped path at the best quality damage draws (90) against any of its draws.
    _, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    swapped = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    lost = float(np.abs(np.diff(swapped[..., 0].astype(float), axis=1)).mean())
    assert contrast > 1.5 * lost, (contrast, lost)


def test_freeze_keeps_named_networks_as_loaded(tiny_pack, tiny_weights, tmp_path):  # noqa: F811
    from likeness.errors import InputError
    from likeness.generator.train import Trainer

    overrides = {
        "preset": "tiny", "batch_size": 2, "lr": 1e-3, "warmup": 1, "steps": 100,
        "checkpoint_every": 100, "photo_fraction": 0.0, "init": str(tiny_weights),
        "extractor_weight": 0.0, "freeze": ["renderer.decoder"],
    }  # fmt: skip
    Trainer(tiny_pack, tmp_path / "run", overrides=overrides).run(steps=3)
    init, got = _state(tiny_weights), _state(tmp_path / "run" / "weights")
    decoder = [k for k in init if k.startswith("renderer.decoder.")]
    assert decoder and all(torch.equal(init[k], got[k]) for k in decoder)
    motion = [k for k in init if k.startswith("renderer.dense_motion.") and "weight" in k]
    assert any(not torch.equal(init[k], got[k]) for k in motion)
    with pytest.raises(InputError, match=r"no generator parameter starts with 'renderer\.decodr'"):
        Trainer(tiny_pack, tmp_path / "r", overrides={**overrides, "freeze": ["renderer.decodr"]})
