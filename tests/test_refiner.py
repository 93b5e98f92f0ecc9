"""The diffusion refiner (likeness.generator.refiner): it changes pixels inside the face
mask only, its training loop learns, `--refine` without weights is one clear line, and a
refined animate output is marked and signed with the refiner named in its manifest.

Tiny randomly initialised refiners throughout (plumbing, not looks); the shipped
refiner's quality is `likeness bench refiner`'s job.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the refiner needs diffusers (pip install -e '.[test]')")

from likeness.errors import ModelError
from likeness.generator import keypoints as kpt
from likeness.generator.refiner.config import RefinerTrainConfig, preset
from likeness.generator.refiner.model import RefinerModel, save_weights
from likeness.generator.refiner.network import RefinerNetwork
from tests import samples
from tests.samples import run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 64


def face_keypoints(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, K, 3) keypoints of a face-sized blob near the middle of the crop."""
    base = rng.uniform(-0.35, 0.35, (kpt.N_KEYPOINTS, 3)).astype(np.float32)
    shift = rng.uniform(-0.1, 0.1, (n, 1, 3)).astype(np.float32)
    return base[None] + shift


def textured(rng: np.random.Generator, n: int, size: int = SIZE) -> np.ndarray:
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny_refiner() -> RefinerModel:
    import torch

    torch.manual_seed(0)
    return RefinerModel(RefinerNetwork(preset("tiny")))


@pytest.fixture(scope="module")
def tiny_refiner_weights(tmp_path_factory, tiny_refiner: RefinerModel) -> Path:
    folder = tmp_path_factory.mktemp("tiny-refiner")
    save_weights(tiny_refiner.network, folder)
    return folder


def test_refine_changes_only_the_face(tiny_refiner: RefinerModel):
    rng = np.random.default_rng(0)
    renders = textured(rng, 3)
    kps = face_keypoints(rng, 3)
    out = tiny_refiner.refine(renders, kps)
    assert out.shape == renders.shape and out.dtype == np.uint8
    masks = tiny_refiner.masks(kps, SIZE)
    diff = np.abs(out.astype(int) - renders.astype(int)).max(axis=-1)
    outside, inside = masks == 0, masks > 0.5
    assert outside.sum() > 0.2 * outside.size  # the test means something: much is outside
    assert diff[outside].max() <= 1  # within 1/255 outside the face
    assert diff[inside].mean() > 2  # a random network does change the face
    # Same input, same output: the sampler's noise is fixed (no flicker in video).
    assert np.array_equal(tiny_refiner.refine(renders, kps), out)


def test_weights_round_trip_and_missing_weights(tiny_refiner, tiny_refiner_weights, tmp_path):
    from likeness.hashing import sha256_file

    loaded = RefinerModel.from_pretrained(tiny_refiner_weights)
    assert loaded.config == tiny_refiner.config
    assert loaded.weights_hash == sha256_file(tiny_refiner_weights / "model.safetensors")
    rng = np.random.default_rng(1)
    renders, kps = textured(rng, 2), face_keypoints(rng, 2)
    # float16 weights: a pixel or two of rounding against the float32 original.
    gap = np.abs(loaded.refine(renders, kps).astype(int) - tiny_refiner.refine(renders, kps))
    assert gap.mean() < 1.0
    with pytest.raises(ModelError, match="no refiner weights"):
        RefinerModel.from_pretrained(tmp_path / "none")


