"""The embedded judge on turntables from other generators, rated by a person (``../shared/realworld``):
Spearman correlation of each score with the ratings, the named category beside the rated one, and
the time per clip.

The shipped scores are fitted to these ratings too (``judge_dataset.py --fit``), so ``--loo`` also
measures them the honest way: each clip scored by scores fitted without it (leave-one-out), the
categories and baselines as shipped.

Usage: python bench/judge_rated.py [--loo] [--data /tmp/facelab-judge-data] [--shared ../shared/realworld] [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import ROOT

sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "realworld"


@dataclass(frozen=True)
class Rated:
    """One rated clip of ``ratings.tsv``."""

    path: Path
    quality: float
    authenticity: float
    categories: tuple[str, ...]
    note: str


def read_ratings(shared: Path = SHARED) -> list[Rated]:
    """The rows of ``shared/ratings.tsv`` (file, quality, authenticity, categories separated by ';', note)."""
    with open(shared / "ratings.tsv", newline="") as handle:
        return [Rated(shared / row["file"], float(row["quality"]), float(row["authenticity"]),
                      tuple(c.strip() for c in row["categories"].split(";") if c.strip()), row.get("note", ""))
                for row in csv.DictReader(handle, delimiter="\t")]


def rated_evidence(cache: Path, shared: Path = SHARED) -> list[tuple[Rated, object]]:
    """Each rated clip with its evidence (``RawEvidence``), cached in ``cache`` by file name."""
    from judge.analytic import analysis_frames
    from judge.calibration import RawEvidence
    from judge.evidence import FaceModels, track_and_gather
    from judge.frames import load_clip
    from judge_outcomes import load_raw, save_raw

    cache.mkdir(parents=True, exist_ok=True)
    models, out = None, []
    for item in read_ratings(shared):
        path = cache / f"{item.path.stem}.npz"
        if not path.exists():
            models = models or FaceModels.load()
            clip = load_clip(item.path)
            frames = analysis_frames(clip.frames)
            track, evidence = track_and_gather(frames, models, clip.frames.shape[2] / frames.shape[2])
            save_raw(path, RawEvidence.of(evidence, track))
        out.append((item, load_raw(path)))
    return out


def leave_one_out(calibration, samples: list, rated: list, l2: float, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """(quality [N], authenticity [N]) of each rated clip from scores fitted without it: the benchmark
    clips ``samples`` ((evidence, category, breaks, severity)) and the other rated clips ``rated``
    ((Rated, evidence)); the baselines and categories of ``calibration`` kept."""
    from judge.calibration import fit_scores, score_targets

    x = np.stack([calibration.features(raw) for raw, *_ in samples])
    quality, authenticity = score_targets([(b, s) for _, _, b, s in samples])
    xr = np.stack([calibration.features(raw) for _, raw in rated])
    qr, ar = np.array([i.quality for i, _ in rated]), np.array([i.authenticity for i, _ in rated])
    out = np.zeros((2, len(rated)))
    for i in range(len(rated)):
        keep = np.arange(len(rated)) != i
        fitted = fit_scores(calibration, np.concatenate([x, xr[keep]]), np.concatenate([quality, qr[keep]]),
                            np.concatenate([authenticity, ar[keep]]),
                            np.concatenate([np.ones(len(x)), np.full(keep.sum(), weight)]), l2)
        out[0, i], out[1, i], _ = fitted.predict(xr[i])
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--loo", action="store_true", help="also score each clip with scores fitted without it")
    parser.add_argument("--data", type=Path, default=Path("/tmp/facelab-judge-data"))
    parser.add_argument("--l2", type=float, default=3.0)
    args = parser.parse_args()

    import numpy as np
    import torch
    from scipy.stats import spearmanr

    from judge.analytic import EmbeddedJudge
    from judge.frames import load_clip

    torch.set_num_threads(args.threads)
    rated = read_ratings(args.shared)
    judge = EmbeddedJudge()
    rows = []
    print(f"{'clip':<44} {'Q':>4} {'Q*':>4} {'A':>4} {'A*':>4} {'s':>5}  named / rated")
    for item in rated:
        start = time.perf_counter()
        result = judge.judge(load_clip(item.path))
        seconds = time.perf_counter() - start
        rows.append((item, result, seconds))
        print(f"{item.path.stem[:44]:<44} {result.quality.mos:4.0f} {item.quality:4.0f} {result.authenticity.mos:4.0f} "
              f"{item.authenticity:4.0f} {seconds:5.1f}  {result.top_category()} / {'; '.join(item.categories)}")
    for name in ("quality", "authenticity"):
        srcc = spearmanr([getattr(i, name) for i, _, _ in rows], [getattr(r, name).mos for _, r, _ in rows]).statistic
        print(f"SRCC {name}: {srcc:.3f} over {len(rows)} rated clips")
    right = sum(r.top_category() in i.categories for i, r, _ in rows)
    print(f"named category among the rated ones: {right}/{len(rows)}; median {np.median([s for *_, s in rows]):.1f} s a clip")
    if args.loo:
        from judge.calibration import RATED_WEIGHT
        from judge_dataset import held_out, base_of, load_samples

        samples = [(raw, r.category, r.breaks, r.severity) for r, raw in load_samples(args.data).items()
                   if not held_out(base_of(r.photo))]
        pairs = rated_evidence(args.data / "rated", args.shared)
        quality, authenticity = leave_one_out(judge.calibration, samples, pairs, args.l2, RATED_WEIGHT)
        for (item, _), q, a in zip(pairs, quality, authenticity):
            print(f"  leave-one-out {item.path.stem[:40]:<40} Q {q:4.0f} ({item.quality:.0f})  A {a:4.0f} ({item.authenticity:.0f})")
        for name, predicted in (("quality", quality), ("authenticity", authenticity)):
            srcc = spearmanr([getattr(i, name) for i, _ in pairs], predicted).statistic
            print(f"leave-one-out SRCC {name}: {srcc:.3f} over {len(pairs)} rated clips")


if __name__ == "__main__":
    main()
