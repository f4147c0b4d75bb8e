"""Batch judging on this machine: `python -m judge batch` over 200 clips with 1 and 2 worker processes and
on a local Ray instance (2 CPUs), with the peak memory of the whole process tree; then a run killed
(SIGKILL) half-way and resumed.

The clips: 16-frame 256 px turntables of the two example photos (the even or the odd frames of 32, turning either way), clean
and degraded along the distortion ladders (``degrade.FAMILIES`` over the whole frame, severities 1-5), all
different, made once into --clips (default /tmp/facelab-batch-clips).

Usage: python bench/bench_batch.py [--clips DIR] [--count 200] [--repeats 1] [--skip-ray] [--skip-resume]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from common import ROOT

sys.path.insert(0, str(ROOT))


def make_clips(folder: Path, count: int) -> list[Path]:
    """``count`` mp4 clips in ``folder`` (made once; kept for the next run)."""
    from degrade import FAMILIES, degrade

    from face_nerf.export import write_video
    from face_nerf.pipeline import ReconstructionConfig, reconstruct, render_turntable

    existing = sorted(folder.glob("*.mp4"))
    if len(existing) >= count:
        return existing[:count]
    folder.mkdir(parents=True, exist_ok=True)
    config = ReconstructionConfig(frames=32, size=256)
    bases = {p.stem: render_turntable(reconstruct(p, config), config).frames
             for p in sorted((ROOT / "assets" / "examples").glob("*.*"))}
    # Every clip differs: each base's even or odd frames (16 of 32), clean or one rung of a ladder.
    made, digests = [], set()
    rungs = [(None, 0)] + [(family, severity) for severity in range(1, 6) for family in FAMILIES]
    for k, (family, severity) in enumerate(rungs):
        for name, frames in bases.items():
            for offset, turn in ((0, 1), (1, 1), (0, -1), (1, -1)):
                if len(made) >= count:
                    return made
                clip = frames[offset::2][::turn]
                try:
                    clip = clip if family is None else degrade(clip, family, severity, seed=k)
                except ValueError:  # a family that needs a region mask
                    continue
                digest = hashlib.sha256(clip.tobytes()).hexdigest()
                if digest in digests:
                    continue
                digests.add(digest)
                path = folder / f"{name}-{family or 'clean'}-{severity}-{offset}{'r' if turn < 0 else ''}.mp4"
                write_video(clip, path, 24)
                made.append(path)
    return made


class TreeMemory:
    """Peak memory of a process and all its descendants: the sum of their resident sets (RSS, every 0.3 s;
    pages shared between processes, such as the libraries every worker maps, count once per process) and
    of their proportional sets (PSS, every 3 s: shared pages split between their sharers, so the sum is
    what the tree really holds). Reading PSS walks each process's memory map: for Ray's ten processes it
    took 40 ms of CPU, which every 0.3 s took 12% of a core from the run it measured."""

    def __init__(self, pid: int):
        self.pid, self.peak_rss, self.peak_pss, self._stop = pid, 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        for tick in itertools.count():
            if self._stop.is_set():
                return
            tree = [p for p, parent in _tree(self.pid).items() if not (parent and _forked_copy(p, parent))]
            self.peak_rss = max(self.peak_rss, sum(_memory(p, "status", "VmRSS:") for p in tree))
            if tick % 10 == 0:
                self.peak_pss = max(self.peak_pss, sum(_memory(p, "smaps_rollup", "Pss:") for p in tree))
            time.sleep(0.3)

    def stop(self) -> tuple[float, float]:
        """(peak RSS, peak PSS) in GB."""
        self._stop.set()
        self._thread.join()
        return self.peak_rss / 2 ** 30, self.peak_pss / 2 ** 30


def _forked_copy(pid: int, parent: int) -> bool:
    """Whether ``pid`` is a fork that has not yet run its program (a worker starting ffmpeg): it shares
    its parent's pages, and its RSS would count them a second time (a third 0.66 GB worker in one peak)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() == Path(f"/proc/{parent}/cmdline").read_bytes()
    except OSError:
        return False


