"""The Ray backend of `likeness scan`: the same per-file scan, on Ray actors.

    likeness scan clips/ --backend ray --json scan.jsonl                 # a local Ray
    likeness scan /shared/clips --backend ray --address ray://head:10001 # a cluster

Each actor (`ScanActor`, one CPU) builds one `Scanner`, so the detector and the face
models are loaded once per worker, and scans the files it is given by path: the file is
read where the actor runs (a path every node sees: NFS, a mounted bucket), only the
`FileScan` (record and thumbnail JPEGs) comes back. `scan_results` yields them in
completion order to `scan_runner`, which writes the same JSONL (with its checkpoints,
so `--resume` works as with the local backend) and the same HTML report.

A worker that dies (killed, out of memory, its node lost) loses no file: the files it
held are given to a fresh actor; each file is yielded exactly once, and a file whose
scan kills its worker `MAX_ATTEMPTS` times gets an error record instead of a fourth try.

`ray` is imported only here (`pip install likeness[ray]`).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from likeness.errors import InputError, LikenessError, SetupError
from likeness.pipelines.configs import ScanConfig
from likeness.pipelines.scan import FileScan, error_record

MAX_ATTEMPTS = 3  # deaths of a worker while it held a file, before that file is an error
IN_FLIGHT = 2  # files queued per actor: the next one is ready when a scan ends


def check_ray() -> None:
    """SetupError (one line, with the install command) when Ray is not installed."""
    _ray()


def _ray():
    try:
        import ray
    except ImportError:
        raise SetupError("--backend ray needs Ray: pip install 'likeness[ray]'") from None
    return ray


def _setup_error(kind: str, message: str) -> LikenessError:
    """A worker's start-up error as the driver's own kind (a missing face model on a
    node is the same ModelError as here)."""
    from likeness import errors

    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, LikenessError)):
        cls = LikenessError
    return cls(f"on a Ray worker: {message}")


class ScanActor:
    """One worker: a `Scanner` built once, then files by path (a Ray actor through
    `_actor_class`; its processes are titled `ray::ScanActor`)."""

    def __init__(self, config: ScanConfig, threads: int) -> None:
        self.failed: tuple[str, str] | None = None
        try:
            import torch

            torch.set_num_threads(max(1, threads))
            from likeness.pipelines.scan import Scanner

            self.scanner = Scanner(config)
        except Exception as err:  # reported by ready(): a constructor error kills no one
            self.failed = (type(err).__name__, str(err))

    def ready(self) -> tuple[str, str] | None:
        return self.failed

    def pid(self) -> int:
        return os.getpid()

    def scan(self, path: str) -> FileScan:
        return self.scanner.scan_file(Path(path))


_ACTOR_CLASS = None
_POOL: dict[tuple[str, str, ScanConfig], list] = {}  # actors kept between scans (see scan_results)


def _actor_class(ray):
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        # max_restarts=0: a dead actor is replaced by the driver, which knows which
        # files it held (Ray's own retries could scan a file that kills workers forever).
        _ACTOR_CLASS = ray.remote(max_restarts=0, max_task_retries=0)(ScanActor)
    return _ACTOR_CLASS


def connect(address: str | None, workers: int | None) -> bool:
    """Join the cluster at `address` (ray://host:10001, or "auto" for the one
    `ray start` made here), or the Ray this process already runs, or start a local
    one with `workers` CPUs. True when this call started Ray (the caller shuts it)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"log_to_driver": False, "logging_level": "ERROR"}
    try:
        # Ray warns on stderr before it raises (a timeout): our one line says it all
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if address:  # an existing cluster: its own dashboard and resources
                ray.init(address=address, **quiet)
            else:
                cpus = workers or os.cpu_count() or 1
                # "local": a new Ray, never one a `ray start` left behind here
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)
    except ConnectionError as err:
        hint = "" if os.environ.get("RAY_AUTH_MODE") else (
            " (a cluster with token authentication needs RAY_AUTH_MODE=token and its token)"
        )  # fmt: skip
        raise InputError(f"cannot reach the Ray cluster at {address}: {err}{hint}") from None
    except Exception as err:  # ray raises several kinds for a bad address
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise InputError(f"cannot start {where}: {' '.join(str(err).split())[:200]}") from None
    return True


def disconnect() -> None:
    """Leave (or stop, when `connect` started it) the Ray of this process."""
    _ray().shutdown()


def cluster_cpus() -> int:
    return max(1, int(_ray().cluster_resources().get("CPU", 1)))


