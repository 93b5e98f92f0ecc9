"""Fake families (sbi, swap, lipsync, lowres, reenact's paste): the mask marks exactly
the changed pixels, the change is real, and the same seed makes the same fake."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from likeness.datasets.families import (
    FAMILY_NAMES,
    make_forgery,
    needs_donor,
    paste_generated,
)
from likeness.datasets.forgery import Forgery, colour_transfer, points
from likeness.datasets.self_blend import self_blend
from likeness.datasets.swap import delaunay, piecewise_affine
from likeness.errors import InputError
from likeness.faces.regions import KEY_LANDMARKS, LEFT_BROW, LIPS_INNER, LIPS_OUTER, RIGHT_BROW
from likeness.faces.types import FACE_OVAL, FOREHEAD, LEFT_EYE_RING, NOSE_TIP, RIGHT_EYE_RING

PURE = ("sbi", "swap", "lipsync", "lowres")
# Mean change per unit of mask (sum |diff| / sum mask), in levels: each family's fake
# must differ from its target by at least this much where it says it replaced pixels.
# (Corpus photos, 120 fakes each: sbi >= 3.3, swap >= 17, lipsync >= 4, lowres >= 2.0;
# lowres re-rendered at 97 % of its size, i.e. barely changed, gives 1.1-1.3.)
MIN_CHANGE = {"sbi": 2.0, "swap": 10.0, "lipsync": 3.0, "lowres": 1.6}
PHOTOS = ("st-people0.png", "gf-015270.jpg")  # a woman and a man, frontal portraits


# --- helpers --------------------------------------------------------------------------


def check_forgery(fake: Forgery, target: np.ndarray, family: str) -> dict:
    """The invariants every family keeps; returns a few figures for further checks."""
    assert isinstance(fake, Forgery) and fake.family == family
    json.dumps(fake.params)  # recorded in the fakes manifest
    assert fake.image.shape == target.shape and fake.image.dtype == np.uint8
    assert fake.mask.shape == target.shape[:2] and fake.mask.dtype == np.float32
    assert fake.mask.min() >= 0.0 and fake.mask.max() <= 1.0 and fake.mask.max() > 0.2
    diff = np.abs(fake.image.astype(np.int16) - target.astype(np.int16)).max(-1)
    untouched = fake.mask == 0
    assert untouched.mean() > 0.3  # background, hair and neck stay the target's
    assert diff[untouched].max(initial=0) <= 1, "pixels outside the mask changed"
    assert (fake.mask[diff > 1] > 0).all()  # every changed pixel is marked
    for y, x in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert fake.mask[y, x] == 0  # the crop's corners are never face
    support = fake.mask > 0
    change = float(np.abs(fake.image.astype(np.float32) - target).mean(-1)[support].sum())
    per_mask = change / float(fake.mask[support].sum())
    assert per_mask > MIN_CHANGE.get(family, 1.0), f"{family}: only {per_mask:.2f} levels"
    if family != "sbi":  # (sbi's blend ratio can be 0.25: a quarter of a small change)
        # And the other way round: most pixels the mask calls half replaced did change.
        assert (diff[fake.mask > 0.5] >= 1).mean() > 0.6
    return {"diff": diff, "per_mask": per_mask}


def run_family(name, target, lm, seed, donor=None):
    d_img, d_lm = donor if donor is not None else (None, None)
    return make_forgery(name, target, lm, np.random.default_rng(seed), d_img, d_lm)


def synthetic_face(
    size: tuple[int, int], centre, axes, skin, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A textured cartoon face and its 140 KEY_LANDMARKS rows, no face models needed."""
    h, w = size
    rng = np.random.default_rng(seed)
    cx, cy = centre
    a, b = axes
    where: dict[int, tuple[float, float]] = {}

    def ring(indices, ccx, ccy, ra, rb, start=-90.0, sweep=360.0):
        for k, idx in enumerate(indices):
            t = np.deg2rad(start + sweep * k / len(indices))
            where[idx] = (ccx + ra * np.cos(t), ccy + rb * np.sin(t))

    ring(FACE_OVAL, cx, cy, a, b)  # 10 at the top, then clockwise on screen
    ring(RIGHT_EYE_RING, cx - 0.38 * a, cy - 0.18 * b, 0.16 * a, 0.06 * b, 180.0)
    ring(LEFT_EYE_RING, cx + 0.38 * a, cy - 0.18 * b, 0.16 * a, 0.06 * b, 0.0)
    for brow, sign in ((RIGHT_BROW, -1), (LEFT_BROW, 1)):
        for k, idx in enumerate(brow):
            u = (k % 5) / 4
            where[idx] = (cx + sign * a * (0.12 + 0.5 * u), cy - b * (0.34 + 0.04 * (k >= 5)))
    nose = {1: (0, 0.22), 2: (0, 0.28), 4: (0, 0.15), 5: (0, 0.1), 6: (0, -0.1),
            168: (0, -0.18), 197: (0, 0.0), 195: (0, 0.05), 98: (-0.12, 0.26),
            327: (0.12, 0.26), 129: (-0.14, 0.2), 358: (0.14, 0.2)}  # fmt: skip
    for idx, (u, v) in nose.items():
        where[idx] = (cx + u * a, cy + v * b)
    ring(LIPS_OUTER, cx, cy + 0.5 * b, 0.32 * a, 0.1 * b, 180.0, -360.0)
    ring(LIPS_INNER, cx, cy + 0.5 * b, 0.24 * a, 0.03 * b, 180.0, -360.0)
    lm = np.array([where[i] for i in KEY_LANDMARKS], np.float32)

    noise = cv2.GaussianBlur(rng.normal(0, 18, (h, w, 3)).astype(np.float32), (0, 0), 1.2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([60 + 0.3 * xx, 90 + 0.2 * yy, 140 - 0.1 * xx], -1) + noise
    face = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0
    img[face] = np.asarray(skin, np.float32) + 1.5 * noise[face]
    canvas = np.clip(img, 0, 255).astype(np.uint8)
    for group, colour in ((RIGHT_EYE_RING, (40, 30, 30)), (LEFT_EYE_RING, (40, 30, 30)),
                          (LIPS_OUTER, (170, 60, 70)), (RIGHT_BROW, (50, 35, 25)),
                          (LEFT_BROW, (50, 35, 25))):  # fmt: skip
        hull = cv2.convexHull(points(lm, group).reshape(-1, 1, 2)).astype(np.int32)
        cv2.fillConvexPoly(canvas, hull, colour)
    return canvas, lm


@pytest.fixture(scope="module")
def synth():
    target = synthetic_face((256, 256), (128, 136), (66, 88), (205, 160, 135), seed=1)
    donor = synthetic_face((300, 360), (170, 150), (80, 104), (120, 85, 65), seed=2)
    return target, donor


# --- corpus photos --------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(corpus, face_stack):
    """Each photo: (aligned 256 px crop, its 140 pack landmark rows, the full photo,
    its 468-point mesh in photo pixels), as `likeness dataset pack` makes them."""
    from likeness.faces import align_face
    from likeness.faces.geometry import apply_affine

    out = []
    for name in PHOTOS:
        path = corpus / "photos" / name
        if not path.is_file():
            pytest.skip(f"{path} is not in the corpus")
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        faces = face_stack.analyze(rgb)
        assert faces, f"no face found in {name}"
        crop = align_face(rgb, faces[0])
        lm = apply_affine(crop.matrix, faces[0].landmarks[list(KEY_LANDMARKS)])
        out.append((crop.image, lm.astype(np.float32), rgb, faces[0].landmarks))
    return out


@pytest.mark.corpus
@pytest.mark.parametrize("family", PURE)
def test_family_marks_exactly_what_it_changed_on_corpus_photos(photos, family):
    for i, (crop, lm, _, _) in enumerate(photos):
        other = photos[1 - i]
        for seed in range(3):
            fake = run_family(family, crop, lm, seed, (other[0], other[1]))
            check_forgery(fake, crop, family)
            # Where each family replaces pixels: the nose (mouth for lip-sync) is in,
            # the top of the forehead is out for the lower-face and brow-cut masks.
            ix, iy = points(lm, (NOSE_TIP,))[0].astype(int)
            mx, my = points(lm, (13, 14)).mean(0).astype(int)
            fx, fy = points(lm, (FOREHEAD,))[0].astype(int)
            if family == "lipsync":
                assert fake.mask[my, mx] > 0.5 and fake.mask[fy, fx] == 0
            else:
                assert fake.mask[iy, ix] >= 0.2  # sbi's smallest blend ratio is 0.25
            if family == "swap" and fake.params["region"] == "brows":
                assert fake.mask[fy, fx] == 0


@pytest.mark.corpus
@pytest.mark.parametrize("family", PURE)
def test_same_seed_same_fake_other_seed_other_fake(photos, family):
    (crop, lm, _, _), donor = photos[0], photos[1][:2]
    a = run_family(family, crop, lm, 7, donor)
    b = run_family(family, crop, lm, 7, donor)
    c = run_family(family, crop, lm, 8, donor)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.params == b.params
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.mask, c.mask)


