"""Shared fixtures: the corpus (skipping when absent), face models, a face stack."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from likeness.bench.common import corpus_dir
from likeness.faces.models import models_root

# Captured before any test points LIKENESS_HOME or XDG_CACHE_HOME at a temporary folder:
# the user cache (where `make models` installs), else an older LIKENESS_HOME/models.
MODELS_ROOT = models_root()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Two cores shared with other work: torch's two OpenMP threads then wait on each
    other at every op (measured 10-50x slower than one thread here). Modules that run
    the generator use it: `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def corpus() -> Path:
    found = corpus_dir()
    if found is None:
        pytest.skip("../shared/corpus not found beside the checkout (set LIKENESS_CORPUS)")
    return found


@pytest.fixture(scope="session")
def models_root() -> Path:
    from likeness.faces.models import missing_models

    missing = missing_models(MODELS_ROOT)
    if missing:
        pytest.fail(
            f"face models {missing} missing in {MODELS_ROOT}: run `likeness models install` "
            "(make test does this)"
        )
    return MODELS_ROOT


@pytest.fixture(scope="session")
def face_stack(models_root: Path):
    from likeness.faces import FaceStack

    return FaceStack(models_root=models_root)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh LIKENESS_HOME whose models folder points at the installed models."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("LIKENESS_HOME", str(path))
    if MODELS_ROOT.is_dir():
        (path / "models").symlink_to(MODELS_ROOT, target_is_directory=True)
    return path


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A randomly initialised tiny generator (64 px): plumbing, not looks."""
    import torch

    from likeness.generator.config import preset
    from likeness.generator.model import GeneratorNetworks, save_weights

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-generator")
    save_weights(GeneratorNetworks(preset("tiny")), folder)
    return folder


@pytest.fixture
def keys(home: Path, monkeypatch: pytest.MonkeyPatch):
    """Fresh signing keys (no passphrase) in the test's LIKENESS_HOME."""
    from likeness.provenance import keys as keys_mod

    monkeypatch.delenv(keys_mod.PASSPHRASE_ENV, raising=False)
    return keys_mod.init_keys(passphrase="")


@pytest.fixture
def root_pem(keys, tmp_path: Path) -> Path:
    """The trust anchor of `keys`, exported as a verifier would get it."""
    from likeness.provenance import keys as keys_mod

    return keys_mod.export_trust(tmp_path / "root.pem")


# ---------------------------------------------------------------- scan JSONL vs schema

_SCAN_LINE_PROBLEMS: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _scan_lines_checked_against_the_schema():
    """Every JSONL a scan writes in this process during the suite (the CLI's `--json`,
    `run_scan`, the Ray backend) is validated against the shipped JSON Schema
    (likeness/schemas/scan-record.schema.json) as it is written: the schema must hold
    every line the suite makes, not only a sample. Costs about 1 ms a write."""
    try:
        import jsonschema
    except ImportError:  # `make test` installs it (the test extra)
        yield
        return
    import json

    from likeness.api import schema_path
    from likeness.pipelines import scan_runner

    validator = jsonschema.Draft202012Validator(json.loads(schema_path().read_text()))
    original = scan_runner.write_jsonl

    def checked(path, records):
        original(path, records)
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            for err in validator.iter_errors(json.loads(line)):
                _SCAN_LINE_PROBLEMS.append(f"{path} line {n}: {err.json_path}: {err.message}")

    scan_runner.write_jsonl = checked
    yield
    scan_runner.write_jsonl = original


@pytest.fixture(autouse=True)
def _scan_lines_follow_the_schema(_scan_lines_checked_against_the_schema):
    yield
    if _SCAN_LINE_PROBLEMS:
        problems = _SCAN_LINE_PROBLEMS[:5]
        _SCAN_LINE_PROBLEMS.clear()
        pytest.fail("scan JSONL lines against the JSON Schema:\n" + "\n".join(problems))
