"""Eyes and mouth (issue 15, items 2 and 3): the driving keypoints keep the mouth's and
lids' speed through smoothing, and the shipped model moves the mouth and irises the way
its keypoints ask, as far as it can today (the strict xfail marks what needs training);
the irises with the gaze retarget after the render (`likeness.generator.gaze`).

Figures behind the thresholds (the shipped model, astronaut photo, measured by the face
stack on the rendered crop): inner-lip gap raised by 0.1 eye-corner widths in the
keypoints -> the output's by 0.097; by 0.3 -> 0.062 (the mouth collapses); irises moved
+-0.2 eye widths along the eye -> the output's by 0.051 and 0.071 eye widths of 0.4 from
the renderer alone, 0.281 and 0.320 with the gaze retarget.
"""

from __future__ import annotations

import numpy as np
import pytest

from likeness.bench import face_metrics as fm
from likeness.faces.smooth import OneEuroFilter
from likeness.generator import keypoints as kpt
from likeness.generator.kp_smooth import HEAD, KeypointSmoother

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


def test_smoothing_keeps_speech_on_the_lips_and_the_head_on_its_own_filter():
    t, clean, tracked = _speaking()
    old = _run(OneEuroFilter(), t, tracked)
    new = _run(KeypointSmoother(), t, tracked)
    gain_old, gain_new = fm.gain(_gap(old), _gap(clean)), fm.gain(_gap(new), _gap(clean))
    # measured: 0.82 with the lips' own 12 Hz filter (0.68 at 6 Hz), 0.18 with the 0.5 Hz
    # filter alone
    assert gain_new >= 0.6, gain_new
    assert gain_new >= gain_old + 0.3, (gain_old, gain_new)
    # the head (the rigid rows) is the head filter's (kp_smooth.HEAD) alone
    rigid = list(kpt.RIGID_ROWS)
    head = _run(OneEuroFilter(HEAD), t, tracked)
    np.testing.assert_allclose(new[:, rigid], head[:, rigid], atol=1e-5)
    # and the lips are still smoother than the tracker's raw jitter: 0.83 of it left at
    # 12 Hz (0.6 at the 6 Hz used until 2026-12-07 late; kp_smooth.EXPRESSION says why
    # the output is better for the lighter filter)
    rough = lambda x: np.abs(np.diff(_gap(x), 2)).mean()  # noqa: E731
    assert rough(new) < 0.9 * rough(tracked), (rough(new), rough(tracked))


def test_the_head_filter_follows_a_nod_the_old_one_damped_and_still_calms_jitter():
    rng = np.random.default_rng(3)
    base = _face_like(rng)
    t = np.arange(int(4 * FPS)) / FPS
    nod = 0.01 * np.sin(2 * np.pi * 1.0 * t)  # a small 1 Hz nod (2.5 px of a 256 px crop)
    clean = np.repeat(base[None], len(t), axis=0)
    clean[:, :, 1] += nod[:, None]
    tracked = clean + rng.normal(0, 0.003, clean.shape)
    rigid = list(kpt.RIGID_ROWS)

    def follow(kps):  # least-squares gain of the rows' mean height on the nod
        return fm.gain(kps[:, rigid, 1].mean(1), clean[:, rigid, 1].mean(1))

    # measured: 0.93 with the 4 Hz head filter, 0.60 with the 0.5 Hz one
    assert follow(_run(KeypointSmoother(), t, tracked)) > 0.85
    assert follow(_run(OneEuroFilter(), t, tracked)) < 0.7
    # still head: the filter takes out more than half of the tracker's jitter (0.42 of
    # it is left; the 0.5 Hz filter left 0.11)
    still = base[None] + rng.normal(0, 0.003, (len(t), *base.shape))
    shake = np.abs(np.diff(_run(KeypointSmoother(), t, still)[:, rigid], axis=0)).mean()
    assert shake < 0.6 * np.abs(np.diff(still[:, rigid], axis=0)).mean()


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
    # asked 0.4 eye widths; measured 0.281 and 0.320 (0.051 and 0.071 without the gaze
    # retarget): the direction holds for both eyes
    assert (shift > 0.025).all(), shift


