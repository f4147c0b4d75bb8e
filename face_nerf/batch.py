"""One task over many files: in this process, in N worker processes, or on a Ray cluster (``batch_workers``).

Each file becomes one row. Rows are appended to ``<table>.jsonl`` in the output folder as they finish
(a killed run loses only the files in flight), a file that fails becomes a row with its ``error``, and
at the end the log is compacted (one row per input path, in input order) and written to
``<table>.parquet`` too. ``resume`` skips files whose content (SHA-256) already has a row; content seen
under another path is copied, not processed again.

A task (``Task``) is a small picklable object: ``load(threads)`` once per worker, ``run(path, key)`` per file
(``key``: the content hash, to name its files), returning the row's fields and any files to write beside
the table (``{relative path: bytes}``; the runner writes them, so remote workers need no shared folder).

Example:
    >>> summary = run_batch(MyTask(), find_inputs(["clips/"], VIDEO_SUFFIXES), Path("out"), workers=2)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

from face_nerf.batch_workers import LocalPool, RayPool
from face_nerf.errors import FaceLabError
from face_nerf.signing import file_sha256

MARKER = ".facelab-batch"  # names the task that owns an output folder
MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl")
RUNNER_FIELDS = ("path", "sha256", "error", "seconds", "worker")  # every row has these, then the task's


class BatchError(FaceLabError):
    """A batch that cannot start: no inputs, a bad manifest, an output folder that is not ours."""


class Task(Protocol):
    table: str  # the rows' file name: <table>.jsonl and <table>.parquet
    fields: tuple[tuple[str, str], ...]  # (name, pyarrow type name) of the task's own row fields

    def load(self, threads: int) -> None: ...  # threads: what the task may use (1: no threads of its own)

    def run(self, path: str, key: str) -> tuple[dict, dict[str, bytes]]: ...  # key: names the files it writes


@dataclass(frozen=True)
class Job:
    """One input file and the manifest columns kept with it."""

    path: str
    extra: dict = field(default_factory=dict)


@dataclass
class Summary:
    """What a run did: rows written now, skipped as done before, failed (of those written now), copied
    from content already processed, the output table's path and the wall time."""

    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    copied: int = 0
    seconds: float = 0.0
    table: Path | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, error) of this run's failures

    def line(self) -> str:
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.total} inputs: {self.done} processed now ({self.failed} failed), {self.skipped} already done, "
                f"{self.copied} copied from identical content; {self.seconds:.1f} s ({rate:.2f} files/s)")


# --- inputs ----------------------------------------------------------------------------------------


def find_inputs(sources: Iterable[str], suffixes: tuple[str, ...]) -> list[Job]:
    """The jobs named by ``sources``: each a folder (searched recursively for files ending in ``suffixes``),
    a glob pattern, a manifest (.csv, .tsv or .jsonl with a ``video``, ``photo`` or ``path`` column; its
    other columns are kept; relative paths are read from the manifest's folder) or one file. Paths are made
    absolute; a path named twice is kept once.

    Raises:
        BatchError: a source matches nothing, or a manifest has no path column or a bad line.
    """
    jobs: dict[str, Job] = {}
    for source in sources:
        path = Path(source)
        if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            found = read_manifest(path)
        elif path.is_dir():
            found = [Job(str(p)) for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in suffixes]
        elif path.is_file():
            found = [Job(str(path))]
        else:
            found = [Job(p) for p in sorted(glob.glob(source, recursive=True)) if Path(p).is_file()]
        if not found:
            raise BatchError(f"{source}: no input found (give a folder, a glob such as 'clips/**/*.mp4', a manifest "
                             f"(.csv, .tsv, .jsonl) or a file; searched for {', '.join(suffixes)}).")
        for job in found:
            key = str(Path(job.path).resolve())
            jobs.setdefault(key, Job(key, job.extra))
    return list(jobs.values())


def read_manifest(path: Path) -> list[Job]:
    """Jobs of a CSV/TSV (header row) or JSONL manifest. The path column is ``video``, ``photo`` or ``path``."""
    if path.suffix.lower() == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise BatchError(f"{path}: line {number} is not JSON ({err.msg}).") from None
    else:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    column = next((c for c in ("video", "photo", "path") if rows and all(isinstance(r, dict) and c in r for r in rows)), None)
    if column is None:
        raise BatchError(f"{path}: a manifest needs a 'video' (or 'photo' or 'path') column in every row.")
    return [Job(str(path.parent / str(r[column])), {k: v for k, v in r.items() if k != column}) for r in rows]


