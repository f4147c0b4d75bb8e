"""Fit the judge on the fitting split of its data set (``judge_dataset.py``) and evaluate it on the held-out
identities: the report per family and scope (``judge_outcomes.report``), the confusion matrix of top
categories, whether ``ask`` agrees with the categories on every clip, and the structural failures.
Run through ``python bench/judge_dataset.py [--fit]``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from judge_dataset import base_of, held_out, load_samples
from judge_outcomes import report


def evaluate(data: Path, fit: bool, l2: float, with_rated: bool = False) -> None:
    from judge.calibration import Calibration, fit_calibration
    from judge_outcomes import predict_rung

    samples = load_samples(data)
    fitting = {r: raw for r, raw in samples.items() if not held_out(base_of(r.photo))}
    held = {r: raw for r, raw in samples.items() if held_out(base_of(r.photo))}
    identities = lambda s: len({r.photo for r in s})
    print(f"{len(samples)} clips of {identities(samples)} identities: fitting {len(fitting)} clips of "
          f"{identities(fitting)} identities ({len({base_of(r.photo) for r in fitting})} bases), held out "
          f"{len(held)} of {identities(held)} ({len({base_of(r.photo) for r in held})} bases)")
    if fit:
        from judge_rated import rated_evidence

        rated = [(raw, item.quality, item.authenticity) for item, raw in rated_evidence(data / "rated")] if with_rated else []
        calibration = fit_calibration([(raw, r.category, r.breaks, r.severity) for r, raw in fitting.items()], l2=l2,
                                      rated=rated,
                                      fitted_on=f"bench/judge_dataset.py fitting split: {len(fitting)} clips of "
                                                f"{identities(fitting)} identities, and {len(rated)} clips a person "
                                                f"rated (../shared/realworld/ratings.tsv), l2 {l2}")
        calibration.save()
        print(f"wrote judge/calibration.json ({len(rated)} rated clips fitted too)")
    calibration = Calibration.load()
    outcomes = [predict_rung(calibration, r, raw) for r, raw in held.items()]
    report(outcomes, "held out by identity (judge/calibration.json)")
    confusion(outcomes)
    answers(held)
    structural(samples)


def answers(samples: dict) -> None:
    """Does ``ask`` agree with the categories on every clip? "Is it blurry?" must be yes exactly when a named
    distortion rests on blur (likewise noise), and "Is the mouth distorted?" exactly when a named
    distortion covers the mouth, and always when Mouth is named (verdicts from cached evidence)."""
    from judge.analytic import EmbeddedJudge
    from judge.ask import ask

    judge = EmbeddedJudge()
    disagree = []
    for rung, raw in samples.items():
        result = judge.verdict(raw, list(range(len(raw.found))))
        named = {d.category for d in result.distortions} - {"No Distortion"}
        for question, measure in (("Is it blurry?", "blur"), ("Is it noisy?", "noise")):
            yes = ask(result, question).text.startswith("Yes")
            if yes != any(measure in d.evidence for d in result.distortions if d.category in named):
                disagree.append((rung.key, question))
        mouth = ask(result, "Is the mouth distorted?").text.startswith("Yes")
        if mouth != any("mouth" in d.regions for d in result.distortions if d.category in named) or \
                ("Mouth" in named and not mouth):
            disagree.append((rung.key, "mouth"))
    print(f"\nanswers that disagree with the categories named: {len(disagree)} of {3 * len(samples)} "
          f"({len(samples)} clips x 3 questions){': ' + str(disagree[:5]) if disagree else ''}")


def structural(samples: dict) -> None:
    """Authenticity and the category named of the structural failures: the previous reconstruction of
    every base and the strongest face-only masks (held-out bases marked *)."""
    from judge.analytic import EmbeddedJudge

    judge = EmbeddedJudge()
    rows = [(r, raw) for r, raw in samples.items()
            if r.family == "old_recon" or (r.family == "face_only" and r.severity >= 4)]
    print(f"\nstructural failures: authenticity <= 40 with Head Structure or Overlap/Blending named")
    hits = 0
    for rung, raw in sorted(rows, key=lambda rr: rr[0].key):
        result = judge.verdict(raw, list(range(len(raw.found))))
        named = [d.category for d in result.distortions]
        ok = result.authenticity.mos <= 40 and bool({"Head Structure", "Overlap/Blending"} & set(named))
        hits += ok
        print(f"  {'*' if held_out(base_of(rung.photo)) else ' '} {rung.key:<58} A {result.authenticity.mos:3.0f} "
              f"Q {result.quality.mos:3.0f}  {', '.join(named)}  {'ok' if ok else 'MISSED'}")
    print(f"  {hits}/{len(rows)} hold")


def confusion(outcomes) -> None:
    """Print the confusion matrix of top categories (rows: expected, columns: named)."""
    from judge.result import CATEGORIES

    short = [c.split("/")[0][:6] for c in CATEGORIES]
    matrix = np.zeros((len(CATEGORIES), len(CATEGORIES)), int)
    for o in outcomes:
        matrix[CATEGORIES.index(o.rung.category), CATEGORIES.index(o.top)] += 1
    print("\nconfusion (rows: expected, columns: named)")
    print(f"{'':<24}" + "".join(f"{s:>7}" for s in short) + f"{'recall':>8}")
    for i, c in enumerate(CATEGORIES):
        total = matrix[i].sum()
        print(f"{c:<24}" + "".join(f"{v:7d}" for v in matrix[i]) + (f"{matrix[i, i] / total:8.0%}" if total else f"{'-':>8}"))