@pytest.mark.corpus
@pytest.mark.parametrize("family", ("swap", "lipsync"))
def test_donor_of_other_size_and_layout(photos, family):
    """The donor as the whole photo (not a crop: another size) with its 468-point mesh
    works like the donor's aligned crop, and it is the donor's face that shows."""
    crop, lm, _, _ = photos[0]
    d_crop, d_lm, d_photo, d_mesh = photos[1]
    assert d_photo.shape != crop.shape
    whole = run_family(family, crop, lm, 3, (d_photo, d_mesh))
    check_forgery(whole, crop, family)
    assert whole.params["donor_size"] == (d_photo.shape[1], d_photo.shape[0])
    cropped = run_family(family, crop, lm, 3, (d_crop, d_lm))
    # The same donor face either way: close (resampling differs), far from the target.
    core = (whole.mask > 0.9) & (cropped.mask > 0.9)
    assert core.mean() > 0.01  # 650 px: the jaw region is the smallest
    between = np.abs(whole.image.astype(np.float32) - cropped.image)[core].mean()
    to_target = np.abs(whole.image.astype(np.float32) - crop)[core].mean()
    assert between < 0.5 * to_target, (between, to_target)


@pytest.mark.corpus
def test_swap_shows_the_donors_face_structure(photos):
    """Inside the swapped face, the fake's edges follow the donor warped onto the target,
    not the target (colour transfer changes colours, not structure)."""
    crop, lm, _, _ = photos[0]
    d_crop, d_lm, _, _ = photos[1]
    fake = run_family("swap", crop, lm, 0, (d_crop, d_lm))
    warped, _ = piecewise_affine(d_crop, points(d_lm, KEY_LANDMARKS), lm[:, :2], crop.shape[:2])
    core = fake.mask > 0.95

    def edges(rgb):
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return cv2.Laplacian(cv2.GaussianBlur(grey, (0, 0), 1.5), cv2.CV_32F)[core]

    e_fake, e_donor, e_target = edges(fake.image), edges(warped), edges(crop)
    assert np.corrcoef(e_fake, e_donor)[0, 1] > 0.6
    assert np.corrcoef(e_fake, e_target)[0, 1] < 0.4


