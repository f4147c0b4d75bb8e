"""The workers that ``face_nerf.batch`` runs a task in: this process, local worker processes held to their
own cores (``LocalPool``), or Ray actors (``RayPool``). Both pools take jobs (``submit``), give back
finished ones (``results``), and stand up to a worker that dies: a crashed local worker's files run
again one at a time, a dead Ray actor is replaced and its file gets an error row.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from face_nerf.errors import FaceLabError

if TYPE_CHECKING:
    from face_nerf.batch import Job, Task

_worker_task: list = []  # a worker process's loaded task and any error loading it (set by ``_init_worker``)


def worker_setup(threads: int, cores: list[int] | None = None) -> None:
    """Limit a worker to ``threads`` threads (torch, OpenCV, OpenMP, numpy's BLAS) and, when given, to
    ``cores`` (then the threads that libraries start of their own, such as mediapipe's, stay there too)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if cores:
        os.sched_setaffinity(0, cores)
    from threadpoolctl import threadpool_limits

    # numpy is loaded before this runs (unpickling the task imports it), so its OpenBLAS has already
    # started a thread per core and the variable above comes too late for it. Left so, a worker held to
    # one core ran a BLAS thread spinning beside its own: np.linalg.solve in the head fit took 10x as
    # long, and a judgement 25% longer.
    threadpool_limits(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass
    import torch

    torch.set_num_threads(threads)


def run_one(task: Task, path: str, key: str, data: bytes | None = None) -> tuple[dict, dict[str, bytes], float, str]:
    """Run a loaded ``task`` on one file (``data``: its bytes, when the worker cannot read the path). Never
    raises: a failure is the row's ``error``. Returns (fields, files, seconds, worker)."""
    start = time.perf_counter()
    worker = f"{os.uname().nodename}:{os.getpid()}"
    try:
        if data is None:
            fields, files = task.run(path, key)
        else:
            with tempfile.TemporaryDirectory(prefix="facelab-batch-") as tmp:
                local = Path(tmp) / Path(path).name
                local.write_bytes(data)
                fields, files = task.run(str(local), key)
    except Exception as err:  # noqa: BLE001 - any failure of one file is that file's row, never the batch's end
        message = str(err) if isinstance(err, FaceLabError) else f"{type(err).__name__}: {err}"
        return {"error": message}, {}, time.perf_counter() - start, worker
    return fields, files, time.perf_counter() - start, worker


class LocalPool:
    """Local worker processes (spawned, each loading the task once), or this process when ``workers`` is 0."""

    def __init__(self, task: Task, workers: int, threads: int):
        self.task, self.workers = task, workers
        self.groups = core_groups(workers, threads)
        self.threads, self.executor, self.futures, self.loaded = threads, None, {}, False
        if workers:
            self._start()

    def _start(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # no forked copies of mediapipe's or torch's threads
        counter = context.Value("i", 0)
        self.executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker,
                                            initargs=(self.task, counter, self.groups, self.threads))

    @property
    def capacity(self) -> int:
        return max(self.workers, 1) * 2

    def submit(self, job: Job) -> None:
        if self.executor is None:
            if not self.loaded:
                self.task.load(self.threads)
                self.loaded = True
            self.futures[len(self.futures)] = (job, run_one(self.task, job.path, job_key(job)))
            return
        self.futures[self.executor.submit(_run_in_worker, job.path, job_key(job))] = job

    def results(self) -> Iterator[tuple[Job, tuple]]:
        """Finished jobs and their results (blocks until at least one is)."""
        if self.executor is None:
            done, self.futures = list(self.futures.values()), {}
            yield from done
            return
        finished, _ = wait(list(self.futures), return_when=FIRST_COMPLETED)
        broken = []
        for future in finished:
            job = self.futures.pop(future)
            try:
                yield job, future.result()
            except BrokenProcessPool:
                broken.append(job)
        if broken:  # a worker died (a crash in native code): each job in flight runs again alone
            in_flight = broken + list(self.futures.values())
            self.futures = {}
            self.executor.shutdown(cancel_futures=True)
            yield from self._alone(in_flight)
            self._start()

    def _alone(self, jobs: list[Job]) -> Iterator[tuple[Job, tuple]]:
        import multiprocessing

        for job in jobs:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(1, mp_context=context, initializer=_init_worker,
                                     initargs=(self.task, context.Value("i", 0), [self.groups[0]], self.threads)) as single:
                try:
                    yield job, single.submit(_run_in_worker, job.path, job_key(job)).result()
                except BrokenProcessPool:
                    yield job, ({"error": "the worker process crashed on this file (a fault in native code)"}, {},
                                0.0, "")

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)


def core_groups(workers: int, threads: int) -> list[list[int] | None]:
    """The cores of each of ``workers`` workers on this machine: ``threads`` of its own each when they go
    round, else None for every worker (the OS shares the cores out)."""
    cores = sorted(os.sched_getaffinity(0))
    if workers * threads <= len(cores):
        return [cores[i * threads:(i + 1) * threads] for i in range(workers)]
    return [None] * max(workers, 1)


def _init_worker(task: Task, counter, groups: list, threads: int) -> None:
    """A worker process starts: its cores and threads, then the task loaded once (a failure to load is
    kept, and each file's row says it)."""
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    worker_setup(threads, groups[index % len(groups)])
    try:
        task.load(threads)
        _worker_task[:] = [task, None]
    except Exception as err:  # noqa: BLE001 - said in every row of this worker
        _worker_task[:] = [task, f"the worker could not load {type(task).__name__}: {type(err).__name__}: {err}"]


def _run_in_worker(path: str, key: str) -> tuple:
    task, problem = _worker_task
    if problem:
        return {"error": problem}, {}, 0.0, f"{os.uname().nodename}:{os.getpid()}"
    return run_one(task, path, key)


class RayPool:
    """Ray actors, one per worker, each holding a loaded task; files sent as bytes when ``send_bytes``."""

    def __init__(self, task: Task, workers: int, threads: int, address: str | None, send_bytes: bool):
        import ray

        self.ray, self.send_bytes, self.started = ray, send_bytes, not ray.is_initialized()
        local = self.started and address in (None, "", "local")
        if self.started:
            # The workers import this project from where it lies here (every node of a cluster needs the
            # same checkout at the same path, or the project installed).
            root = str(Path(__file__).resolve().parents[1])
            path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
            ray.init(address=None if local else address, num_cpus=workers * threads if local else None,
                     include_dashboard=False, log_to_driver=False, configure_logging=False,
                     runtime_env={"env_vars": {"PYTHONPATH": path}},
                     # No idle workers started ahead: the actors get their own (each idle one holds ~90 MB).
                     _system_config={"enable_worker_prestart": False, "prestart_worker_first_driver": False}
                     if local else None)
        self.workers = workers or max(int(ray.available_resources().get("CPU", 1)) // threads, 1)
        # One malloc arena: an actor loads its task on one thread and runs files on another, and glibc gave
        # each thread its own arena, so what loading freed was never reused (1.05 GB an actor against 0.72).
        self.actor_class = ray.remote(num_cpus=threads, runtime_env={"env_vars": {"MALLOC_ARENA_MAX": "1"}})(_RayWorker)
        self.task, self.threads = task, threads
        # On the local instance each actor holds its own cores, as local workers do (unpinned, a clip took 10%
        # longer).
        groups = core_groups(self.workers, threads) if local else [None] * self.workers
        self.idle = [(self.actor_class.remote(task, threads, cores), cores) for cores in groups]
        self.futures: dict = {}

    @property
    def capacity(self) -> int:
        return self.workers

    def submit(self, job: Job) -> None:
        data = Path(job.path).read_bytes() if self.send_bytes else None
        actor, cores = self.idle.pop()
        self.futures[actor.run.remote(job.path, job_key(job), data)] = (actor, cores, job)

    def results(self) -> Iterator[tuple[Job, tuple]]:
        ray = self.ray
        finished, _ = ray.wait(list(self.futures), num_returns=1)
        for ref in finished:
            actor, cores, job = self.futures.pop(ref)
            try:
                result = ray.get(ref)
                self.idle.append((actor, cores))
            except ray.exceptions.RayActorError:
                result = ({"error": "the Ray worker died on this file"}, {}, 0.0, "")
                self.idle.append((self.actor_class.remote(self.task, self.threads, cores), cores))
            yield job, result

    def close(self) -> None:
        for actor in [a for a, _ in self.idle] + [a for a, _, _ in self.futures.values()]:
            self.ray.kill(actor)
        if self.started:  # the local instance or the connection this run made
            self.ray.shutdown()


class _RayWorker:
    def __init__(self, task: Task, threads: int, cores: list[int] | None):
        worker_setup(threads, cores)
        task.load(threads)
        self.task = task

    def run(self, path: str, key: str, data: bytes | None) -> tuple:
        if data is None and not Path(path).is_file():
            return ({"error": f"{path} is not readable on this Ray node: put the inputs on a shared path or run "
                              "with --ray-send-bytes"}, {}, 0.0, f"{os.uname().nodename}:{os.getpid()}")
        return run_one(self.task, path, key, data)


def job_key(job: Job) -> str:
    """The name of a job's files: its content hash (of its path, when it could not be read)."""
    return job.extra.get("_sha256") or hashlib.sha256(job.path.encode()).hexdigest()
