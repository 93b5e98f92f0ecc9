"""The animate pipelines share one loaded generator per weights file and device."""

from __future__ import annotations

import os
import shutil

import pytest

from likeness.errors import ModelError
from likeness.generator.model import DEFAULT_WEIGHTS
from likeness.pipelines.generator_cache import load_generator
from likeness.weights_io import WEIGHTS_NAME


def test_the_same_weights_load_once_and_new_weights_load_again(tmp_path):
    first = load_generator(None, "cpu")
    assert load_generator(DEFAULT_WEIGHTS, "cpu") is first
    copy = tmp_path / "generator"
    shutil.copytree(DEFAULT_WEIGHTS, copy)
    other = load_generator(copy, "cpu")
    assert other is not first
    assert load_generator(copy, "cpu") is other
    # Weights replaced in place (a newer modification time) are read again.
    weights = copy / WEIGHTS_NAME
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_generator(copy, "cpu") is not other


def test_missing_weights_say_so(tmp_path):
    with pytest.raises(ModelError, match="generator weights not found"):
        load_generator(tmp_path, "cpu")
