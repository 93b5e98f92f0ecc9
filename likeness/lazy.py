"""Lazy package surfaces (PEP 562): a package `__init__` names what it exports and from
which module, and nothing is imported until a name is first used (timm's rule:
importing a module loads nothing, touches no disk and no network)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, by_module: dict[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`(__getattr__, __dir__, __all__)` for the package named `package`: each name in
    `by_module` (module -> the names it gives) is imported from its module on first use,
    then kept."""
    exports = {name: module for module, names in by_module.items() for name in names}

    def __getattr__(name: str) -> Any:
        home = exports.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__, sorted(exports)