@pytest.mark.slow
def test_irises_move_at_least_half_as_far_as_the_keypoints(driven):
    # the renderer alone moves them 13-18 % of the way (its warp is pinned by the lids
    # and corners); `gaze.retarget_gaze` after it: measured 0.281 and 0.320 of 0.4
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


def _mouth_image(gap: float, turn: float = 0.0, size: int = 128):
    """A grey crop with a dark gap of `gap` (normalised units) between the inner lips,
    one mouth of 0.6 wide, turned by `turn` radians about its centre."""
    import torch

    from likeness.generator import losses as L

    c, s = np.cos(turn), np.sin(turn)
    centre = np.array([0.0, 0.4])

    def place(x, y):
        return centre + np.array([c * x - s * y, s * x + c * y])

    kp = np.zeros((kpt.N_KEYPOINTS, 3), np.float32)
    kp[L._MOUTH_CORNERS[0], :2], kp[L._MOUTH_CORNERS[1], :2] = place(-0.3, 0), place(0.3, 0)
    kp[L._INNER_LIPS[0], :2], kp[L._INNER_LIPS[1], :2] = place(0, -gap / 2), place(0, gap / 2)
    yy, xx = (np.mgrid[:size, :size] + 0.5) / size * 2 - 1
    along = c * (xx - centre[0]) + s * (yy - centre[1])
    across = -s * (xx - centre[0]) + c * (yy - centre[1])
    image = np.full((size, size, 3), 0.7, np.float32)
    image[(np.abs(along) < 0.27) & (np.abs(across) < gap / 2)] = 0.1
    return torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(kp)[None]


def test_the_mouth_profile_reads_how_far_the_lips_part_and_pulls_the_render_open():
    from likeness.generator import losses as L

    closed, _ = _mouth_image(0.02)
    open_, kp_open = _mouth_image(0.16)
    # darker in the middle rows the wider the gap; the outer rows are the lips' grey
    p_closed, p_open = L.mouth_profiles(closed, kp_open)[0], L.mouth_profiles(open_, kp_open)[0]
    assert p_open[7:9].max() < 0.25 and p_closed[7:9].min() > 0.5
    assert abs(p_open[0] - 0.7) < 0.05 and abs(p_closed[0] - 0.7) < 0.05
    # the window turns with the mouth: a turned open mouth reads as the upright one
    turned, kp_turned = _mouth_image(0.16, turn=0.3)
    # (the turned band's edges are stepped pixels: compare the gap's rows and the total)
    p_turned = L.mouth_profiles(turned, kp_turned)[0]
    np.testing.assert_allclose(p_turned[6:10], p_open[6:10], atol=0.03)
    assert abs(p_turned.mean() - p_open.mean()) < 0.03
    assert L.mouth_profile_loss(open_, open_, kp_open) < 1e-6
    pred = closed.clone().requires_grad_(True)
    loss = L.mouth_profile_loss(pred, open_, kp_open)
    assert loss > 0.1
    loss.backward()
    # the gradient darkens where the target's lips part (lowering the loss)
    parted = (open_[0, 0] < 0.5) & (closed[0, 0] > 0.5)
    assert pred.grad[0, 0][parted].mean() > 0


# ---------------------------------------------------------------- gaze retargeting

_ROWS = {p: i for i, p in enumerate(kpt.MESH_POINTS)}
# per eye: (outer, inner) corners, (middle, outer-side) points of the upper and lower
# lid, the corners' x in the crop
_SCENE_EYES = (
    ((33, 133), (159, 160), (145, 144), (-0.6, -0.2)),
    ((263, 362), (386, 387), (374, 373), (0.6, 0.2)),
)