@pytest.mark.corpus
def test_pack_rows_and_full_mesh_give_the_same_fake(photos):
    crop, lm, _, _ = photos[0]
    mesh = np.zeros((468, 2), np.float32)  # rows the families never read stay 0
    mesh[list(KEY_LANDMARKS)] = lm[:, :2]
    for family in ("sbi", "lowres"):
        a = run_family(family, crop, lm, 5)
        b = run_family(family, crop, mesh, 5)
        np.testing.assert_array_equal(a.image, b.image)


# --- no corpus needed -----------------------------------------------------------------


@pytest.mark.parametrize("family", PURE)
def test_family_on_a_synthetic_face(synth, family):
    (target, lm), donor = synth
    seen = []
    for seed in range(4):
        fake = run_family(family, target, lm, seed, donor)
        check_forgery(fake, target, family)
        seen.append(fake.image)
    assert len({img.tobytes() for img in seen}) == 4  # every seed its own fake


def test_old_self_blend_api_still_works(synth):
    (target, lm), _ = synth
    mesh = np.zeros((468, 3), np.float32)  # as the detector's data builds it
    mesh[:, :2] = lm.mean(0)
    mesh[list(KEY_LANDMARKS), :2] = lm
    fake = self_blend(target, mesh, seed=1)
    assert fake.image.shape == target.shape
    assert (fake.image[fake.mask == 0] == target[fake.mask == 0]).all()


