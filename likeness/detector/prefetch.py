"""Whole training batches made ahead in worker processes (`TrainConfig.batch_processes`).

Why: on a GPU the network's step takes hundredths of a second, while one CPU thread
makes about 50 crops a second (fresh fakes, augmentation, JPEG; measured 2026-12-07 on
this project's CPU, the base preset at 160 px with v3's recipe), so the GPU waits on
its batches. Threads (`num_workers`) share one interpreter lock; processes do not.
Every batch is a pure function of its step (`BatchSampler` seeds each crop from
(seed, step, i)), so a batch made in any worker is the batch the trainer would have
made itself: runs stay repeatable and resume exactly.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import torch

from likeness.detector.config import DetectorConfig, TrainConfig

# Each worker process's own sampler, built once by `_start` (a process pool's per-worker
# state lives in its module; nothing in the trainer's process reads it).
_worker_sampler = None


def _start(root: str, config: DetectorConfig, train: TrainConfig) -> None:
    global _worker_sampler
    import cv2

    from likeness.datasets.fakes_format import FakesSet
    from likeness.detector.data import BatchSampler

    torch.set_num_threads(1)  # one core per worker: the pool is the parallelism
    cv2.setNumThreads(1)
    data = FakesSet.open(Path(root))
    _worker_sampler = BatchSampler(data, config, replace(train, num_workers=0))


def _batch(step: int) -> tuple:
    images, *rest = _worker_sampler.dense_batch(step)
    # Back to the uint8 they were made from (exactly: they are k / 255), a quarter of the
    # bytes through the pipe.
    return (images.mul(255).round_().to(torch.uint8).numpy(), *(t.numpy() for t in rest))


class BatchPrefetcher:
    """`dense_batch(step)` like `BatchSampler`'s, from `processes` workers that keep the
    next `ahead` steps' batches in the making."""

    def __init__(
        self, root: Path, config: DetectorConfig, train: TrainConfig, processes: int
    ) -> None:
        # spawn, not fork: forking a process that holds torch's and OpenCV's thread
        # pools (and on a GPU machine a CUDA context) can hang the children.
        self._pool = ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(str(root), config, train),
        )
        self._ahead = 2 * processes
        self._pending: dict[int, Future] = {}

    def dense_batch(self, step: int) -> tuple[torch.Tensor, ...]:
        for stale in [s for s in self._pending if s < step]:
            self._pending.pop(stale).cancel()
        for s in range(step, step + self._ahead):
            if s not in self._pending:
                self._pending[s] = self._pool.submit(_batch, s)
        images, *rest = self._pending.pop(step).result()
        # The sampler's own conversion, so the floats are bit for bit the same.
        return (torch.from_numpy(images).float().div_(255.0), *map(torch.from_numpy, rest))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pending.clear()
