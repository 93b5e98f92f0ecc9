"""Datasets: corpus index, face-crop packs, identity-disjoint splits, the FAKES format,
self-blends and the other fake families (pure image functions: a pipeline feeds them
generator output; nothing here runs a model).

Importing this package loads nothing: the names below resolve on first use.
"""

from __future__ import annotations

from likeness.lazy import lazy_exports

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

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
