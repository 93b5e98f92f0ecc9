"""Datasets: corpus index, face-crop packs, identity-disjoint splits, the FAKES format,
self-blends and the other fake families (pure image functions: a pipeline feeds them
generator output; nothing here runs a model).

Importing this package loads nothing: the names below resolve on first use.
"""

from __future__ import annotations

from likeness.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "likeness.datasets.fakes_format": ("FakesSet", "FakesWriter", "Sample"),
        "likeness.datasets.identities": ("SplitTable", "identity_for", "load_split"),
        "likeness.datasets.pack": ("PackConfig", "PackReport", "write_pack"),
        "likeness.datasets.pack_reader": ("Pack", "PackItem"),
    },
)
