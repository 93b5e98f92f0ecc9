"""Self-blended fakes: changes stay inside the face mask, and the mask covers the face."""

from __future__ import annotations

import numpy as np
import pytest

from likeness.datasets.self_blend import self_blend


@pytest.fixture(scope="module")
def astronaut_face(face_stack, astronaut):
    return face_stack.analyze(astronaut)[0]


@pytest.mark.parametrize("seed", range(6))
def test_changes_only_inside_the_mask(astronaut, astronaut_face, seed):
    fake = self_blend(astronaut, astronaut_face.landmarks, seed=seed)
    assert fake.image.shape == astronaut.shape and fake.image.dtype == np.uint8
    assert fake.mask.min() >= 0.0 and fake.mask.max() <= 1.0
    outside = fake.mask == 0
    assert outside.mean() > 0.5  # most of the frame is not face
    np.testing.assert_array_equal(fake.image[outside], astronaut[outside])
    inside = fake.mask > 0.2
    diff = np.abs(fake.image.astype(int) - astronaut)[inside].mean()
    assert diff > 1.0  # the blended copy really differs


def test_mask_covers_the_face_and_not_the_corners(astronaut, astronaut_face):
    for seed in range(8):
        fake = self_blend(astronaut, astronaut_face.landmarks, seed=seed)
        ex, ey = astronaut_face.eye_centres().mean(0).astype(int)
        assert fake.mask[ey, ex] >= 0.2  # the smallest blend ratio is 0.25
        assert fake.mask[0, 0] == 0 and fake.mask[-1, -1] == 0


def test_same_seed_same_fake_other_seed_other_fake(astronaut, astronaut_face):
    a = self_blend(astronaut, astronaut_face.landmarks, seed=3)
    b = self_blend(astronaut, astronaut_face.landmarks, seed=3)
    c = self_blend(astronaut, astronaut_face.landmarks, seed=4)
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)
