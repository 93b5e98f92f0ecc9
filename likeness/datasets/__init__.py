"""Datasets: corpus index, face-crop packs, identity-disjoint splits, the FAKES format,
self-blends and the other fake families (pure image functions: a pipeline feeds them
generator output; nothing here runs a model).

Importing this package loads nothing: the names below resolve on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from likeness.lazy import lazy_exports

if TYPE_CHECKING:
    from likeness.datasets.fakes_format import FakesSet, FakesWriter, Sample
    from likeness.datasets.identities import SplitTable, identity_for, load_split
    from likeness.datasets.pack import PackConfig, PackReport, write_pack
    from likeness.datasets.pack_reader import Pack, PackItem

_EXPORTS = {
    "FakesSet": "likeness.datasets.fakes_format",
    "FakesWriter": "likeness.datasets.fakes_format",
    "Sample": "likeness.datasets.fakes_format",
    "SplitTable": "likeness.datasets.identities",
    "identity_for": "likeness.datasets.identities",
    "load_split": "likeness.datasets.identities",
    "PackConfig": "likeness.datasets.pack",
    "PackReport": "likeness.datasets.pack",
    "write_pack": "likeness.datasets.pack",
    "Pack": "likeness.datasets.pack_reader",
    "PackItem": "likeness.datasets.pack_reader",
}

__all__ = [
    "FakesSet",
    "FakesWriter",
    "Pack",
    "PackConfig",
    "PackItem",
    "PackReport",
    "Sample",
    "SplitTable",
    "identity_for",
    "load_split",
    "write_pack",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