def scan_results(
    files: list[Path],
    config: ScanConfig,
    *,
    workers: int | None = None,
    address: str | None = None,
    notes: list[str] | None = None,
) -> Iterator[tuple[Path, FileScan]]:
    """(path, result) for every file, in completion order, scanned on Ray actors.

    Args:
        files: paths every worker can read.
        config: the scan options (the same on every worker).
        workers: actors to start (default: every CPU of the cluster).
        address: a Ray cluster; None: the Ray already running here, else a local one.
        notes: where to say that a worker died (and its files went to a fresh one).

    Raises:
        SetupError: Ray is not installed. InputError: the cluster cannot be reached.
        ModelError (or the worker's own kind): a worker cannot load the models.
    """
    ray = _ray()
    if not files:
        return
    started = connect(address, workers)
    # In a Ray this process already ran (a notebook, a service, the tests) the actors
    # stay for the next scan with the same options: their models are loaded already.
    actors: list = [] if started else _pooled(ray, config)
    try:
        notes = notes if notes is not None else []
        cpus = cluster_cpus()
        if workers and workers > cpus:  # an actor beyond the CPUs would wait forever
            notes.append(f"--workers {workers}: the Ray cluster has {cpus} CPUs, using {cpus}")
        yield from _scan(ray, files, config, min(workers or cpus, cpus), actors, notes)
    finally:
        if started:
            ray.shutdown()


def _pooled(ray, config: ScanConfig) -> list:
    """The actors kept for `config` in this Ray (its node id tells a Ray started again
    from the one before, whose job ids repeat), checked alive: any that is not (or does
    not answer in 30 s) is dropped with the others, and fresh ones start."""
    context = ray.get_runtime_context()
    actors = _POOL.setdefault((context.get_job_id(), context.get_node_id(), config), [])
    if actors:
        try:
            ray.get([actor.pid.remote() for actor in actors], timeout=30)
        except Exception:  # dead, unknown to this cluster, or stuck: start over
            for actor in actors:
                with contextlib.suppress(Exception):  # a dead one cannot be killed
                    ray.kill(actor, no_restart=True)
            actors.clear()
    return actors


def _scan(ray, files, config, workers, actors, notes) -> Iterator[tuple[Path, FileScan]]:
    from collections import deque

    from ray import exceptions as rx

    # every way Ray says the worker (or its node) is gone, rather than the scan failing
    lost_worker = (rx.RayActorError, rx.OutOfMemoryError, rx.ObjectLostError,
                   rx.NodeDiedError, rx.WorkerCrashedError)  # fmt: skip

    Actor = _actor_class(ray)
    gpu = 1 if str(config.device).startswith("cuda") else 0
    todo = deque(Path(p) for p in files)
    attempts: dict[Path, int] = {}
    queues: list[deque] = []  # per actor slot: (ref, path) in submission order
    owner: dict = {}  # ObjectRef -> slot

    def start(slots: list[int]) -> None:
        """New actors in these slots, started together (each loads its models: ~10 s
        on the loaded 2-core machine), ready when this returns."""
        made = [Actor.options(num_cpus=1, num_gpus=gpu).remote(config, 1) for _ in slots]
        for failed in ray.get([actor.ready.remote() for actor in made]):
            if failed is not None:
                raise _setup_error(*failed)
        for slot, actor in zip(slots, made, strict=True):
            if slot < len(actors):
                actors[slot] = actor
            else:
                actors.append(actor)

    def feed(slot: int) -> None:
        while todo and len(queues[slot]) < IN_FLIGHT:
            path = todo.popleft()
            ref = actors[slot].scan.remote(str(path))
            queues[slot].append((ref, path))
            owner[ref] = slot

    slots = list(range(min(workers, len(files))))
    start([slot for slot in slots if slot >= len(actors)])
    for slot in slots:
        queues.append(deque())
        feed(slot)
    while owner:
        done, _ = ray.wait(list(owner), num_returns=1)
        slot = owner[done[0]]
        # An actor runs its calls in order: the oldest of its queue finishes first.
        ref, path = queues[slot][0]
        try:
            result = ray.get(ref)
        except lost_worker:
            # The worker died (killed, out of memory, node lost) while scanning `path`,
            # holding the files queued behind it: all go back to the front of the line,
            # to a fresh actor; `path` is blamed, and after MAX_ATTEMPTS deaths is an
            # error record rather than a worker killer tried forever.
            held = [p for _, p in queues[slot]]
            for r, _ in queues[slot]:
                owner.pop(r, None)
            queues[slot].clear()
            attempts[path] = attempts.get(path, 0) + 1
            notes.append(
                f"a Ray worker died scanning {path}; its {len(held)} file(s) went to a fresh one"
            )
            if attempts[path] >= MAX_ATTEMPTS:
                held.pop(0)
                message = f"a scan worker died scanning this file {MAX_ATTEMPTS} times"
                yield path, FileScan(error_record(path, RuntimeError(message)))
            todo.extendleft(reversed(held))
            ray.kill(actors[slot], no_restart=True)
            start([slot])
            feed(slot)
            continue
        except rx.RayTaskError as err:  # the scan itself raised (scan_file should not)
            result = FileScan(error_record(path, RuntimeError(str(err).splitlines()[0])))
        queues[slot].popleft()
        owner.pop(ref)
        yield path, result
        feed(slot)
