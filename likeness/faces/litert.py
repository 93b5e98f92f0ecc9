"""Thin wrapper over LiteRT's interpreter: numpy in, numpy out, our errors only."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from likeness.errors import ModelError


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """LiteRT's C++ runtime prints an INFO line on fd 2 for every model it loads; users
    of a command line tool should not see it. Python-level errors are unaffected."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class TFLiteModel:
    """One `.tflite` model with a single float input; outputs in the model's order."""

    def __init__(self, path: Path, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            with _native_stderr_silenced():
                self._interp = Interpreter(model_path=str(path), num_threads=num_threads)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ModelError(f"cannot load model {path.name}: {err}") from err
        inp = self._interp.get_input_details()[0]
        self.input_index = inp["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self._outputs = [d["index"] for d in self._interp.get_output_details()]

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) the model expects."""
        return self.input_shape[2], self.input_shape[1]

    def __call__(self, tensor: np.ndarray) -> list[np.ndarray]:
        batch = np.ascontiguousarray(tensor, dtype=np.float32)[np.newaxis]
        self._interp.set_tensor(self.input_index, batch)
        self._interp.invoke()
        return [self._interp.get_tensor(i).copy() for i in self._outputs]