def _tree(pid: int) -> dict[int, int]:
    """``pid`` and all its descendants, each with its parent's pid (``pid``'s own: 0)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    out, todo = {}, [(pid, 0)]
    while todo:
        p, parent = todo.pop()
        out[p] = parent
        todo += [(child, p) for child in children.get(p, [])]
    return out


def _memory(pid: int, table: str, key: str) -> int:
    """Bytes of ``key`` in /proc/PID/``table`` (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{table}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def batch(clips: Path, out: Path, *options: str) -> tuple[float, tuple[float, float], str]:
    """(seconds, peak (RSS, PSS) GB of the process tree, the summary line) of one `python -m judge batch` run."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "judge", "batch", str(clips), "--out", str(out), "--quiet",
                                *options], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    memory = TreeMemory(process.pid)
    stdout, _ = process.communicate()
    seconds, peak = time.perf_counter() - start, memory.stop()
    if process.returncode != 0:
        raise RuntimeError(f"batch {options} exited with {process.returncode}: {stdout}")
    return seconds, peak, stdout.splitlines()[0]


def resume_check(clips: Path, out: Path, count: int) -> None:
    process = subprocess.Popen([sys.executable, "-m", "judge", "batch", str(clips), "--out", str(out), "--quiet",
                                "--workers", "2"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    rows = out / "judgements.jsonl"
    while not rows.is_file() or len(rows.read_text().splitlines()) < count // 2:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = {json.loads(line)["path"]: json.loads(line)["worker"]
              for line in rows.read_text().splitlines() if line.endswith("}")}
    _, _, line = batch(clips, out, "--workers", "2", "--resume")
    after = [json.loads(line) for line in rows.read_text().splitlines()]
    paths = [r["path"] for r in after]
    again = sum(1 for r in after if r["path"] in before and r["worker"] != before[r["path"]])
    print(f"resume: killed (SIGKILL) with {len(before)} of {count} rows written; resumed: {line}")
    print(f"  rows {len(after)}, distinct clips {len(set(paths))}, clips judged twice {again}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, default=Path(tempfile.gettempdir()) / "facelab-batch-clips")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-resume", action="store_true")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each kind, taken in turn (medians printed)")
    args = parser.parse_args()
    clips = make_clips(args.clips, args.count)
    folder = clips[0].parent
    print(f"{len(clips)} clips (16 frames, 256 px) in {folder}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"--workers 1": ("--workers", "1"), "--workers 2": ("--workers", "2")}
        if not args.skip_ray:
            runs["--ray (local, 2 CPUs)"] = ("--ray", "--workers", "2")
        seconds, figures = {}, {name: [] for name in runs}
        for repeat in range(args.repeats):  # round robin: a slow spell of the host falls on every kind of run
            for i, (name, options) in enumerate(runs.items()):
                figures[name].append(batch(folder, Path(tmp) / f"run{repeat}-{i}", *options))
        for name, done in figures.items():
            times = [t for t, _, _ in done]
            seconds[name] = statistics.median(times)
            rss, pss = max(m[0] for _, m, _ in done), max(m[1] for _, m, _ in done)
            print(f"{name}: {seconds[name]:.1f} s (median of {len(times)}: {', '.join(f'{t:.1f}' for t in times)}), "
                  f"{len(clips) / seconds[name]:.2f} clips/s; the process tree's peak PSS {pss:.2f} GB (RSS summed over "
                  f"its processes {rss:.2f} GB) ({done[-1][2]})")
        print(f"--workers 2 against --workers 1: {seconds['--workers 1'] / seconds['--workers 2']:.2f}x faster")
        if not args.skip_ray:
            ray = seconds["--ray (local, 2 CPUs)"]
            print(f"Ray against --workers 2: {(ray / seconds['--workers 2'] - 1) * 100:+.0f}% time")
        if not args.skip_resume:
            resume_check(folder, Path(tmp) / "resume", len(clips))


if __name__ == "__main__":
    main()