def content_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex); "" when it cannot be read (the task then reports why)."""
    try:
        return file_sha256(path)
    except OSError:
        return ""


# --- the run ---------------------------------------------------------------------------------------


def run_batch(task: Task, jobs: list[Job], out: Path, workers: int | None = None, threads: int = 1,
              ray_address: str | None = None, use_ray: bool = False, send_bytes: bool = False, resume: bool = False,
              retry_errors: bool = False, progress: bool = True, label: str = "batch") -> Summary:
    """Run ``task`` over ``jobs`` into ``out`` (see the module's description).

    Args:
        workers: worker processes (None: one per ``threads`` of the cores this process may use; 0: this
            process, no workers).
        threads: threads per worker.
        use_ray: run on Ray (``ray_address``: a cluster's address; None or "local": a local instance with
            ``workers`` x ``threads`` CPUs).
        send_bytes: Ray workers get each file's bytes instead of its path.
        resume: continue an earlier run into ``out``; without it, ``out`` must be new or empty.
        retry_errors: with ``resume``, process again the files whose row is an error.

    Raises:
        BatchError: ``out`` belongs to something else, or holds a run and ``resume`` was not given.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    rows_path = _prepare_folder(out, task.table, resume)
    done = _read_rows(rows_path, retry_errors)
    by_hash = {row["sha256"]: row for row in done.values() if row.get("sha256") and not row.get("error")}
    summary = Summary(len(jobs))
    cores = len(os.sched_getaffinity(0))
    if workers is None:
        workers = max(cores // threads, 1)
    pool = RayPool(task, workers, threads, ray_address, send_bytes) if use_ray else LocalPool(task, workers, threads)
    bar = tqdm(total=len(jobs), desc=label, unit="file", disable=not progress, file=sys.stderr, smoothing=0.1)
    try:
        with rows_path.open("a") as log:
            pending: dict[str, list[Job]] = {}  # content hash in flight -> the jobs waiting for it
            for job in jobs:
                digest = content_hash(job.path)
                if (job.path, digest) in done:
                    summary.skipped += 1
                    bar.update(1)
                    continue
                if digest and digest in by_hash:  # the same content under another path: copied
                    _append(log, _copied(by_hash[digest], job))
                    summary.copied += 1
                    bar.update(1)
                    continue
                if digest and digest in pending:
                    pending[digest].append(job)
                    continue
                pending[digest or job.path] = [job]
                while len(pool.futures) >= pool.capacity:
                    _collect(pool, pending, log, out, summary, by_hash, bar)
                pool.submit(Job(job.path, {**job.extra, "_sha256": digest}))
            while pool.futures:
                _collect(pool, pending, log, out, summary, by_hash, bar)
    finally:
        bar.close()
        pool.close()
    summary.table = _finish(rows_path, jobs, task)
    summary.seconds = time.perf_counter() - start
    return summary


def _collect(pool, pending, log, out: Path, summary: Summary, by_hash: dict, bar) -> None:
    for job, (fields, files, seconds, worker) in pool.results():
        extra = dict(job.extra)
        digest = extra.pop("_sha256", "")
        for name, data in files.items():
            _write_atomic(out / name, data)
        waiting = pending.pop(digest or job.path, [Job(job.path, extra)])
        for i, same in enumerate(waiting):
            row = {"path": same.path, "sha256": digest, "error": fields.get("error"), "seconds": round(seconds, 3),
                   "worker": worker, **dict.fromkeys(name for name, _ in pool.task.fields),  # None where it failed
                   **{k: v for k, v in fields.items() if k != "error"}, **_prefixed(same.extra)}
            if i:
                summary.copied += 1
            _append(log, row)
            bar.update(1)
        summary.done += 1
        if fields.get("error"):
            summary.failed += 1
            summary.errors.append((job.path, fields["error"]))
        elif digest:
            by_hash[digest] = row


def _prefixed(extra: dict) -> dict:
    """Manifest columns, renamed ``input_<name>`` where a name is one of the row's own."""
    return {(f"input_{k}" if k in RUNNER_FIELDS else k): v for k, v in extra.items()}


def _copied(row: dict, job: Job) -> dict:
    return {**row, "path": job.path, **_prefixed(job.extra)}


def _append(log, row: dict) -> None:
    log.write(json.dumps(row, default=str) + "\n")
    log.flush()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _prepare_folder(out: Path, table: str, resume: bool) -> Path:
    marker = out / MARKER
    if out.exists() and not out.is_dir():
        raise BatchError(f"--out {out} is a file: give a folder.")
    if out.is_dir() and any(out.iterdir()):
        if not marker.is_file() or marker.read_text().strip() != table:
            raise BatchError(f"--out {out} holds files this command did not write: choose a new or empty folder.")
        if not resume:
            raise BatchError(f"--out {out} holds an earlier run: add --resume to continue it, or choose a new folder.")
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(table + "\n")
    return out / f"{table}.jsonl"


def _read_rows(rows_path: Path, retry_errors: bool) -> dict[tuple[str, str], dict]:
    """Rows of an earlier run by (path, content hash); a line cut short by a kill is dropped from the log."""
    if not rows_path.is_file():
        return {}
    rows, kept = {}, []
    for line in rows_path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the half-written last line of a killed run
        if retry_errors and row.get("error"):
            continue
        rows[(row["path"], row["sha256"])] = row
        kept.append(line)
    _write_atomic(rows_path, "".join(line + "\n" for line in kept).encode())
    return rows


def _finish(rows_path: Path, jobs: list[Job], task: Task) -> Path:
    """Compact the log (the last row of each input path, in input order; rows of paths no longer among the
    inputs kept after them) and write the Parquet table beside it."""
    latest: dict[str, str] = {}
    for line in rows_path.read_text().splitlines():
        latest[json.loads(line)["path"]] = line
    order = [j.path for j in jobs if j.path in latest] + [p for p in latest if p not in {j.path for j in jobs}]
    _write_atomic(rows_path, "".join(latest[p] + "\n" for p in order).encode())
    return write_parquet(rows_path, task)


def write_parquet(rows_path: Path, task: Task, batch_rows: int = 2000) -> Path:
    """``<table>.parquet`` from the JSONL rows, in batches of ``batch_rows`` (memory bounded by a batch).
    The task's fields keep their types; manifest columns are text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = rows_path.read_text().splitlines()
    known = dict(task.fields)
    extra = sorted({k for line in lines for k in json.loads(line) if k not in known and k not in RUNNER_FIELDS})
    schema = pa.schema([("path", pa.string()), ("sha256", pa.string()), ("error", pa.string()),
                        ("seconds", pa.float64()), ("worker", pa.string())]
                       + [(name, _arrow_type(kind)) for name, kind in task.fields]
                       + [(name, pa.string()) for name in extra])
    target = rows_path.with_suffix(".parquet")
    tmp = target.with_name(f".{target.name}.tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, max(len(lines), 1), batch_rows):
            rows = [json.loads(line) for line in lines[start:start + batch_rows]]
            for row in rows:
                for name in extra:
                    value = row.get(name)
                    row[name] = value if value is None or isinstance(value, str) else json.dumps(value)
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    os.replace(tmp, target)
    return target


def _arrow_type(kind: str):
    import pyarrow as pa

    if kind.startswith("list<") and kind.endswith(">"):
        return pa.list_(_arrow_type(kind[5:-1]))
    if kind.startswith("map<string,") and kind.endswith(">"):
        return pa.map_(pa.string(), _arrow_type(kind[len("map<string,"):-1]))
    return {"string": pa.string(), "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}[kind]


# --- command lines ---------------------------------------------------------------------------------


def add_runner_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """The options every batch command shares (``what``: "clip", "photo")."""
    parser.add_argument("--out", required=True, help="output folder: new or empty, or an earlier run's with --resume")
    parser.add_argument("--workers", type=at_least(0), help="worker processes (default: one per core; 0: this process)")
    parser.add_argument("--threads", type=at_least(1), default=1, help="threads per worker (default 1)")
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="run on Ray: a cluster's address (HEAD:6379), or nothing for a local instance")
    parser.add_argument("--ray-send-bytes", action="store_true", help=f"send each {what}'s bytes to the Ray workers "
                        "instead of its path (when the nodes share no folder)")
    parser.add_argument("--resume", action="store_true", help=f"continue an earlier run into --out: each {what} "
                        "already done (same content) is skipped")
    parser.add_argument("--retry-errors", action="store_true", help=f"with --resume, run again each {what} that failed")
    parser.add_argument("--fail-on-error", action="store_true", help=f"exit with 1 when any {what} failed (default: "
                        "0, with the failures listed)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


RAY_HELP = ("Ray: start a cluster with `ray start --head` on one machine and `ray start --address HEAD:6379` on the "
            "others, then run with --ray HEAD:6379 (the inputs on a path every node sees, or --ray-send-bytes).")


def at_least(low: int):
    """An argparse type: a whole number of at least ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, {low} or more. Got {text!r}.") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more. Got {value}.")
        return value
    return parse


def run_from_arguments(task: Task, args: argparse.Namespace, suffixes: tuple[str, ...], label: str,
                       workers: int | None = None) -> Summary:
    """``find_inputs`` and ``run_batch`` as the shared options say (``workers``: the default when
    ``--workers`` is not given)."""
    if args.retry_errors and not args.resume:
        raise BatchError("--retry-errors continues an earlier run: add --resume.")
    jobs = find_inputs(args.inputs, suffixes)
    return run_batch(task, jobs, Path(args.out), args.workers if args.workers is not None else workers, args.threads,
                     args.ray, args.ray is not None, args.ray_send_bytes, args.resume, args.retry_errors,
                     not args.quiet, label)


def print_summary(summary: Summary, what: str) -> None:
    print(summary.line())
    for path, error in summary.errors[:20]:
        print(f"  failed: {path}: {error}")
    if len(summary.errors) > 20:
        print(f"  … and {len(summary.errors) - 20} more {what}s failed (the 'error' column of {summary.table.name})")
    print(f"wrote {summary.table} and {summary.table.with_suffix('.jsonl')}")
