"""Provenance: keys, watermark, C2PA manifests, signing, reading, the local store.

Generator output leaves the program only through `MarkedVideoWriter`, `mark_and_sign`
or `mark_image` (watermark + signed manifest + store record, no switch to skip any);
`verify_file` answers where a file came from. Importing this package loads nothing
heavy: the names below are resolved on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MarkedVideoWriter": "likeness.provenance.mark",
    "mark_and_sign": "likeness.provenance.mark",
    "mark_image": "likeness.provenance.mark",
    "sign_file": "likeness.provenance.mark",
    "SignResult": "likeness.provenance.mark",
    "verify_file": "likeness.provenance.verify",
    "Verdict": "likeness.provenance.verify",
    "init_keys": "likeness.provenance.keys",
    "load_signing": "likeness.provenance.keys",
    "watermark_key": "likeness.provenance.keys",
    "Store": "likeness.provenance.store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
