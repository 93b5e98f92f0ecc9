"""Detector: pooling, calibration, metrics, training data, training and its resume."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from likeness.detector import metrics
from likeness.detector.calibrate import (
    Calibration,
    false_positive_rate,
    fit_calibration,
    threshold_at_fpr,
)
from likeness.detector.pooling import PoolingConfig, pool_scores, pooled_counts
from likeness.errors import InputError

torch.set_num_threads(1)


# --- pooling ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 4, 5, 10, 31, 100, 300])
@pytest.mark.parametrize("level, odd", [(0.05, 1.0), (0.95, 0.0), (0.3, 0.99)])
def test_one_odd_frame_does_not_move_a_steady_video(n, level, odd):
    scores = np.full(n, level)
    scores[n // 2] = odd
    assert pool_scores(scores) == pytest.approx(level)


def test_pooling_follows_a_manipulated_segment_that_a_mean_would_dilute():
    scores = np.full(100, 0.05)
    scores[30:60] = 0.9  # a face swapped in for a third of the video
    assert pool_scores(scores) > 0.7 > 2 * np.mean(scores)


def test_pooled_window_grows_with_length():
    assert pooled_counts(0) == (0, 0)
    assert pooled_counts(1) == (0, 1) and pooled_counts(2) == (0, 2)
    assert pooled_counts(3) == (1, 1)  # the median
    drops, keeps = zip(*(pooled_counts(n) for n in range(3, 400)), strict=True)
    assert min(drops) >= 1 and list(keeps) == sorted(keeps) and keeps[-1] >= 159
    assert all(d + k < n for n, d, k in zip(range(3, 400), drops, keeps, strict=True))
    assert np.isnan(pool_scores([]))
    top_quarter = PoolingConfig(top=0.25, trim=0.1, window=0)  # the earlier pooling
    assert pooled_counts(100, top_quarter) == (10, 25)


def test_real_video_with_scattered_odd_frames_stays_real():
    """One frame in four looking fake (blur, compression bursts) never reaches the
    lower half of any window: the video keeps its steady level."""
    scores = np.full(120, 0.1)
    scores[::4] = 0.95
    assert pool_scores(scores) == pytest.approx(0.1)
    assert pool_scores(scores, PoolingConfig(top=1.0, trim=0.0, window=0)) > 0.3  # a mean


def test_windows_keep_a_short_segment_that_the_whole_video_would_dilute():
    scores = np.full(300, 0.05)
    scores[200:220] = 0.9  # 20 sampled frames, about 7 s at scan's sampling
    assert pool_scores(scores) > 0.85
    assert pool_scores(scores, PoolingConfig(window=0)) < 0.1
    # up to a window's length, windows change nothing
    short = np.random.default_rng(0).random(16)
    assert pool_scores(short) == pool_scores(short, PoolingConfig(window=0))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=3, max_size=60),
    st.integers(0, 59),
    st.floats(0, 1),
)
def test_one_frame_moves_the_score_no_further_than_its_neighbours_ranks(scores, where, value):
    """Interlacing: with one frame replaced by anything, the pooled score stays between
    the means of the original ranks shifted one up and one down."""
    s = np.array(scores)
    changed = s.copy()
    changed[where % len(s)] = value
    ranked = np.sort(s)[::-1]
    whole = PoolingConfig(window=0)  # within one window (below), windows change nothing
    drop, keep = pooled_counts(len(s), whole)
    low = ranked[drop + 1 : drop + 1 + keep]
    low = np.concatenate([low, np.full(keep - len(low), ranked[-1])])
    high = ranked[drop - 1 : drop - 1 + keep]
    got = pool_scores(changed, whole)
    assert low.mean() - 1e-12 <= got <= high.mean() + 1e-12
    assert s.min() - 1e-12 <= pool_scores(s) <= s.max() + 1e-12


# --- calibration and threshold -------------------------------------------------------


def _synthetic(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    logits = rng.normal(0, 1, n) * 1.5 + labels * 2.5 - 1.0
    return logits, labels


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_is_monotone_and_bounded(method):
    logits, labels = _synthetic()
    cal = fit_calibration(logits, labels, method)
    grid = np.linspace(-10, 10, 2001)
    p = cal(grid)
    assert np.all(np.diff(p) >= -1e-12)
    assert p.min() >= 0 and p.max() <= 1
    assert cal(np.array([-5.0]))[0] < 0.2 < 0.8 < cal(np.array([5.0]))[0]
    # Calibrated: among crops called 70-90 % fake, about that share is fake.
    probs = cal(logits)
    band = (probs > 0.7) & (probs < 0.9)
    assert 0.7 <= labels[band].mean() <= 0.9
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_allclose(again(grid), p)


def test_calibration_refuses_a_detector_that_has_not_learned():
    logits, labels = _synthetic()
    with pytest.raises(InputError):
        fit_calibration(-logits, labels, "platt")
    with pytest.raises(InputError):
        fit_calibration(logits, np.zeros_like(labels), "platt")


@pytest.mark.parametrize("n", [11, 100, 1000, 5003])
def test_threshold_keeps_false_positives_at_or_under_one_percent(n):
    real = np.random.default_rng(n).beta(2, 8, n)
    t = threshold_at_fpr(real, 0.01)
    fpr = false_positive_rate(real, t)
    assert fpr <= 0.01
    # The smallest such threshold: one notch lower lets more through.
    below = np.sort(real)[np.sort(real) < t]
    if len(below):
        assert false_positive_rate(real, below[-1]) > fpr
    if n < 100:
        assert t == real.max()


def test_fitted_threshold_holds_the_false_positive_rate_that_a_small_sample_cannot():
    """24 real validation videos: the empirical 1 % quantile is their maximum, which lets
    about 1 in 25 new real videos through; the logit-normal fit keeps under 2 % on
    average, under 1 % in most draws."""
    from statistics import NormalDist

    from likeness.detector.calibrate import fitted_threshold_at_fpr

    mu, sigma = -1.0, 0.8

    def true_fpr(t):  # fmt: skip
        return 1 - NormalDist(mu, sigma).cdf(math.log(t / (1 - t)))

    empirical, fitted = [], []
    for seed in range(300):
        real = 1 / (1 + np.exp(-np.random.default_rng(seed).normal(mu, sigma, 24)))
        empirical.append(true_fpr(threshold_at_fpr(real, 0.01)))
        fitted.append(true_fpr(max(threshold_at_fpr(real, 0.01), fitted_threshold_at_fpr(real))))
    assert np.mean(empirical) > 0.03
    assert np.mean(fitted) < min(0.02, np.mean(empirical) / 2) and np.median(fitted) < 0.01
    with pytest.raises(InputError, match="at least 3"):
        fitted_threshold_at_fpr([0.2, 0.3])


def test_metrics_on_known_cases():
    y = np.array([0, 0, 0, 1, 1, 1])
    assert metrics.auc(y, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]) == 1.0
    assert metrics.eer(y, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]) == 0.0
    assert metrics.auc(y, [0.9, 0.8, 0.7, 0.3, 0.2, 0.1]) == 0.0
    assert metrics.tpr_at_fpr(y, [0.1, 0.2, 0.75, 0.7, 0.8, 0.9], 0.01) == pytest.approx(2 / 3)
    assert np.isnan(metrics.auc([1, 1], [0.2, 0.3]))


def test_auc_interval_brackets_the_auc_and_narrows_with_more_videos():
    assert metrics.auc_interval([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9]) == (1.0, 1.0)
    assert all(np.isnan(metrics.auc_interval([1, 1], [0.2, 0.3])))
    rng = np.random.default_rng(5)
    widths = []
    for n in (28, 280):
        y = np.repeat([0, 1], n)
        s = np.concatenate([rng.normal(0, 1, n), rng.normal(0.8, 1, n)])
        low, high = metrics.auc_interval(y, s)
        assert low < metrics.auc(y, s) < high
        assert metrics.auc_interval(y, s) == (low, high)  # seeded: the same interval
        widths.append(high - low)
    # A 28-against-28 AUC is uncertain by about +-0.1; ten times the videos, ~sqrt 10 less.
    assert 0.15 < widths[0] < 0.4 and 2.3 < widths[0] / widths[1] < 4.3


# --- a small training set from the astronaut -------------------------------------------


def _jittered_crops(rgb, face, n, rng, size=128):
    """Aligned crops with small random shifts, scales and turns, and their meshes."""
    from likeness.faces.align import AlignConfig, AlignParams, align_params, warp_crop

    base = align_params(face.eye_centres(), face.mouth_centre(), AlignConfig())
    for _ in range(n):
        params = AlignParams(
            base.cx + rng.uniform(-0.06, 0.06) * base.half,
            base.cy + rng.uniform(-0.06, 0.06) * base.half,
            base.half * (1 + rng.uniform(-0.1, 0.1)),
            base.angle + rng.uniform(-0.15, 0.15),
        )
        crop = warp_crop(rgb, params, size)
        m = crop.matrix
        mesh = face.landmarks.copy()
        mesh[:, :2] = face.landmarks[:, :2] @ m[:, :2].T + m[:, 2]
        mesh[:, 2] *= np.sqrt(abs(np.linalg.det(m[:, :2])))
        yield crop.image, mesh


def _astro_fakes(out, astronaut, face, sizes, per_video, fake, seed, identity, mask_size=0):
    """A FAKES folder of jittered astronaut crops: per crop a real one and `fake(i, crop,
    mesh, rng)` -> (family, image, mask or None); `sizes` maps split -> crops."""
    from likeness.datasets.fakes_format import FAKES_FORMAT, FAKES_VERSION, FakesWriter
    from likeness.faces.regions import KEY_LANDMARKS

    rng = np.random.default_rng(seed)
    writer = FakesWriter(out, mask_size=mask_size)
    for split, n in sizes.items():
        for i, (crop, mesh) in enumerate(_jittered_crops(astronaut, face, n, rng)):
            video = f"astro-{split}-{i // per_video}"
            cols = dict(identity=identity(split), split=split, frame=i % per_video,
                        item="astronaut", source="astronaut")  # fmt: skip
            writer.add(crop, mesh[list(KEY_LANDMARKS)], label=0, family="real", video=video,
                       **cols)  # fmt: skip
            family, image, mask = fake(i, crop, mesh, rng)
            writer.add(image, None, mask, label=1, family=family, video=f"{video}/{family}",
                       **cols)  # fmt: skip
    writer.finish(
        {"format": FAKES_FORMAT, "version": FAKES_VERSION, "landmark_indices": list(KEY_LANDMARKS)}
    )
    return out


@pytest.fixture(scope="module")
def astro_set(tmp_path_factory, astronaut, face_stack) -> Path:
    """48 real train crops and their self-blends, 24 + 24 for validation (3 'videos')."""
    from likeness.datasets.self_blend import self_blend

    def fake(i, crop, mesh, rng):
        return "sbi", self_blend(crop, mesh, rng).image, None

    out = tmp_path_factory.mktemp("fakes") / "astro"
    face = face_stack.analyze(astronaut)[0]
    sizes = {"train": 48, "val": 24}
    return _astro_fakes(out, astronaut, face, sizes, 8, fake, 0, lambda split: "astronaut")


def test_training_set_reader(astro_set):
    from likeness.datasets.fakes_format import FakesSet

    data = FakesSet.open(astro_set)
    assert len(data.select("train", 0)) == 48 and len(data.select("val", 1)) == 24
    real = data.select("train", 0)[0]
    mesh = data.mesh(real)
    assert mesh.shape == (468, 3) and data.mesh(data.select("train", 1)[0]) is None
    assert data.read(real).shape == (128, 128, 3)
    with pytest.raises(InputError, match="not a detector training set"):
        FakesSet.open(astro_set / "images")


def test_batches_are_balanced_and_repeatable(astro_set):
    from likeness.datasets.fakes_format import FakesSet
    from likeness.detector.config import TrainConfig, preset
    from likeness.detector.data import BatchSampler

    data = FakesSet.open(astro_set)
    sampler = BatchSampler(data, preset("tiny"), TrainConfig(batch_size=16, online_sbi=0.5))
    x, y = sampler.batch(7)
    assert x.shape == (16, 3, 64, 64) and int(y.sum()) == 8
    x2, y2 = sampler.batch(7)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(sampler.batch(8)[0], x)


def test_masks_stored_small_give_the_batches_full_masks_give(tmp_path, astronaut, face_stack):
    """`--mask-size` (a set small enough to carry to a GPU machine): the same crops and
    the same batch masks, to within the smoothing of a 4x smaller map; the stored masks
    take a fraction of the bytes."""
    from likeness.datasets.fakes_format import FakesSet
    from likeness.datasets.self_blend import self_blend
    from likeness.detector.config import AugmentConfig, TrainConfig, preset
    from likeness.detector.data import BatchSampler

    def fake(i, crop, mesh, rng):
        blend = self_blend(crop, mesh, rng)
        return "sbi", blend.image, blend.mask

    face = face_stack.analyze(astronaut)[0]
    sets = [
        FakesSet.open(_astro_fakes(tmp_path / f"m{size}", astronaut, face, {"train": 8}, 4,
                                   fake, 0, lambda split: "astronaut", mask_size=size))
        for size in (0, 32)
    ]  # fmt: skip
    full, small = sets
    fakes = full.select("train", label=1)
    assert full.mask(fakes[0]).shape == (128, 128) and small.mask(fakes[0]).shape == (32, 32)
    size_of = lambda root: sum(p.stat().st_size for p in (root / "masks").rglob("*.png"))  # noqa: E731
    assert size_of(small.root) < 0.3 * size_of(full.root)
    still = AugmentConfig(flip=0, crop=0, colour=0, blur=0, resize=0, jpeg=0, h264=0, noise=0)
    train = TrainConfig(batch_size=8, online_sbi=0.0, augment=still)
    x0, y0, m0, k0 = BatchSampler(full, preset("tiny"), train).dense_batch(1)
    x1, y1, m1, k1 = BatchSampler(small, preset("tiny"), train).dense_batch(1)
    assert torch.equal(x0, x1) and torch.equal(y0, y1) and torch.equal(k0, k1)
    assert int(k0.sum()) == 8 and m0[y0 == 1].mean() > 0.05  # every crop's mask is known
    assert (m0 - m1).abs().mean() < 0.01 and (m0 - m1).abs().max() < 0.3


def test_batches_made_in_worker_processes_are_the_trainers_own(astro_set):
    """batch_processes: whole batches made ahead in other processes (for a GPU) are
    the batches the sampler makes in this one, in any order of asking."""
    from likeness.datasets.fakes_format import FakesSet
    from likeness.detector.config import TrainConfig, preset
    from likeness.detector.data import BatchSampler
    from likeness.detector.prefetch import BatchPrefetcher

    data = FakesSet.open(astro_set)
    train = TrainConfig(batch_size=8, online_sbi=0.5, batch_processes=2)
    here = BatchSampler(data, preset("tiny"), train)
    ahead = BatchPrefetcher(astro_set, preset("tiny"), train, 2)
    try:
        for step in (4, 5, 9, 2):
            for a, b in zip(ahead.dense_batch(step), here.dense_batch(step), strict=True):
                assert torch.equal(a, b)
    finally:
        ahead.close()


def test_paired_fakes_are_made_from_a_real_crop_of_the_same_batch(astro_set):
    """paired=1: every fake is an online forgery of a real crop in its own batch, equal
    to it wherever its mask says nothing changed; paired=0 draws exactly as before."""
    from likeness.datasets.fakes_format import FakesSet
    from likeness.detector.config import AugmentConfig, TrainConfig, preset
    from likeness.detector.data import BatchSampler

    data = FakesSet.open(astro_set)
    still = AugmentConfig(flip=0, crop=0, colour=0, blur=0, resize=0, jpeg=0, h264=0, noise=0)
    train = TrainConfig(batch_size=8, online_sbi=0.0, paired=1.0, augment=still)
    x, labels, masks, _ = BatchSampler(data, preset("tiny"), train).dense_batch(3)
    reals, fakes = x[labels == 0], x[labels == 1]
    for fake, mask in zip(fakes, masks[labels == 1], strict=True):
        untouched = mask == 0
        assert untouched.float().mean() > 0.2 and mask.max() > 0  # changed somewhere
        gaps = [(fake - real).abs()[:, untouched].max().item() for real in reals]
        assert min(gaps) < 2 / 255, gaps  # its own real crop, not merely a similar one
    plain = dataclasses.replace(train, paired=0.0)
    unpaired = BatchSampler(data, preset("tiny"), plain).dense_batch(3)[0]
    assert not torch.equal(unpaired, x)


def _train(data: Path, out: Path, steps: int, resume: bool = False, **over):
    from likeness.detector.train import Trainer

    overrides = {"preset": "tiny", "steps": 120, "warmup": 10, "num_threads": 1, **over}
    trainer = Trainer(data, out, overrides=overrides, resume=resume)
    trainer.run(steps=steps)
    return trainer


def test_tiny_detector_learns_self_blends_and_ships_calibrated_weights(astro_set, tmp_path):
    from likeness.detector.model import DetectorModel
    from likeness.training import read_losses

    trainer = _train(astro_set, tmp_path / "run", steps=120, checkpoint_every=60)
    val = trainer.last_validation
    assert val["val_auc"] > 0.8, val
    rows = read_losses(tmp_path / "run")
    assert rows[-1]["step"] == 120 and rows[-1]["val_auc"] == pytest.approx(
        val["val_auc"], abs=1e-4
    )
    model = DetectorModel.from_pretrained(tmp_path / "run" / "weights")
    decision = model.decision
    assert 0 < decision.threshold < 1 and decision.calibration.method == "platt"
    assert decision.validation["real_videos"] == 3 and decision.validation["video_fpr"] == 0
    from likeness.datasets.fakes_format import FakesSet
    from likeness.detector.data import evaluation_images

    data = FakesSet.open(astro_set)
    val_samples = data.select("val")
    probs = model.probabilities(evaluation_images(data, val_samples, 128))
    labels = np.array([s.label for s in val_samples])
    assert probs.min() >= 0 and probs.max() <= 1
    assert metrics.auc(labels, probs) > 0.8
    weights = tmp_path / "run" / "weights" / "model.safetensors"
    assert weights.stat().st_size < 8 * 2**20


def test_input_size_override_reaches_the_network_its_weights_and_resume(astro_set, tmp_path):
    from likeness.detector.model import DetectorModel

    trainer = _train(astro_set, tmp_path / "run", steps=2, checkpoint_every=2, input_size=96)
    assert trainer.config.input_size == 96  # the tiny preset reads 64
    model = DetectorModel.from_pretrained(tmp_path / "run" / "weights")
    assert model.config.input_size == 96
    resumed = _train(astro_set, tmp_path / "run", steps=1, resume=True)
    assert resumed.config.input_size == 96
    with pytest.raises(InputError, match="input_size"):
        _train(astro_set, tmp_path / "bad", steps=1, input_size=20)


def test_resume_continues_exactly(astro_set, tmp_path):
    straight = _train(astro_set, tmp_path / "a", steps=6, checkpoint_every=3)
    _train(astro_set, tmp_path / "b", steps=3, checkpoint_every=3)
    resumed = _train(astro_set, tmp_path / "b", steps=3, resume=True)
    assert resumed.state.step == 6
    for (name, a), b in zip(
        straight.network.state_dict().items(), resumed.network.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    with pytest.raises(InputError, match="already holds a run"):
        _train(astro_set, tmp_path / "a", steps=1)


def test_weight_average_follows_the_network_slowly_and_resumes_exactly(astro_set, tmp_path):
    from safetensors.torch import load_file

    from likeness.training import WeightAverage

    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    start = {k: v.clone() for k, v in net.state_dict().items()}
    average = WeightAverage(net, decay=0.9)
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].running_mean.add_(2.0)
    average.update(net)
    mine = average.network.state_dict()
    assert torch.allclose(mine["0.weight"], start["0.weight"] + 0.1)  # a tenth of the way
    assert torch.allclose(mine["1.running_mean"], start["1.running_mean"] + 0.2)  # buffers too
    assert not any(p.requires_grad for p in average.network.parameters())

    straight = _train(astro_set, tmp_path / "a", steps=6, checkpoint_every=3, ema=0.8)
    _train(astro_set, tmp_path / "b", steps=3, checkpoint_every=3, ema=0.8)
    resumed = _train(astro_set, tmp_path / "b", steps=3, resume=True)
    for (name, a), b in zip(
        straight.exported.state_dict().items(),
        resumed.exported.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b), name
    # What ships is the average, not the last step's weights.
    shipped = load_file(str(tmp_path / "a" / "weights" / "model.safetensors"))
    name = next(k for k, v in shipped.items() if v.ndim == 4)
    averaged = straight.exported.state_dict()[name].half()
    trained = straight.network.state_dict()[name].half()
    assert torch.equal(shipped[name], averaged) and not torch.equal(shipped[name], trained)


def test_missing_detector_weights_is_a_clear_model_error(tmp_path):
    from likeness.detector.model import DetectorModel
    from likeness.errors import ModelError

    with pytest.raises(ModelError, match="likeness train detector"):
        DetectorModel.from_pretrained(tmp_path)


# --- the training set from a pack ------------------------------------------------------


@pytest.fixture(scope="module")
def small_pack(tmp_path_factory, astronaut, face_stack) -> Path:
    """Two 'people' in train (a clip and a photo) and one in val, from the astronaut."""
    from likeness.datasets.pack import PackConfig, write_pack
    from tests import samples

    folder = tmp_path_factory.mktemp("people")
    samples.face_video(folder / "alpha.mp4", astronaut, frames=8)
    samples.face_video(folder / "gamma.mp4", astronaut[:, ::-1].copy(), frames=8)
    (folder / "beta.png").write_bytes(samples.png_bytes(np.ascontiguousarray(astronaut[:, ::-1])))
    split = folder / "split.tsv"
    split.write_text("alpha\ttrain\nbeta\ttrain\ngamma\tval\n")
    out = tmp_path_factory.mktemp("packs") / "pack"
    write_pack(
        [folder / "alpha.mp4", folder / "beta.png", folder / "gamma.mp4"],
        out,
        PackConfig(every=1, split_file=split),
        stack=face_stack,
    )
    return out


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory) -> Path:
    """An untrained tiny generator: its output is noise, but every path runs."""
    from likeness.generator.config import preset
    from likeness.generator.model import GeneratorNetworks, save_weights

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("generator") / "g-tiny"
    save_weights(GeneratorNetworks(preset("tiny")), folder)
    return folder


def test_fakes_from_a_pack_keep_splits_and_are_not_watermarked(
    small_pack, tiny_generator, tmp_path
):
    from likeness.datasets.fakes_format import FakesSet
    from likeness.datasets.pack_reader import Pack
    from likeness.pipelines.fakes import FakesConfig, make_fakes

    out = tmp_path / "fakes"
    config = FakesConfig(every=2, weights=(tiny_generator,), families=("sbi",))
    report = make_fakes(small_pack, out, config)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["watermarked"] is False and "do not publish" in manifest["purpose"]
    assert report.counts["train"]["real"] == 4 + 1  # 4 sampled frames of alpha, the photo
    assert set(report.counts["train"]) == {"real", "generator-self", "generator-cross", "sbi"}
    # gamma is alone in val: no one to cross with.
    assert "generator-cross" not in report.counts["val"]
    data = FakesSet.open(out)
    pack = Pack.open(small_pack)
    split_of = {"alpha": "train", "beta": "train", "gamma": "val"}
    for s in data.samples:
        assert s.split == split_of[s.identity]
        assert data.read(s).shape == (256, 256, 3)
        if s.family == "generator-cross":  # another person, driven by this clip
            assert pack.item(s.source).identity == s.identity != pack.item(s.item).identity
        else:
            assert pack.item(s.item).identity == s.identity
        if s.label == 0:
            assert data.mesh(s) is not None
            assert not s.mask and not data.mask(s).any()
        else:  # every fake knows what it changed
            mask = data.mask(s)
            assert mask.shape == (256, 256) and 0.02 < mask.mean() < 0.9 and mask.max() > 0.2
    encodings: dict[str, set] = {}
    for s in data.samples:
        encodings.setdefault(s.video, set()).add(s.encoding)
    assert all(len(e) == 1 for e in encodings.values())  # one round trip per video
    with (out / "samples.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == len(data.samples)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_every_pure_family_lands_in_the_set_with_its_mask(small_pack, tmp_path):
    from likeness.datasets.fakes_format import FakesSet
    from likeness.pipelines.fakes import PURE_FAMILIES, FakesConfig, make_fakes

    out = tmp_path / "fakes"
    # 4 sampled frames of alpha and 4 of beta (train), the four families taking turns.
    report = make_fakes(small_pack, out, FakesConfig(every=2, generator=False))
    assert set(report.counts["train"]) == {"real", *PURE_FAMILIES}
    data = FakesSet.open(out)
    for s in data.select(label=1):
        mask = data.mask(s)
        assert mask is not None and mask.max() > 0.2, s.family
    # gamma is alone in val: no donor for swap or lipsync there.
    assert not {"swap", "lipsync"} & set(report.counts.get("val", {}))
    with pytest.raises(InputError, match="unknown fake family"):
        FakesConfig(families=("deepfake",))


# --- dense head, online families, leave-one-family-out -----------------------------------


def test_mask_head_maps_the_crop_and_its_loss_prefers_the_true_mask():
    from likeness.detector.config import preset
    from likeness.detector.network import FaceClassifier
    from likeness.detector.train import _mask_loss

    net = FaceClassifier(preset("tiny")).eval()
    images = torch.rand(3, 3, 128, 128)
    with torch.no_grad():
        logits, maps = net.forward_dense(images)
        assert torch.allclose(logits, net(images), atol=1e-5)  # one backbone, one logit
    assert logits.shape == (3,) and maps.shape == (3, 8, 8)  # stride 8 at 64 px input
    masks = torch.zeros(2, 64, 64)
    masks[:, 16:48, 16:48] = 1.0  # a changed square in the middle
    known = torch.ones(2)
    truth = torch.full((2, 8, 8), -6.0)
    truth[:, 2:6, 2:6] = 6.0
    assert _mask_loss(truth, masks, known) < 0.05
    assert _mask_loss(-truth, masks, known) > 5
    # Predicting "nothing changed anywhere" must not win: changed cells weigh as much.
    nothing = torch.full((2, 8, 8), -6.0)
    assert _mask_loss(nothing, masks, known) > 2
    assert _mask_loss(-truth, masks, torch.zeros(2)) == 0  # no known mask: no loss


def test_masks_follow_the_flip_and_crop_of_their_crop():
    from likeness.detector.config import AugmentConfig
    from likeness.detector.data import augment

    rgb = np.zeros((128, 128, 3), np.uint8)
    rgb[:, :40] = 255  # the left band is bright and changed
    mask = np.zeros((128, 128), np.float32)
    mask[:, :40] = 1.0
    cfg = AugmentConfig(flip=1.0, colour=0, crop=0.1, blur=0, resize=0, jpeg=0, h264=0, noise=0)
    for seed in range(5):
        out, out_mask = augment(rgb, cfg, np.random.default_rng(seed), 64, mask)
        assert out.shape == (64, 64, 3) and out_mask.shape == (64, 64)
        bright = out[..., 0] > 127
        agree = np.mean(bright == (out_mask > 0.5))
        assert agree > 0.95 and out_mask[:, -8:].mean() > 0.9  # flipped to the right


def test_grey_and_degraded_views_look_like_the_real_footage_they_stand_for():
    from likeness.detector.config import AugmentConfig
    from likeness.detector.data import augment

    rng = np.random.default_rng(0)
    rgb = np.zeros((256, 256, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, 256)[None].astype(np.uint8)  # red ramp
    rgb[::2, ::2, 1] = 200  # fine green checker: detail that a small source cannot keep
    off = dict(flip=0, colour=0, crop=0, blur=0, resize=0, jpeg=0, h264=0, noise=0)
    grey = augment(rgb, AugmentConfig(**off, grayscale=1.0), rng, 256)
    assert np.abs(grey.astype(int) - grey[..., :1]).max() == 0  # R = G = B
    assert grey.std() > 10  # still the picture, not a flat grey
    worse = augment(rgb, AugmentConfig(**off, degrade=1.0), rng, 256)
    detail = np.abs(np.diff(rgb[..., 1].astype(float), axis=1)).mean()
    assert np.abs(np.diff(worse[..., 1].astype(float), axis=1)).mean() < 0.5 * detail
    ramp = worse[..., 0].astype(float).mean(axis=0)
    assert np.corrcoef(ramp, np.arange(256))[0, 1] > 0.98  # the coarse picture survives
    same = augment(rgb, AugmentConfig(**off), rng, 256)
    assert np.array_equal(same, rgb)  # both off: untouched


def test_sharpen_raises_detail_keeps_the_picture_and_leaves_other_runs_alone():
    import cv2

    from likeness.detector.config import AugmentConfig
    from likeness.detector.data import augment

    rgb = np.full((256, 256, 3), 128, np.uint8)
    rgb[:, 128:] = 160  # one soft edge, blurred as a face's would be
    rgb = cv2.GaussianBlur(rgb, (0, 0), 2.0)
    off = dict(flip=0, colour=0, crop=0, blur=0, resize=0, jpeg=0, h264=0, noise=0)
    sharp = augment(rgb, AugmentConfig(**off, sharpen=1.0), np.random.default_rng(0), 256)

    def detail(img):
        return float(np.var(cv2.Laplacian(img[..., 0].astype(np.float32), cv2.CV_32F)))

    assert detail(sharp) > 1.5 * detail(rgb)
    assert abs(float(sharp.mean()) - float(rgb.mean())) < 1.0  # same picture, crisper
    # Off (the default), it draws nothing: a run without it keeps its random stream.
    a = np.random.default_rng(5)
    augment(rgb, AugmentConfig(), a, 128)
    b = np.random.default_rng(5)
    augment(rgb, AugmentConfig(sharpen=0.0), b, 128)
    assert a.random() == b.random()


def test_left_out_family_never_reaches_a_batch(astro_set):
    from likeness.datasets.fakes_format import FakesSet
    from likeness.detector.config import TrainConfig, preset
    from likeness.detector.data import BatchSampler

    data = FakesSet.open(astro_set)
    train = TrainConfig(online_sbi=0.5, exclude_families=("sbi",))
    sampler = BatchSampler(data, preset("tiny"), train)
    # One person only: the donor families cannot run, sbi is left out: lowres remains.
    assert sampler.online == ("lowres",) and not sampler.families
    _, labels, masks, known = sampler.dense_batch(0, 8)
    assert known.all() and (masks[labels == 1].flatten(1).max(1).values > 0).all()
    assert masks[labels == 0].abs().sum() == 0
    with pytest.raises(InputError, match="no fakes"):
        BatchSampler(data, preset("tiny"), TrainConfig(exclude_families=("sbi", "lowres")))


def test_gpu_script_trains_from_the_tree_and_returns_what_the_tool_carries(astro_set, tmp_path):
    """tools/gpu/train_detector.py, dry run on the CPU (tiny preset, two batch processes):
    it probes the throughput, sizes the schedule to the minutes given, and leaves the
    best weights, their calibration and the logs in OUT, no more files than the device
    tool returns (8), without the packages the GPU machine lacks, nor the CLI's."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(
        "import sys\nfor n in ('av', 'c2pa', 'ai_edge_litert', 'diffusers', 'typer'):\n"
        "    sys.modules[n] = None\n"
    )
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(block), PRESET="tiny", INPUT="64", MINUTES="0.1",
               BATCH="8", WORKERS="2", DEVICE="cpu", DATA=str(astro_set), OUT=str(out),
               RUNS=str(tmp_path / "runs"), OMP_NUM_THREADS="1")  # fmt: skip
    script = str(root / "tools/gpu/train_detector.py")
    done = subprocess.run([sys.executable, script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "loss.csv", "probe.txt", "summary.json"} <= files
    assert len(files) <= 8
    summary = json.loads((out / "summary.json").read_text())
    assert summary["planned_steps"] >= 100  # the floor: no schedule shorter than its warm-up
    assert 0 < summary["step"] <= summary["planned_steps"]
    assert summary["overrides"]["batch_processes"] == 2
    with (out / "loss.csv").open() as fh:
        assert int(list(csv.DictReader(fh))[-1]["step"]) == summary["step"]


def test_training_starts_from_another_detectors_backbone(astro_set, tmp_path):
    import dataclasses

    from likeness.detector.config import preset
    from likeness.detector.model import save_weights
    from likeness.detector.network import FaceClassifier

    torch.manual_seed(3)
    plain = FaceClassifier(dataclasses.replace(preset("tiny"), mask_head=False))
    save_weights(plain, tmp_path / "old")
    trainer = _train(astro_set, tmp_path / "run", steps=0, init=str(tmp_path / "old"))
    own = trainer.network.state_dict()
    for name, value in plain.state_dict().items():  # as shipped: float16
        expected = value.half().float() if value.is_floating_point() else value
        assert torch.equal(own[name], expected), name
    assert trainer.network.mask_head is not None
    with pytest.raises(InputError, match="cannot read detector weights"):
        _train(astro_set, tmp_path / "run2", steps=0, init=str(tmp_path / "nowhere"))


def test_real_footage_kinds_come_from_the_corpus_notes():
    from likeness.bench.detector import footage_kind

    def row(file, kind, notes="", width="", height=""):
        return {"file": file, "kind": kind, "notes": notes, "width": width, "height": height}

    rows = {
        "grid": row("videos/grid.mpg", "video", "talking, blue screen", "360", "288"),
        "gray": row("photos/g.png", "photo", "grayscale 150 px crop", "150", "150"),
        "cam": row("videos/c.mp4", "video", "webcam, indoor", "400", "300"),
        "small": row("videos/s.mp4", "video", "", "360", "288"),
        "hd": row("videos/h.mp4", "video", "", "1280", "720"),
        "crop": row("videos/d.mp4", "video", "MEAD-style, 256 px crop", "256", "256"),
    }
    kinds = {name: footage_kind(name, rows) for name in rows}
    assert kinds == {
        "grid": "mpeg1-bluescreen",
        "gray": "grayscale-photo",
        "cam": "webcam",
        "small": "video-low-res",
        "hd": "video",
        "crop": "video-256-crop",
    }
    assert footage_kind("unknown-item", {}) == "video"


def test_bench_reports_each_generator_checkpoint_apart():
    from types import SimpleNamespace

    from likeness.bench.detector import by_generator

    # Videos: 4 real, 3 fakes of checkpoint A (all above every real), 3 of B (mixed).
    rows = [("r0", 0, ""), ("r1", 0, ""), ("r2", 0, ""), ("r3", 0, ""),
            ("a0", 1, "gen-A"), ("a1", 1, "gen-A"), ("a2", 1, "gen-A"),
            ("b0", 1, "gen-B"), ("b1", 1, "gen-B"), ("b2", 1, "gen-B")]  # fmt: skip
    samples = [SimpleNamespace(video=v, label=y, weights=w) for v, y, w in rows]
    names = [v for v, _, _ in rows]
    labels = np.array([y for _, y, _ in rows])
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.8, 0.9, 0.95, 0.15, 0.5, 0.7])
    out = by_generator(samples, names, scores, labels, threshold=0.65)
    assert set(out) == {"gen-A", "gen-B"}
    assert out["gen-A"]["auc"] == 1.0 and out["gen-A"]["n_fake"] == 3
    assert out["gen-A"]["detected_at_threshold"] == 1.0
    # B against the four reals: 0.15 beats 1 of 4, 0.5 beats 3, 0.7 beats 4 -> 8 / 12.
    assert abs(out["gen-B"]["auc"] - 8 / 12) < 1e-9 and out["gen-B"]["n_real"] == 4
    assert abs(out["gen-B"]["detected_at_threshold"] - 1 / 3) < 1e-9
    # The bench's Markdown table gets a row per checkpoint.
    from likeness.bench.detector import _table

    table = _table({"conditions": {}, "video_by_generator": out})
    assert "| gen-A | 1.000 |" in table and "| gen-B | 0.667 |" in table