def _write_pairs(root: Path, split: str, n: int, rng: np.random.Generator) -> None:
    """Renders that are blurred copies of their targets: detail a refiner can learn."""
    folder = root / split
    folder.mkdir(parents=True)
    base = cv2.resize(textured(rng, 1, 16)[0], (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    target = np.stack([np.roll(base, int(s), axis=1) for s in rng.integers(0, SIZE, n)])
    render = np.stack([cv2.GaussianBlur(t, (0, 0), 2.0) for t in target])
    np.savez(
        folder / "pairs-000.npz",
        render=render,
        target=target,
        valid=np.ones((n, SIZE, SIZE), np.uint8),
        kp=face_keypoints(rng, n),
    )


def test_train_loop_reduces_loss_and_resumes(tmp_path: Path):
    import torch

    from likeness.generator.refiner.train import BEST, RefinerTrainer

    rng = np.random.default_rng(2)
    pairs = tmp_path / "pairs"
    _write_pairs(pairs, "train", 8, rng)
    _write_pairs(pairs, "val", 4, rng)
    settings = {
        "preset": "tiny", "crop": 32, "batch_size": 4, "steps": 80, "warmup": 5, "lr": 3e-3,
        "checkpoint_every": 40, "log_every": 20, "val_pairs": 4,
    }  # fmt: skip
    trainer = RefinerTrainer(pairs, tmp_path / "run", overrides=settings)
    fixed = trainer.sampler.batch(0, batch_size=8, seed=99)

    def fixed_loss() -> float:
        with torch.no_grad():
            return trainer.loss(fixed, torch.Generator().manual_seed(5)).item()

    before = fixed_loss()
    trainer.run(steps=60)
    after = fixed_loss()
    assert after < 0.7 * before, (before, after)
    assert (tmp_path / "run" / BEST).is_file()
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
    resumed = RefinerTrainer(pairs, tmp_path / "run", resume=True)
    assert resumed.state.step == 60 and resumed.best == trainer.best
    resumed.run(steps=5)
    assert resumed.state.step == 65


def test_refine_without_weights_is_one_line(capsys, tmp_path: Path, astronaut):
    photo = tmp_path / "photo.png"
    photo.write_bytes(samples.png_bytes(cv2.resize(astronaut, (256, 256))))
    out = tmp_path / "out.mp4"
    missing = tmp_path / "no-refiner"
    code, _, err = run_cli(
        capsys, "animate", photo, "--motion", "nod", "-o", out, "--refine",
        "--refiner-weights", missing,
    )  # fmt: skip
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "no refiner weights" in err
    assert str(missing) in err and not out.exists()
    # The library takes the same option.
    from likeness import api

    with pytest.raises(ModelError, match="no refiner weights"):
        api.animate(photo, out, motion="nod", refine=True, refiner_weights=missing)
    assert not out.exists()


def test_refined_animate_is_marked_and_names_the_refiner(
    capsys, root_pem, tiny_weights, tiny_refiner_weights, tmp_path: Path, astronaut
):
    from likeness.hashing import sha256_file
    from likeness.provenance.verify import verify_file

    photo = tmp_path / "photo.png"
    photo.write_bytes(samples.png_bytes(cv2.resize(astronaut, (256, 256))))
    out = tmp_path / "refined.mp4"
    code, _, err = run_cli(
        capsys, "animate", photo, "--motion", "nod", "-o", out, "--max-frames", "4",
        "--weights", tiny_weights, "--refine", "--refiner-weights", tiny_refiner_weights,
    )  # fmt: skip
    assert code == 0, err
    verdict = verify_file(out, [root_pem])
    assert verdict.manifest == "trusted" and verdict.watermark_found, verdict.reasons
    generator_hash = sha256_file(tiny_weights / "model.safetensors")
    refiner_hash = sha256_file(tiny_refiner_weights / "model.safetensors")
    assert verdict.summary.model == {
        "name": "likeness-portrait-tiny+likeness-refiner-tiny",
        "hash": f"{generator_hash}+{refiner_hash}",
    }


def test_scene_path_refines_and_names_the_refiner(
    monkeypatch, root_pem, tiny_weights, tiny_refiner_weights, tmp_path: Path, astronaut
):
    """--preview goes through pipelines.scene, the per-frame path: refined there too."""
    from likeness import api
    from likeness.provenance.verify import verify_file

    refined: list[int] = []
    original = RefinerModel.refine

    def counting(self, renders, kps, steps=None):
        refined.append(len(renders))
        return original(self, renders, kps, steps)

    monkeypatch.setattr(RefinerModel, "refine", counting)

    photo = tmp_path / "photo.png"
    photo.write_bytes(samples.png_bytes(cv2.resize(astronaut, (256, 256))))
    result = api.animate(
        photo, tmp_path / "out.mp4", motion="nod", max_frames=3, weights=tiny_weights,
        refine=True, refiner_weights=tiny_refiner_weights, preview=tmp_path / "side.mp4",
    )  # fmt: skip
    assert result.frames == 3 and result.preview is not None
    assert sum(refined) == 3  # every rendered face, once
    for target in (result.output, result.preview.target):
        verdict = verify_file(target, [root_pem])
        assert verdict.manifest == "trusted" and verdict.watermark_found, verdict.reasons
        assert verdict.summary.model["name"] == "likeness-portrait-tiny+likeness-refiner-tiny"


def _mouth_keypoints(gap: float) -> np.ndarray:
    """Keypoints (K, 3) of a face whose inner lips are `gap` apart (crop units) and whose
    eyes are open."""
    from likeness.generator.refiner.mask import EYE_APERTURES, INNER_LIPS

    kp = np.zeros((kpt.N_KEYPOINTS, 3), np.float32)
    left, upper, right, lower = INNER_LIPS
    kp[left, :2], kp[right, :2] = (-0.2, 0.4), (0.2, 0.4)
    kp[upper, :2], kp[lower, :2] = (0.0, 0.4 - gap / 2), (0.0, 0.4 + gap / 2)
    for ring, cx in zip(EYE_APERTURES, (-0.3, 0.3), strict=True):
        angles = np.linspace(0, 2 * np.pi, len(ring), endpoint=False)
        kp[list(ring), 0] = cx + 0.1 * np.cos(angles)
        kp[list(ring), 1] = -0.1 + 0.04 * np.sin(angles)
    return kp


def test_apertures_mark_the_open_mouth_and_the_eyes():
    from likeness.generator.refiner.mask import apertures

    size = 128
    shut, open_ = apertures(_mouth_keypoints(0.0), size), apertures(_mouth_keypoints(0.1), size)
    assert shut.shape == (2, size, size) and shut.dtype == np.float32

    def px(x: float, y: float) -> tuple[int, int]:
        return int((y + 1) / 2 * size), int((x + 1) / 2 * size)

    assert open_[1][px(0.0, 0.4)] == 1.0 and open_[1][px(0.0, 0.2)] == 0.0
    # Two parabolas 0.1 apart at the middle, 0.4 wide: a lens of 2/3 of 0.4 x 0.1 (109
    # px of a 128 px crop, 1 unit = 64 px; 112 px drawn).
    assert 0.6 * 0.4 * 0.1 * 64**2 < open_[1].sum() < 0.8 * 0.4 * 0.1 * 64**2
    assert shut[1].sum() < 0.1 * open_[1].sum()  # shut lips: next to nothing (6.5 px)
    # Both eyes, whatever the mouth does; nothing of them in the mouth channel.
    assert np.array_equal(shut[0], open_[0])
    assert shut[0][px(-0.3, -0.1)] == 1.0 and shut[0][px(0.3, -0.1)] == 1.0
    assert shut[0][px(0.0, -0.1)] == 0.0 and open_[1][px(-0.3, -0.1)] == 0.0


def test_a_refiner_with_apertures_reads_them(tmp_path: Path):
    """The apertures preset feeds the mouth opening to the network: the same render
    refines differently when the driver's mouth is open, and only inside the face."""
    import dataclasses

    import torch

    from likeness.generator.refiner.data import CropSampler
    from likeness.generator.refiner.pairs import load_pairs

    torch.manual_seed(0)
    config = dataclasses.replace(preset("tiny"), apertures=True)
    assert config.guide_channels == 3 and preset("apertures").apertures
    model = RefinerModel(RefinerNetwork(config))
    rng = np.random.default_rng(3)
    render = textured(rng, 1)
    shut, open_ = _mouth_keypoints(0.0)[None], _mouth_keypoints(0.12)[None]
    a, b = model.refine(render, shut), model.refine(render, open_)
    differ = np.abs(a.astype(int) - b.astype(int)).max(axis=-1)[0] > 0
    assert differ.any()
    assert not differ[model.masks(open_, SIZE)[0] == 0].any()
    # Training crops carry the same guide: face mask first, then the apertures.
    _write_pairs(tmp_path, "train", 4, rng)
    train = RefinerTrainConfig(crop=32)
    batch = CropSampler(load_pairs(tmp_path, "train"), config, train).batch(0, batch_size=4)
    assert batch["guide"].shape == (4, 3, 32, 32)
    assert torch.equal(batch["guide"][:, :1], batch["mask"])


def test_bench_mouth_figures_skip_frames_without_a_face():
    from likeness.bench.refiner import mouth_figures

    truth = np.array([0.0, 0.1, 0.2, 0.3, np.nan])
    got = np.array([0.0, 0.05, 0.1, np.nan, 0.3])  # half the opening, one face lost
    figures = mouth_figures(got, truth)
    assert figures["mouth_open_corr"] == pytest.approx(1.0)
    assert figures["mouth_open_error"] == pytest.approx(0.05)  # (0 + 0.05 + 0.1) / 3
    assert mouth_figures(truth[::-1].copy(), truth)["mouth_open_corr"] < 0


def test_train_cli_refuses_a_set_without_a_value_in_one_line(capsys, tmp_path: Path):
    from likeness.generator.refiner.train import main

    code = main(["--pairs", str(tmp_path), "--out", str(tmp_path / "run"), "--set", "lr"])
    assert code != 0
    out = capsys.readouterr().out.strip()
    assert out == "error: --set wants key=value, got 'lr'", out
    assert not (tmp_path / "run").exists()