def _eye_scene(iris_u: float, lid: float = 0.12, size: int = 128, seed: int = 0):
    """A crop of textured skin with two almond eyes (white sclera, a dark iris disc of
    0.2 eye widths radius `iris_u` eye widths from the inner corner), the lids at
    +-`lid` x 4u(1-u) crop units; -> image (uint8), keypoints, where the eyes are."""
    rng = np.random.default_rng(seed)
    image = rng.integers(100, 220, (size, size, 3)).astype(np.uint8)  # skin that shows a move
    yy, xx = np.mgrid[:size, :size]
    to_px = lambda v: (v + 1) / 2 * size - 0.5  # noqa: E731
    kp = np.zeros((kpt.N_KEYPOINTS, 3), np.float32)
    eyes = np.zeros((size, size), bool)
    for ((outer, inner), upper, lower, (xo, xi)), iris in zip(
        _SCENE_EYES, kpt.IRIS_ROWS, strict=True
    ):
        kp[_ROWS[outer], :2], kp[_ROWS[inner], :2] = (xo, 0.0), (xi, 0.0)
        for (mid, side), sign in ((upper, -1), (lower, 1)):
            for p, u in ((mid, 0.5), (side, 0.75)):
                kp[_ROWS[p], :2] = (xi + u * (xo - xi), sign * lid * 4 * u * (1 - u))
        kp[iris, :2] = (xi + iris_u * (xo - xi), 0.0)
        u = (xx - to_px(xi)) / (to_px(xo) - to_px(xi))
        inside = (u > 0) & (u < 1) & (np.abs(yy - to_px(0.0)) < lid * 4 * u * (1 - u) * size / 2)
        radius = 0.2 * abs(xo - xi) * size / 2
        disc = (xx - to_px(xi + iris_u * (xo - xi))) ** 2 + (yy - to_px(0.0)) ** 2 <= radius**2
        image[inside] = (235, 235, 230)
        image[inside & disc] = (40, 30, 25)
        eyes |= inside
    return image, kp, eyes