@pytest.fixture(scope="module")
def two_family_set(tmp_path_factory, astronaut, face_stack) -> Path:
    """Real astronaut crops and sbi + lowres fakes in train, val and test."""
    from likeness.datasets.families import make_forgery
    from likeness.faces.regions import KEY_LANDMARKS

    def fake(i, crop, mesh, rng):
        family = ("sbi", "lowres")[i % 2]
        made = make_forgery(family, crop, mesh[list(KEY_LANDMARKS)], rng)
        return family, made.image, made.mask

    out = tmp_path_factory.mktemp("fakes") / "two"
    face = face_stack.analyze(astronaut)[0]
    sizes = {"train": 32, "val": 16, "test": 16}
    return _astro_fakes(out, astronaut, face, sizes, 4, fake, 1, lambda s: f"astronaut-{s}")


def test_leave_one_family_out_bench_holds_each_kind_out(two_family_set, tmp_path):
    from likeness.bench import detector_lofo

    path = detector_lofo.run(tmp_path, quick=True, pack=two_family_set, steps=20)
    result = json.loads(path.read_text())
    assert list(result["matrix"]) == ["sbi", "lowres", "none (reference)"]
    for name, cells in result["matrix"].items():
        assert set(cells) == set(detector_lofo.KINDS)
        for kind in ("sbi", "lowres"):
            assert 0 <= cells[kind]["auc"] <= 1 and cells[kind]["n_real"] > 0, (name, kind)
            low, high = cells[kind]["auc_ci95"]
            assert low <= cells[kind]["auc"] <= high, (name, kind)
        assert cells["swap"] == {}  # not in the set
    assert set(result["held_out_video_auc"]) == {"sbi", "lowres"}
    # Each run is also read at its best-validation checkpoint, the step it was kept at.
    best = result["matrix_best_checkpoint"]
    assert set(best) == set(result["matrix"])
    assert all(1 <= row["step"] <= 20 and 0 <= row["sbi"]["auc"] <= 1 for row in best.values())
    assert set(result["held_out_video_auc_best_checkpoint"]) == {"sbi", "lowres"}
    assert "**" in result["table_markdown"] and (tmp_path / "detector_lofo.png").is_file()
    assert result["complete"] is True
    assert set(result["training_seconds_per_run"]) == set(result["matrix"])
    assert all(v > 0 for v in result["training_seconds_per_run"].values())
    # The same command again reuses every finished run (same figures, no training) ...
    runs = tmp_path / detector_lofo.RUNS
    stamps = {p: p.stat().st_mtime_ns for p in runs.glob("*/weights/model.safetensors")}
    assert len(stamps) == 3
    again = json.loads(
        detector_lofo.run(tmp_path, quick=True, pack=two_family_set, steps=20).read_text()
    )
    assert again["matrix"] == result["matrix"]
    assert again["training_seconds_per_run"] == result["training_seconds_per_run"]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # ... and refuses a run folder made under another protocol instead of mixing them.
    with pytest.raises(InputError, match="another protocol"):
        detector_lofo.run(tmp_path, quick=True, pack=two_family_set, steps=21)
    with pytest.raises(InputError, match="needs --pack"):
        detector_lofo.run(tmp_path)


