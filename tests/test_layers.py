"""The six import layers of DESIGN.md, checked over every import in likeness/.

A module imports only from its own layer or below, module-level and in-function imports
alike; inside layer 3 the model packages never import each other and provenance imports
neither; inside layer 5 faces may use media, never the other way round. And training
imports nothing the GPU machine lacks (PyAV, c2pa-python, LiteRT, provenance).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "likeness"

# top-level part of likeness (after "likeness.") -> layer, 1 at the top
LAYERS = {
    "cli": 1,
    "commands": 1,
    "bench": 1,
    "serve": 1,  # the web app: like the CLI, it parses, calls a pipeline, renders
    "api": 1,  # the typed library surface: likeness.scan / verify / animate
    "pipelines": 2,
    "generator": 3,
    "detector": 3,
    "provenance": 3,
    "datasets": 4,
    "faces": 5,
    "media": 5,
    "errors": 6,
    "config": 6,
    "jsonio": 6,
    "fsio": 6,
    "ui": 6,
    "hashing": 6,
    "lazy": 6,
    "tensors": 6,
    "training": 6,
    "weights_io": 6,
    "typeschema": 6,
    "": 6,  # the package root: __version__
}

# (importer, imported) pairs that share a layer but must not meet
FORBIDDEN = {
    ("generator", "detector"),
    ("detector", "generator"),
    ("provenance", "generator"),
    ("provenance", "detector"),
    ("media", "faces"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str:
    """ "likeness.faces.align" -> "faces"; "likeness" -> ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def is_module(dotted: str) -> bool:
    rel = Path(*dotted.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, likeness module) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                # `from likeness import training` names the module likeness.training
                found.append((node.lineno, full if is_module(full) else base))
    return [(line, name) for line, name in found if name.split(".")[0] == "likeness"]


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = part_of(module_name(path))
        assert importer in LAYERS, f"{path}: no layer for likeness.{importer}"
        for line, target in imports_of(path):
            imported = part_of(target)
            assert imported in LAYERS, f"{path}:{line}: no layer for {target}"
            where = f"{path.relative_to(ROOT)}:{line}"
            if LAYERS[imported] < LAYERS[importer]:
                found.append(
                    f"{where}: {importer} (layer {LAYERS[importer]}) imports "
                    f"{target} (layer {LAYERS[imported]})"
                )
            elif (importer, imported) in FORBIDDEN:
                found.append(f"{where}: {importer} must not import {target}")
    return found


def test_imports_follow_the_layers():
    found = violations()
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_the_walk_sees_every_kind_of_import(tmp_path):
    """The walker itself: in-function, relative and `from likeness import x` imports."""
    sample = PACKAGE / "media" / "probe.py"
    names = {name for _, name in imports_of(sample)}
    assert "likeness.errors" in names
    text = "def f():\n    from likeness import training\n    from . import align\n"
    fake = PACKAGE / "faces" / "_layer_probe.py"
    try:
        fake.write_text(text)
        assert {n for _, n in imports_of(fake)} == {"likeness.training", "likeness.faces.align"}
    finally:
        fake.unlink()


def loaded_by(module: str, names: tuple[str, ...]) -> str:
    """Which of `names` (packages, with their submodules) a fresh interpreter has loaded
    after importing `module`, as a printed sorted list."""
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"names = {names!r}; "
        "print(sorted(m for m in sys.modules if any(m == n or m.startswith(n + '.') "
        "for n in names)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return out.stdout.strip()


HEAVY = ("likeness.faces.litert", "likeness.provenance", "av", "c2pa", "ai_edge_litert")


@pytest.mark.parametrize("module", ["likeness.detector.train", "likeness.generator.train"])
def test_training_loads_nothing_the_gpu_machine_lacks(module):
    loaded = loaded_by(module, HEAVY)
    assert loaded == "[]", f"{module} loads {loaded}"


@pytest.mark.parametrize(
    "package",
    ["likeness.generator", "likeness.detector", "likeness.datasets", "likeness.faces",
     "likeness.pipelines", "likeness.provenance"],
)  # fmt: skip
def test_importing_a_package_loads_nothing_heavy(package):
    loaded = loaded_by(package, ("torch", "numpy", "cv2", "av", "timm", "c2pa"))
    assert loaded == "[]", f"importing {package} loads {loaded}"