def _iris_u(image: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """(2,): each eye's dark-disc centroid along its eye (0 inner, 1 outer corner)."""
    from likeness.generator.gaze import eye_coords

    size = image.shape[0]
    px = kpt.to_pixels(kp, size)[:, :2]
    # the iris disc is the only pixels this dark (the skin texture stays above 100)
    dark = image.max(-1) < 60
    out = []
    for ((outer, inner), *_), half in zip(
        _SCENE_EYES, (slice(0, size // 2), slice(size // 2, None)), strict=True
    ):
        ys, xs = np.nonzero(dark[:, half])
        centre = np.array([xs.mean() + (half.start or 0), ys.mean()])
        out.append(eye_coords(centre, px[_ROWS[outer]], px[_ROWS[inner]])[0])
    return np.array(out)


def _looking(kp: np.ndarray, by: float) -> np.ndarray:
    """`kp` with both irises `by` eye widths towards their outer corners."""
    out = kp.copy()
    for ((outer, inner), *_), iris in zip(_SCENE_EYES, kpt.IRIS_ROWS, strict=True):
        out[iris, :2] += by * (kp[_ROWS[outer], :2] - kp[_ROWS[inner], :2])
    return out


def test_gaze_retarget_moves_the_iris_disc_as_asked_and_nothing_outside_the_eye():
    import cv2

    from likeness.generator.gaze import GazeConfig, retarget_gaze

    source, kp, eyes = _eye_scene(0.5)
    for by in (0.15, -0.15):
        out = retarget_gaze(source[None], kp, _looking(kp, by)[None])[0]
        # the render left the disc at the source's place; now it sits `by` further on
        moved = _iris_u(out, kp) - _iris_u(source, kp)
        assert np.abs(moved - by).max() < 0.03, (by, moved)
        # the skin (textured: any move shows) is untouched beyond 2 px of the lid
        # points' curves (the aperture's margin: the mesh's lid points sit inside the
        # visible lids)
        near = cv2.dilate(eyes.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        np.testing.assert_array_equal(out[~near], source[~near])
        assert (out[eyes] != source[eyes]).any()
    # a disc already where the keypoints say is left alone, and the switch turns it off
    np.testing.assert_array_equal(retarget_gaze(source[None], kp, kp[None])[0], source)
    off = retarget_gaze(source[None], kp, _looking(kp, 0.15)[None], GazeConfig(enabled=False))
    np.testing.assert_array_equal(off[0], source)


def test_gaze_retarget_does_not_move_the_iris_of_a_closing_eye():
    from likeness.generator.gaze import GazeConfig, gaze_shifts, retarget_gaze

    config = GazeConfig()
    source, kp, _ = _eye_scene(0.5)
    width = 0.4  # eye width in crop units: the lid gap below is relative to it
    asked = lambda lid: gaze_shifts(kp, _looking(_eye_scene(0.5, lid)[1], 0.15)[None], config)  # noqa: E731
    # openness (lid gap over eye width) 0.6 > `open`: the whole shift; 0.04 < `closed`
    # (a blink's shut frame): none, and the crop is left as rendered
    np.testing.assert_allclose(asked(0.6 * width / 2)[0, :, 0], 0.15, atol=1e-5)
    assert np.abs(asked(0.04 * width / 2)).max() == 0.0
    shut = _looking(_eye_scene(0.5, 0.04 * width / 2)[1], 0.15)
    np.testing.assert_array_equal(retarget_gaze(source[None], kp, shut[None])[0], source)
    # half way between closed and open: part of it
    half = asked((config.closed + config.open) / 2 * width / 2)[0, :, 0]
    np.testing.assert_allclose(half, 0.075, atol=1e-3)


def test_tracked_irises_land_on_the_learnt_eyes_where_the_tracker_saw_them():
    from likeness.generator.gaze import carry_irises, iris_offsets

    rng = np.random.default_rng(3)
    tracked = _face_like(rng)
    tracked = _look(tracked, 0.12)  # a driver looking sideways
    # the learnt keypoints: the same face rotated, scaled and moved (another crop's
    # framing), with the irises left in the wrong place (as the extractor leaves them)
    angle, scale = np.deg2rad(8.0), 1.15
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    learnt = tracked.copy()
    learnt[:, :2] = tracked[:, :2] @ rot.T + np.array([0.04, -0.03])
    wrong = learnt.copy()
    wrong[list(kpt.IRIS_ROWS), :2] += 0.05
    assert np.abs(iris_offsets(wrong) - iris_offsets(tracked)).max() > 0.05
    out = carry_irises(wrong, tracked)
    # each iris sits in its learnt eye as the tracker saw it in its own, which is where
    # the same similarity puts the tracked iris; every other row is untouched
    np.testing.assert_allclose(iris_offsets(out), iris_offsets(tracked), atol=1e-9)
    irises = list(kpt.IRIS_ROWS)
    np.testing.assert_allclose(out[irises, :2], learnt[irises, :2], atol=1e-9)
    np.testing.assert_array_equal(out[irises, 2], wrong[irises, 2])  # depth kept
    others = np.setdiff1d(np.arange(kpt.N_KEYPOINTS), kpt.IRIS_ROWS)
    np.testing.assert_array_equal(out[others], wrong[others])


# ---------------------------------------------------------------- eye detail


def _dark(image: np.ndarray, half: slice) -> np.ndarray:
    """(count, x, y) of the iris-dark pixels (under 60) in one half of the crop."""
    ys, xs = np.nonzero(image[:, half].max(-1) < 60)
    return np.array([len(xs), xs.mean() + (half.start or 0), ys.mean()])


def test_eye_detail_brings_the_photos_eyes_into_a_soft_render_and_nothing_else():
    import cv2

    from likeness.generator.eye_detail import EyeDetailConfig, restore_eyes
    from likeness.generator.refiner.metrics import laplacian_variance

    source, kp, eyes = _eye_scene(0.5)
    render = cv2.GaussianBlur(source, (0, 0), 1.5)  # the renderer's soft eyes
    out = restore_eyes(render[None], source, kp, kp[None])[0]
    # inside the eyes: far closer to the photo than the render was, and as sharp
    err = lambda x: np.abs(x.astype(np.float32) - source)[eyes].mean()  # noqa: E731
    assert err(out) < 0.4 * err(render), (err(out), err(render))
    box = np.s_[54:74, 12:55]  # the right eye's box at 128 px
    assert laplacian_variance(out[box]) > 1.5 * laplacian_variance(render[box])
    # the skin beyond the lash band (0.15 eye widths, 4 px here) is the render's, exactly
    near = cv2.dilate(eyes.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
    np.testing.assert_array_equal(out[~near], render[~near])
    off = restore_eyes(render[None], source, kp, kp[None], EyeDetailConfig(enabled=False))
    np.testing.assert_array_equal(off[0], render)


def test_eye_detail_follows_the_driving_eyes_and_leaves_a_closed_eye_to_the_render():
    import cv2

    from likeness.generator.eye_detail import restore_eyes

    source, kp, _ = _eye_scene(0.5)
    size = source.shape[0]
    # the driving face 3 px right and 2 px down; the render is that, soft
    shift = np.float32([[1, 0, 3], [0, 1, 2]])
    moved = cv2.warpAffine(source, shift, (size, size), borderMode=cv2.BORDER_REFLECT_101)
    render = cv2.GaussianBlur(moved, (0, 0), 1.5)
    kp_d = kp.copy()
    kp_d[:, 0] += 3 * 2 / size
    kp_d[:, 1] += 2 * 2 / size
    out = restore_eyes(render[None], source, kp, kp_d[None])[0]
    for half in (slice(0, size // 2), slice(size // 2, None)):
        want = _dark(source, half) + np.array([0, 3, 2])
        got, soft = _dark(out, half), _dark(render, half)
        # the sharp disc is back (as many dark pixels as the photo's, the soft render
        # far fewer) and sits where the driving eye holds it, not where the photo had it
        assert abs(got[0] - want[0]) <= 0.15 * want[0] < want[0] - soft[0], (got, want, soft)
        np.testing.assert_allclose(got[1:], want[1:], atol=0.5)
    # a shut driving eye (a blink) takes nothing from the open photo
    _, shut, _ = _eye_scene(0.5, lid=0.01)
    np.testing.assert_array_equal(restore_eyes(render[None], source, kp, shut[None])[0], render)


def test_eye_detail_leaves_an_eye_the_head_turned_away_to_the_render():
    from likeness.generator.eye_detail import EyeDetailConfig, weights

    _, kp, _ = _eye_scene(0.5)
    config = EyeDetailConfig()
    np.testing.assert_allclose(weights(kp, kp[None], config), 1.0)
    # a zoom changes nothing (both eyes and the face scale alike)
    np.testing.assert_allclose(weights(kp, (kp * [1.3, 1.3, 1])[None], config), 1.0, atol=1e-6)
    # the right eye foreshortened to half its width about its outer corner (a turn),
    # the left eye as it was: only the right eye is left to the render
    turned = kp.copy()
    (outer, inner), upper, lower, _ = _SCENE_EYES[0]
    rows = [_ROWS[outer], _ROWS[inner], *(_ROWS[p] for p in (*upper, *lower)), kpt.IRIS_ROWS[0]]
    anchor = kp[_ROWS[outer], 0]
    turned[rows, 0] = anchor + 0.5 * (kp[rows, 0] - anchor)
    w = weights(kp, turned[None], config)[0]
    assert w[0] == 0.0 and w[1] == 1.0, w