def test_leave_one_family_out_scores_a_run_that_could_not_be_calibrated(two_family_set, tmp_path):
    from likeness.bench import detector_lofo
    from likeness.datasets.fakes_format import FakesSet
    from likeness.detector.config import preset
    from likeness.detector.model import Decision, DetectorModel, save_weights
    from likeness.detector.network import FaceClassifier
    from likeness.errors import ModelError

    # A short run still worse than chance on validation is saved without calibration.json
    # (the trainer will not fit an inverted calibration); CI met one at 20 steps.
    torch.manual_seed(0)
    folder = tmp_path / "weights"
    save_weights(FaceClassifier(preset("tiny")), folder)
    with pytest.raises(ModelError, match=r"calibration\.json"):
        DetectorModel.from_pretrained(folder)  # what scan loads: refused
    model = DetectorModel.from_pretrained(folder, uncalibrated=True)
    assert model.decision == Decision() and model.calibrated is False
    assert DetectorModel.from_pretrained(uncalibrated=True).calibrated is True  # shipped
    data = FakesSet.open(two_family_set)
    cells = detector_lofo._score(folder, data, data.select("test"))
    for kind in ("sbi", "lowres"):
        assert 0 <= cells[kind]["auc"] <= 1 and cells[kind]["uncalibrated"] is True
    assert cells["swap"] == {}


