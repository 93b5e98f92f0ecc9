"""Eyes and mouth (issue 15, items 2 and 3): the driving keypoints keep the mouth's and
lids' speed through smoothing, and the shipped model moves the mouth and irises the way
its keypoints ask, as far as it can today (the strict xfails mark what needs training).

Figures behind the thresholds (the shipped model, astronaut photo, measured by the face
stack on the rendered crop): inner-lip gap raised by 0.1 eye-corner widths in the
keypoints -> the output's by 0.097; by 0.3 -> 0.062 (the mouth collapses); irises moved
+-0.2 eye widths along the eye -> the output's by 0.051 and 0.071 eye widths of 0.4.
"""

from __future__ import annotations

import numpy as np
import pytest

from likeness.bench import face_metrics as fm
from likeness.faces.smooth import OneEuroFilter
from likeness.generator import keypoints as kpt
from likeness.generator.kp_smooth import KeypointSmoother

FPS = 25.0


def _face_like(rng: np.random.Generator) -> np.ndarray:
    """Keypoints spread over a face-sized box (the smoother needs no real face)."""
    return rng.uniform(-0.5, 0.5, (kpt.N_KEYPOINTS, 3)) * np.array([1.0, 1.2, 0.3])


def _speaking(seconds: float = 4.0, hz: float = 4.0, seed: int = 0):
    """Clean and tracked (jittered) keypoints of a head that drifts while the lower lip
    opens and closes at `hz` (speech rate)."""
    rng = np.random.default_rng(seed)
    base = _face_like(rng)
    t = np.arange(int(seconds * FPS)) / FPS
    clean = np.repeat(base[None], len(t), axis=0)
    clean[:, :, 0] += 0.05 * np.sin(2 * np.pi * 0.3 * t)[:, None]  # slow head drift
    lower = [kpt.MOUTH_ROWS[1], *kpt.JAW_ROWS]
    clean[:, lower, 1] += 0.06 * (0.5 - 0.5 * np.cos(2 * np.pi * hz * t))[:, None]
    tracked = clean + rng.normal(0, 0.003, clean.shape)
    return t, clean, tracked


def _run(smoother, t, kps):
    return np.stack([smoother(k, ti, scale=0.3) for k, ti in zip(kps, t, strict=True)])


def _gap(kps):
    return kps[:, kpt.MOUTH_ROWS[1], 1] - kps[:, kpt.MOUTH_ROWS[0], 1]


def test_smoothing_keeps_speech_on_the_lips_and_the_head_as_steady_as_before():
    t, clean, tracked = _speaking()
    old = _run(OneEuroFilter(), t, tracked)
    new = _run(KeypointSmoother(), t, tracked)
    gain_old, gain_new = fm.gain(_gap(old), _gap(clean)), fm.gain(_gap(new), _gap(clean))
    # measured: 0.68 with the lips' own filter, 0.18 with the head filter alone
    assert gain_new >= 0.6, gain_new
    assert gain_new >= gain_old + 0.3, (gain_old, gain_new)
    # the head (the rigid rows) comes from the same filter as before, unchanged
    rigid = list(kpt.RIGID_ROWS)
    np.testing.assert_allclose(new[:, rigid], old[:, rigid], atol=1e-5)
    # and the lips are still smoother than the tracker's raw jitter
    rough = lambda x: np.abs(np.diff(_gap(x), 2)).mean()  # noqa: E731
    assert rough(new) < 0.8 * rough(tracked), (rough(new), rough(tracked))


def test_a_blink_closes_the_smoothed_lids():
    rng = np.random.default_rng(1)
    base = _face_like(rng)
    upper, lower = kpt.LID_ROWS[0]
    base[lower, :2] = base[upper, :2] + np.array([0.0, 0.03])  # an open eye
    t = np.arange(50) / FPS
    kps = np.repeat(base[None], len(t), axis=0) + rng.normal(0, 0.001, (len(t), *base.shape))
    # a blink as the tracker sees one: 2 frames closing, 2 shut, 2 opening (0.24 s)
    shut = np.zeros(len(t))
    shut[25:31] = [0.5, 1.0, 1.0, 1.0, 1.0, 0.5]
    kps[:, upper, 1] += 0.03 * shut
    gap = lambda x: x[:, lower, 1] - x[:, upper, 1]  # noqa: E731
    closed = lambda x: gap(x).min() / gap(kps)[:20].mean()  # noqa: E731
    old = _run(OneEuroFilter(), t, kps)
    new = _run(KeypointSmoother(), t, kps)
    # what is left of the gap at the blink: measured 0.007 now, 0.158 with the head
    # filter alone (the eye never quite shut)
    assert closed(new) < 0.05, closed(new)
    assert closed(new) < closed(old) - 0.1, (closed(old), closed(new))


# ---------------------------------------------------------------- the shipped model


@pytest.fixture(scope="module")
def driven(face_stack, astronaut):
    from likeness.faces import AlignConfig, align_face
    from likeness.generator.model import GeneratorModel

    model = GeneratorModel.from_pretrained()
    face = face_stack.analyze(astronaut)[0]
    size = model.config.output_size
    crop = align_face(astronaut, face, AlignConfig(size=size))
    kp = kpt.from_face(face.landmarks, face.irises, crop.matrix, size)
    appearance = model.extract_appearance(crop.image)

    def render(target: np.ndarray):
        """The face the face stack finds in the crop rendered for `target` keypoints."""
        from likeness.bench.generator_quality import measure

        got = measure(face_stack, model.render(appearance, kp, target[None])[0])
        assert got is not None, "no face found in the rendered crop"
        return got

    return kp, render