def test_registry():
    assert set(FAMILY_NAMES) >= {"reenact", "sbi", "swap", "lipsync", "lowres"}
    assert [n for n in FAMILY_NAMES if needs_donor(n)] == ["swap", "lipsync"]
    with pytest.raises(InputError, match="unknown fake family"):
        needs_donor("deepfake")


def test_registry_refuses_what_it_cannot_make(synth):
    (target, lm), _ = synth
    with pytest.raises(InputError, match="generator"):
        make_forgery("reenact", target, lm, 0)
    with pytest.raises(InputError, match="donor"):
        make_forgery("swap", target, lm, 0)
    with pytest.raises(InputError, match="unknown"):
        make_forgery("faceapp", target, lm, 0)
    with pytest.raises(InputError, match="landmarks"):
        make_forgery("lowres", target, lm[:68], 0)
    with pytest.raises(InputError, match="uint8"):
        make_forgery("sbi", target.astype(np.float32), lm, 0)


def test_paste_generated_is_a_forgery_with_an_exact_mask(synth):
    (target, _), _ = synth
    generated = 255 - target
    mask = np.zeros(target.shape[:2], np.float32)
    mask[80:200, 60:190] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), 6)
    fake = paste_generated(target, generated, mask, {"checkpoint": "g-1"})
    assert fake.family == "reenact" and fake.params == {"checkpoint": "g-1"}
    check_forgery(fake, target, "reenact")
    full = fake.mask >= 0.999
    assert full.any()
    assert np.abs(fake.image[full].astype(int) - generated[full]).max() <= 1
    with pytest.raises(InputError, match="shape"):
        paste_generated(target, generated[:100], mask)


def test_delaunay_covers_the_hull_and_the_warp_is_exact_for_an_affine_map(synth):
    """A donor that is the target moved by one affine map comes back exactly."""
    (target, lm), _ = synth
    tris = delaunay(lm)
    assert len(tris) > 150 and tris.max() < len(lm)
    m = np.float32([[0.9, 0.1, 20], [-0.05, 1.1, 8]])
    donor = cv2.warpAffine(target, m, (300, 320), flags=cv2.INTER_LINEAR)
    d_lm = lm @ m[:, :2].T + m[:, 2]
    warped, valid = piecewise_affine(donor, d_lm, lm, target.shape[:2])
    inner = cv2.erode(valid, np.ones((9, 9), np.uint8)) > 0
    assert inner.mean() > 0.2
    assert np.abs(warped[inner].astype(int) - target[inner]).mean() < 4.0


def test_colour_transfer_matches_the_reference_inside_the_mask(synth):
    (target, _), (donor, _) = synth
    donor = cv2.resize(donor, target.shape[1::-1])
    mask = np.zeros(target.shape[:2], np.float32)
    mask[60:200, 60:200] = 1
    out = colour_transfer(donor, target, mask)
    sel = mask > 0.5
    before = np.abs(donor[sel].mean(0) - target[sel].mean(0)).max()
    after = np.abs(out[sel].mean(0) - target[sel].mean(0)).max()
    assert after < 0.25 * before and after < 6