def test_leave_one_family_out_bench_averages_several_seeds(two_family_set, tmp_path):
    from likeness.bench import detector_lofo

    path = detector_lofo.run(
        tmp_path, quick=True, pack=two_family_set, steps=20, kinds=["lowres"], seed=3, seeds=2
    )
    result = json.loads(path.read_text())
    assert result["seeds"] == [3, 4] and result["complete"] is True
    per_seed = [json.loads((tmp_path / f"seed-{s}" / "detector_lofo.json").read_text())
                for s in (3, 4)]  # fmt: skip
    assert [r["protocol"]["seed"] for r in per_seed] == [3, 4]
    for name in ("lowres", "none (reference)"):
        for kind in ("sbi", "lowres"):
            values = [r["matrix"][name][kind]["auc"] for r in per_seed]
            cell = result["matrix"][name][kind]
            assert cell["aucs"] == values
            assert abs(cell["auc"] - np.mean(values)) < 1e-12
            assert abs(cell["auc_sd"] - np.std(values, ddof=1)) < 1e-12
    assert result["held_out_video_auc"]["lowres"] == result["matrix"]["lowres"]["lowres"]["auc"]
    assert "±" in result["table_markdown"] and (tmp_path / "detector_lofo.png").is_file()
    with pytest.raises(InputError, match="--seeds"):
        detector_lofo.run(tmp_path / "x", quick=True, pack=two_family_set, seeds=0)


