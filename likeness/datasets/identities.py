"""Who is in each corpus file, and which split each person belongs to.

Splits are by identity, never by file: a person whose frames train the generator or the
detector must not also be used to judge them. The same person often appears in several
sources under different names (Obama in `st2-obama-clip*`, `ed-uncrop-obama`,
`fr-obama*` and `fr-two-people`), so names alone are not enough: `identity_for` applies
a few rules and then an explicit table, made by looking at every corpus file's face.

The split itself lives in `split.tsv` beside this module (committed, so every pack made
from the corpus splits the same way); a pack records which split file it used and its
sha256, and the reader refuses to verify a pack against a different one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from likeness.datasets.pack_format import SPLITS
from likeness.errors import InputError, SetupError
from likeness.hashing import sha256_file

DEFAULT_SPLIT = "train"
DEEPFACE = "deepface"
SPLIT_HEADER = ("identity", "split")

# `st2-obama-clip1`, `st2-andrew-clip-2`: several clips of one person.
_CLIP_SUFFIX = re.compile(r"-clip-?\d+$")
# MEAD-style emotion clips: `dt-m030-front-angry-level3-001` -> `m030`.
_MEAD = re.compile(r"^dt-([mw]\d{3})-")
# deepface's test photos come in identity groups we do not know file by file: one
# conservative group (always train), so that none of those people can leak into test.
_DEEPFACE_PREFIX = "df-"

# Whole file names (the same stem can be two people: LivePortrait's `d9.mp4` is a man,
# `d9.jpg` a woman). Found by looking at every file's face.
BY_FILE: dict[str, str] = {
    "lp-d9.jpg": "lp-d9-photo",  # not the man of lp-d9.mp4
    "lp-d12.jpg": "musk",  # not the man of lp-d12.mp4
    "lp-d19.jpg": "lp-d18",  # the man of lp-d18.mp4, not the one of lp-d19.mp4
    "lp-d38.jpg": "trump",
    "tpsmm-source.png": "trump",
    "mt-musk.png": "musk",
    # Two faces (Obama and Biden); packs keep the largest, Obama. Both are train.
    "fr-two-people.jpg": "obama",
}

# Stems (after the clip suffix is stripped) of one person across sources.
BY_STEM: dict[str, str] = {
    "st2-obama": "obama",
    "ed-uncrop-obama": "obama",
    "fr-obama": "obama",
    "fr-obama2": "obama",
    "fr-biden": "biden",
    "st2-trump": "trump",
    "st2-kristinoem": "kristinoem",
    "st2-andrew": "andrew",
    "vr-3": "aoc",
    "st-wda-aoc": "aoc",
    "ed-pose-source1": "aoc",
    "st2-happyenglish": "happyenglish",
    "ed-expression-source": "happyenglish",
    "fr-rose1": "rose",
    "fr-rose2": "rose",
    # Probably one man in both styletalk "furious" sets; merged, as any doubt is.
    "st2-furious-talk1": "furious",
    "st2-furious-talk2": "furious",
    # Possibly one woman; merged for the same reason (both train).
    "lp-s29": "lp-s29",
    "lp-s32": "lp-s29",
    # From the corpus' notes (MANIFEST.tsv) for the files added in its second round.
    "r3dp-may5s": "ap-pose-ref",  # Theresa May in both
    "clm-cap12": "clm-cap",
    "clm-cap13": "clm-cap",
    "of-clapton1": "clapton",
    "of-clapton2": "clapton",
    "of-lennon1": "lennon",
    "of-lennon2": "lennon",
}


def identity_for(path: str | os.PathLike[str]) -> str:
    """The identity of the person in a media file, from its name.

    Files the tables do not know get their stem (minus a clip suffix): a new person,
    which is the safe default only because unknown identities train (see SplitTable).
    """
    name = Path(path).name.lower()
    if name in BY_FILE:
        return BY_FILE[name]
    stem = Path(name).stem
    if stem.startswith(_DEEPFACE_PREFIX):
        return DEEPFACE
    mead = _MEAD.match(stem)
    if mead:
        return mead.group(1)
    base = _CLIP_SUFFIX.sub("", stem)
    return BY_STEM.get(base, base)


def default_split_path() -> Path:
    return Path(__file__).with_name("split.tsv")


@dataclass(frozen=True)
class SplitTable:
    """identity -> split, from a split file; identities it does not list train."""

    path: Path
    sha256: str
    splits: dict[str, str] = field(default_factory=dict)

    def split_for(self, identity: str) -> str:
        return self.splits.get(identity, DEFAULT_SPLIT)

    def identities(self, split: str) -> list[str]:
        return sorted(i for i, s in self.splits.items() if s == split)


def load_split(path: str | os.PathLike[str] | None = None) -> SplitTable:
    """Read a split file: `identity<TAB>split` rows, `#` comments, an optional header."""
    given = Path(path) if path is not None else default_split_path()
    if not given.is_file():
        if path is None:
            raise SetupError(f"the packaged split file {given} is missing: reinstall likeness")
        raise InputError(f"no such split file: {given}")
    try:
        text = given.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read split file {given.name}: {exc}") from None
    return SplitTable(given, sha256_file(given), parse_split(text, given.name))


def parse_split(text: str, name: str = "split file") -> dict[str, str]:
    splits: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split("\t")]
        if tuple(c.lower() for c in cells) == SPLIT_HEADER:
            continue
        if len(cells) != 2 or not cells[0]:
            raise InputError(f"{name} line {number}: expected identity<TAB>split")
        identity, split = cells[0].lower(), cells[1].lower()
        if split not in SPLITS:
            raise InputError(
                f"{name} line {number}: split {cells[1]!r} is not one of {', '.join(SPLITS)}"
            )
        if identity in splits and splits[identity] != split:
            raise InputError(f"{name} line {number}: {identity!r} is already in {splits[identity]}")
        splits[identity] = split
    if splits.get(DEEPFACE, DEFAULT_SPLIT) != DEFAULT_SPLIT:
        # Its identity groups are unknown, so any of its people may be elsewhere too.
        raise InputError(f"{name}: the {DEEPFACE!r} group must be train")
    return splits