def _open(kp: np.ndarray, by: float) -> np.ndarray:
    """The lower lip and jaw moved down by `by` outer eye-corner distances."""
    out = kp.copy()
    ref = np.linalg.norm(kp[kpt.AXIS_ROWS[1], :2] - kp[kpt.AXIS_ROWS[0], :2])
    rows = {p: i for i, p in enumerate(kpt.MESH_POINTS)}
    lower = [rows[p] for p in (14, 17, 91, 321)]  # inner and outer lower lip
    out[[*lower, *kpt.JAW_ROWS], 1] += by * ref
    return out


def _look(kp: np.ndarray, by: float) -> np.ndarray:
    """The irises moved `by` eye widths along their eye (towards the outer corner)."""
    out = kp.copy()
    rows = {p: i for i, p in enumerate(kpt.MESH_POINTS)}
    for iris, (outer, inner) in zip(kpt.IRIS_ROWS, fm.EYE_CORNERS, strict=True):
        out[iris, :2] += by * (kp[rows[outer], :2] - kp[rows[inner], :2])
    return out


@pytest.mark.slow
def test_a_driver_that_opens_its_mouth_opens_the_rendered_mouth(driven):
    kp, render = driven
    before = fm.mouth_open(render(kp).landmarks)
    after = fm.mouth_open(render(_open(kp, 0.1)).landmarks)
    # measured 0.097 for the keypoints' 0.1: half of it is the floor
    assert after - before >= 0.05, (before, after)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="issue 15: a wide opening (0.3 eye-corner widths) collapses to less than a "
    "small one (0.062 vs 0.097): the model never learnt a mouth interior; needs training",
)
def test_a_wide_open_driver_opens_the_rendered_mouth_wider_than_a_small_one(driven):
    kp, render = driven
    small = fm.mouth_open(render(_open(kp, 0.1)).landmarks)
    wide = fm.mouth_open(render(_open(kp, 0.3)).landmarks)
    assert wide > small + 0.1, (small, wide)


def _gaze_shift(driven, by: float) -> np.ndarray:
    kp, render = driven
    coords = []
    for sign in (-1, 1):
        got = render(_look(kp, sign * by))
        coords.append(fm.gaze_coords(got.landmarks, got.irises)[:, 0])
    return coords[1] - coords[0]  # per eye, along the eye, eye widths


@pytest.mark.slow
def test_irises_move_the_way_the_keypoints_look(driven):
    shift = _gaze_shift(driven, 0.2)
    # asked 0.4 eye widths; measured 0.051 and 0.071: the direction holds for both eyes
    assert (shift > 0.025).all(), shift


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="issue 15: the renderer moves the irises 13-18 % of what the iris keypoints "
    "ask (10-23 % on held-out clips); the warp is fixed by the lids and corners around "
    "them and no loss rewards the iris position: needs training",
)
def test_irises_move_at_least_half_as_far_as_the_keypoints(driven):
    shift = _gaze_shift(driven, 0.2)
    assert (shift > 0.2).all(), shift


def test_mouth_correlation_and_gain_read_how_far_one_series_follows_another():
    rng = np.random.default_rng(2)
    driver = rng.uniform(0.0, 0.4, 40)
    half = 0.1 + 0.5 * driver
    assert fm.gain(half, driver) == pytest.approx(0.5)
    assert fm.correlation(half, driver) == pytest.approx(1.0)
    assert np.isnan(fm.correlation(np.full(40, 0.1), driver))  # a still mouth
    assert abs(fm.correlation(rng.uniform(0, 0.4, 40), driver)) < 0.5
    # the mesh ratio: inner-lip gap over the outer eye corners, any face size
    mesh = np.zeros((468, 3))
    mesh[33, 0], mesh[263, 0] = -50, 50
    mesh[13, 1], mesh[14, 1] = 0, 20
    assert fm.mouth_open(mesh) == pytest.approx(0.2)
    assert fm.mouth_open(mesh * 3) == pytest.approx(0.2)


def _eyes_image(along: float, size: int = 128):
    """A grey face-sized crop with a dark iris disc `along` eye widths from each eye's
    centre towards its outer corner, and keypoints whose corners place the eyes."""
    import torch

    from likeness.generator import losses as L

    kp = np.zeros((kpt.N_KEYPOINTS, 3), np.float32)
    image = np.full((size, size, 3), 0.7, np.float32)
    yy, xx = np.mgrid[:size, :size]
    for (outer, inner), (xo, xi) in zip(L._CORNERS, ((-0.6, -0.2), (0.6, 0.2)), strict=True):
        kp[outer, :2], kp[inner, :2] = (xo, -0.2), (xi, -0.2)
        cx = (xi + xo) / 2 + along * (xo - xi)
        px, py = (cx + 1) / 2 * size - 0.5, (-0.2 + 1) / 2 * size - 0.5
        image[(xx - px) ** 2 + (yy - py) ** 2 <= (0.06 * size / 2) ** 2] = 0.15
    return torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(kp)[None]


def test_the_iris_loss_reads_where_the_dark_of_the_eye_sits_and_pulls_it_there():
    from likeness.generator import losses as L

    centre, kp = _eyes_image(0.0)
    moved, _ = _eyes_image(0.2)
    assert L.iris_centroids(centre, kp).abs().max() < 0.02
    along = L.iris_centroids(moved, kp)[0, :, 0]
    assert (along - 0.2).abs().max() < 0.05, along  # both eyes, towards the outer corner
    assert L.iris_loss(centre, centre, kp) < 1e-6
    pred = centre.clone().requires_grad_(True)
    loss = L.iris_loss(pred, moved, kp)
    assert loss > 0.15
    loss.backward()
    # the gradient darkens the target's iris place (lowering the loss)
    at_target = moved[0, 0] < 0.5
    assert pred.grad[0, 0][at_target].mean() > 0