def test_leave_one_family_out_bench_runs_chosen_kinds_at_a_chosen_size(two_family_set, tmp_path):
    from likeness.bench import detector_lofo
    from likeness.detector.model import DetectorModel

    path = detector_lofo.run(
        tmp_path, quick=True, pack=two_family_set, steps=20, input_size=96, kinds=["lowres"]
    )
    result = json.loads(path.read_text())
    assert list(result["matrix"]) == ["lowres", "none (reference)"]
    assert result["protocol"]["input_size"] == 96 and result["complete"] is True
    for run in ("lowres", "all"):
        weights = tmp_path / detector_lofo.RUNS / run / "weights"
        assert DetectorModel.from_pretrained(weights).config.input_size == 96
    with pytest.raises(InputError, match="another protocol"):  # same folder, preset size
        detector_lofo.run(tmp_path, quick=True, pack=two_family_set, steps=20, kinds=["lowres"])
    with pytest.raises(InputError, match="not in the test split"):
        detector_lofo.run(tmp_path / "b", quick=True, pack=two_family_set, kinds=["swap"])
    with pytest.raises(InputError, match="unknown"):
        detector_lofo.run(tmp_path / "b", quick=True, pack=two_family_set, kinds=["nope"])


def test_leave_one_family_out_bench_trains_every_run_with_a_recipe(two_family_set, tmp_path):
    import torch

    from likeness.bench import detector_lofo
    from likeness.training import CHECKPOINT

    recipe = tmp_path / "sharp.json"
    recipe.write_text(json.dumps({"augment": {"sharpen": 0.5}}))
    out = tmp_path / "bench"
    path = detector_lofo.run(
        out, quick=True, pack=two_family_set, steps=20, kinds=["lowres"], config=recipe, seed=3
    )
    result = json.loads(path.read_text())
    assert result["protocol"]["recipe"] == {"augment": {"sharpen": 0.5}}
    assert result["protocol"]["seed"] == 3
    for run in ("lowres", "all"):
        ckpt = torch.load(out / detector_lofo.RUNS / run / CHECKPOINT, weights_only=False)
        assert ckpt["train"]["augment"]["sharpen"] == 0.5 and ckpt["train"]["seed"] == 3
        assert list(ckpt["train"]["exclude_families"]) == (["lowres"] if run == "lowres" else [])
    # Runs made without the recipe, or under another seed, are another protocol, and the
    # recipe cannot move the protocol's own fields or name a field TrainConfig lacks.
    for other in ({"seed": 3}, {"config": recipe}):
        with pytest.raises(InputError, match="another protocol"):
            detector_lofo.run(
                out, quick=True, pack=two_family_set, steps=20, kinds=["lowres"], **other
            )
    for bad, match in (({"steps": 5}, "fixed by the protocol"), ({"nope": 1}, "nope")):
        recipe.write_text(json.dumps(bad))
        with pytest.raises(InputError, match=match):
            detector_lofo.run(tmp_path / "b", quick=True, pack=two_family_set, config=recipe)
    assert not (tmp_path / "b").exists()


