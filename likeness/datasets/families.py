"""The fake families by name: one entry point, one result type (`Forgery`) for all.

The fakes pipeline loops over FAMILY_NAMES, records each crop's family in the fakes
manifest, and calls `make_forgery` for the pure families (numpy in, numpy out). The
"reenact" family needs the generator, which this layer never runs (DESIGN.md: datasets
runs no model): the pipeline renders it and hands the output to `paste_generated`, so
its crops come back as a `Forgery` with a mask like every other family's.

Choosing donors (swap, lipsync):
- From the target's own split, always: a swap shows the donor's face, so a donor from
  another split would put that identity's face into this split.
- swap: another identity, ideally of similar head pose (|yaw| difference under about
  20 degrees: larger turns fold the warp's triangles) and any image size.
- lipsync: another frame of the same clip (a different mouth on the same person, the
  real Wav2Lip case) or another person; pose matters less (only the lower face moves).
"""

from __future__ import annotations

import numpy as np

from likeness.datasets import forgery as fg
from likeness.datasets.forgery import Forgery
from likeness.datasets.lipsync import lip_sync
from likeness.datasets.lowres import low_res
from likeness.datasets.self_blend import sbi
from likeness.datasets.swap import face_swap
from likeness.errors import InputError

FAMILY_NAMES: tuple[str, ...] = ("reenact", "sbi", "swap", "lipsync", "lowres")
# Families whose fake takes a second face (another person, or another frame).
DONOR_FAMILIES = frozenset({"swap", "lipsync"})
# Families that need the generator, run by a pipeline; `paste_generated` wraps them.
GENERATED_FAMILIES = frozenset({"reenact"})


def _check_name(name: str) -> None:
    if name not in FAMILY_NAMES:
        raise InputError(f"unknown fake family {name!r}: choose from {', '.join(FAMILY_NAMES)}")


def needs_donor(name: str) -> bool:
    """Whether family `name` takes a donor face (swap: another identity; lipsync: another
    frame or person).

    Args:
        name: one of FAMILY_NAMES.
    Returns:
        True for the donor families.
    Raises:
        InputError: for an unknown name.
    """
    _check_name(name)
    return name in DONOR_FAMILIES


def make_forgery(
    name: str,
    target: np.ndarray,
    target_lm: np.ndarray,
    rng: np.random.Generator | int | None = None,
    donor: np.ndarray | None = None,
    donor_lm: np.ndarray | None = None,
    config=None,
) -> Forgery:
    """One fake of family `name` made from the target crop (and a donor where needed).

    Args:
        name: "sbi", "swap", "lipsync" or "lowres" ("reenact" needs the generator: render
            it in a pipeline and call `paste_generated`).
        target: H x W x 3 uint8 RGB aligned crop.
        target_lm: its landmarks, (140, 2|3) pack rows (KEY_LANDMARKS) or (468, 2|3) mesh.
        rng: a Generator (drawn from), or an int seed.
        donor, donor_lm: the second face and its landmarks, for `needs_donor(name)`
            families (ignored by the others).
        config: that family's config dataclass (SbiConfig, SwapConfig, LipSyncConfig,
            LowResConfig); defaults if None.
    Returns:
        Forgery with family = name.
    Raises:
        InputError: unknown name, "reenact", or a donor family without a donor.
    """
    _check_name(name)
    if name in GENERATED_FAMILIES:
        raise InputError(
            f"the {name!r} family needs the generator: render it in the fakes pipeline and "
            "pass its output to likeness.datasets.families.paste_generated"
        )
    rng = fg.as_rng(rng)
    if name in DONOR_FAMILIES:
        if donor is None or donor_lm is None:
            raise InputError(f"the {name!r} family needs a donor face and its landmarks")
        make = face_swap if name == "swap" else lip_sync
        return make(target, target_lm, donor, donor_lm, rng, config)
    if name == "sbi":
        return sbi(target, target_lm, rng, config)
    return low_res(target, target_lm, rng, config)


def paste_generated(
    target: np.ndarray, generated: np.ndarray, mask: np.ndarray, params: dict | None = None
) -> Forgery:
    """A generator's output blended into the target crop through `mask` (the "reenact"
    family), as a Forgery like every other family's.

    Args:
        target: H x W x 3 uint8 RGB, the real crop (what the pixels outside the mask keep).
        generated: H x W x 3 uint8 RGB, the generator's rendering of the same crop.
        mask: H x W float in [0, 1], the paste weight (e.g. the paste-back mask); values
            under 1/512 count as 0.
        params: anything to record (checkpoint, preset, driving source).
    Returns:
        Forgery(family="reenact"): image = mask * generated + (1 - mask) * target.
    Raises:
        InputError: arrays of the wrong type or mismatched shapes.
    """
    target = fg.check_image(target, "target")
    generated = fg.check_image(generated, "generated")
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    return fg.forgery(target, generated, mask.astype(np.float32), "reenact", dict(params or {}))