# ---------------------------------------------------------------- crop score


def test_mask_evidence_reads_the_strongest_cells_and_the_score_adds_it():
    from likeness.detector.scoring import ScoreConfig, crop_scores, mask_evidence

    maps = np.full((3, 20, 20), 0.01)
    maps[1, :2, :] = 0.9  # 40 of 400 cells changed: a mouth-sized region
    maps[2, 0, 0] = 0.9  # one cell: diluted by the other 39 of the top tenth
    ev = mask_evidence(maps, 0.1)
    np.testing.assert_allclose(ev[1], np.log(0.9 / 0.1), rtol=1e-6)
    assert ev[0] < ev[2] < ev[1]
    logits = np.array([0.5, -1.0, 0.0])
    np.testing.assert_allclose(crop_scores(logits, maps, ScoreConfig()), logits)  # off
    on = crop_scores(logits, maps, ScoreConfig(mask_weight=2.0))
    np.testing.assert_allclose(on, logits + 2 * ev, rtol=1e-5)
    assert on.argmax() == 1  # the changed region outweighs a higher logit
    np.testing.assert_allclose(crop_scores(logits, None, ScoreConfig(mask_weight=2.0)), logits)


def test_the_score_setting_travels_with_the_calibration_and_old_files_read_as_before(tmp_path):
    from likeness.detector.model import Decision, read_decision
    from likeness.detector.scoring import ScoreConfig
    from likeness.errors import ModelError

    on = Decision(threshold=0.6, score=ScoreConfig(mask_weight=2.0, mask_top=0.2))
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(on.to_dict()))
    assert read_decision(path).score == ScoreConfig(mask_weight=2.0, mask_top=0.2)
    old = on.to_dict()
    del old["score"]  # a calibration.json from before the field
    path.write_text(json.dumps(old))
    assert read_decision(path).score == ScoreConfig()
    old["score"] = {"mask_weight": -1}
    path.write_text(json.dumps(old))
    with pytest.raises(ModelError):
        read_decision(path)


def test_scores_add_the_dense_heads_evidence_only_when_the_decision_asks(tmp_path):
    from likeness.detector.config import preset
    from likeness.detector.model import Decision, DetectorModel
    from likeness.detector.network import FaceClassifier
    from likeness.detector.scoring import ScoreConfig, mask_evidence

    torch.manual_seed(0)
    net = FaceClassifier(preset("tiny"))
    crops = np.random.default_rng(2).integers(0, 256, (4, 256, 256, 3), np.uint8)
    off = DetectorModel(net, Decision())
    np.testing.assert_allclose(off.scores(crops), off.logits(crops))
    on = DetectorModel(net, Decision(score=ScoreConfig(mask_weight=2.0)))
    logits, maps = on.dense(crops)
    np.testing.assert_allclose(on.scores(crops), logits + 2 * mask_evidence(maps, 0.1), rtol=1e-5)
    # the fused scorer's maps are the trained network's (batch norms folded)
    with torch.no_grad():
        from likeness.detector.data import resize_to
        from likeness.tensors import to_tensor

        x = to_tensor(np.stack([resize_to(c, net.config.input_size) for c in crops]), "cpu")
        want_logits, want_mask = net.eval().forward_dense(x)
    np.testing.assert_allclose(logits, want_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(maps, torch.sigmoid(want_mask).numpy(), atol=1e-4)
    # calibrated probabilities follow the score
    assert np.argsort(on.probabilities(crops)).tolist() == np.argsort(on.scores(crops)).tolist()


def test_a_run_with_the_dense_evidence_on_validates_and_ships_with_it(astro_set, tmp_path):
    from likeness.detector.model import DetectorModel
    from likeness.detector.scoring import ScoreConfig, crop_scores

    trainer = _train(astro_set, tmp_path / "run", steps=120, score={"mask_weight": 2.0})
    # validation scores are the logits plus the evidence of the same network's maps
    from likeness.detector.data import evaluation_images
    from likeness.tensors import to_tensor

    images = evaluation_images(trainer.data, trainer.val, trainer.config.input_size)
    with torch.no_grad():
        logits, mask = trainer.exported.eval().forward_dense(to_tensor(images, "cpu"))
    want = crop_scores(logits.numpy(), torch.sigmoid(mask).numpy(), ScoreConfig(mask_weight=2.0))
    np.testing.assert_allclose(trainer.val_logits(), want, rtol=1e-4, atol=1e-4)
    # calibrated on those scores, and the setting travels with the weights to `scan`
    shipped = DetectorModel.from_pretrained(tmp_path / "run" / "weights")
    assert shipped.decision.score == ScoreConfig(mask_weight=2.0)
    probs = shipped.probabilities(np.stack([trainer.data.read(s) for s in trainer.val]))
    # (the weights ship in float16: within 0.01 here)
    np.testing.assert_allclose(probs, shipped.decision.calibration(want), atol=0.02)
    assert shipped.decision.threshold == pytest.approx(trainer.decision.threshold)


def test_the_threshold_holds_real_faces_at_half_size_too(astro_set, tmp_path):
    """The false-positive quantile is taken over the real validation videos as they are
    and shrunk to `threshold_scales`; none of them, at either size, is over it (with 3
    real videos and runs the 1 % quantile is their maximum)."""
    from likeness.detector.data import shrunk
    from likeness.detector.model import DetectorModel
    from likeness.detector.pooling import pool_scores

    trainer = _train(astro_set, tmp_path / "run", steps=120, threshold_scales=[0.5])
    model = DetectorModel.from_pretrained(tmp_path / "run" / "weights")
    decision = model.decision
    assert decision.threshold == pytest.approx(trainer.decision.threshold)
    assert set(decision.validation["video_fpr_by_scale"]) == {"1", "0.5"}
    videos: dict[str, list] = {}
    for s in trainer.val:
        if s.label == 0:
            videos.setdefault(s.video, []).append(trainer.data.read(s))
    assert len(videos) == 3
    pooled = {
        scale: [pool_scores(model.probabilities(np.stack([shrunk(c, scale) for c in crops])),
                            decision.pooling) for crops in videos.values()]
        for scale in (1.0, 0.5)
    }  # fmt: skip
    # (weights in float16 and the images resized alike: within 0.01)
    assert max(pooled[1.0] + pooled[0.5]) <= decision.threshold + 0.01
    # and it had to: the same network calibrated on the faces as they are alone would
    # flag a real video at half size (this tiny detector learnt "blurred = blended")
    trainer.train = dataclasses.replace(trainer.train, threshold_scales=())
    trainer.validate()
    assert set(trainer.decision.validation["video_fpr_by_scale"]) == {"1"}
    assert trainer.decision.threshold < max(pooled[0.5])


def test_shrunk_keeps_the_size_and_drops_the_detail():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3), np.uint8)
    from likeness.detector.data import shrunk

    half = shrunk(img, 0.5)
    assert half.shape == img.shape and half.dtype == np.uint8
    assert shrunk(img, 1.0) is img
    # noise has its energy in the top octave, which halving removes
    assert (
        np.abs(np.diff(half.astype(float), axis=1)).mean()
        < 0.5 * np.abs(np.diff(img.astype(float), axis=1)).mean()
    )


def test_real_smooth_softens_real_crops_only():
    """`real_smooth` blurs the real slots of a batch and leaves the fakes' stream alone."""
    rng = np.random.default_rng(3)
    from likeness.detector.data import softened

    img = rng.integers(0, 256, (256, 256, 3), np.uint8)
    soft = softened(img, np.random.default_rng(0))
    assert soft.shape == img.shape
    assert (
        np.abs(np.diff(soft.astype(float), axis=1)).mean()
        < 0.5 * np.abs(np.diff(img.astype(float), axis=1)).mean()
    )


def test_real_smooth_reaches_the_real_slots_of_a_batch_and_not_the_fakes(astro_set):
    from likeness.datasets.fakes_format import FakesSet
    from likeness.detector.config import AugmentConfig, TrainConfig, preset
    from likeness.detector.data import BatchSampler

    data = FakesSet.open(astro_set)
    plain = AugmentConfig(flip=0, crop=0, colour=0, blur=0, resize=0, jpeg=0, h264=0, noise=0)

    def batch(real_smooth: float):
        augment = dataclasses.replace(plain, real_smooth=real_smooth)
        sampler = BatchSampler(data, preset("tiny"), TrainConfig(augment=augment))
        return sampler.batch(0, 16)

    (x0, y0), (x1, y1) = batch(0.0), batch(1.0)
    assert torch.equal(y0, y1)
    real, fake = y0 == 0, y0 == 1

    def detail(x):
        return (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().flatten(1).mean(1)

    assert (detail(x1[real]) < detail(x0[real])).all()
    assert torch.equal(x1[fake], x0[fake])
