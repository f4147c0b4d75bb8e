"""What the judge's benchmarks share: a clip's place in the data set (``Rung``), its cached evidence,
what the judge made of it (``Outcome``), and the report over many (per family and scope: Spearman
correlation of severity with each score, drops, top-category accuracy; then the
acceptance summary)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import ROOT

sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Rung:
    """One clip of the data set: an identity, clean or degraded by a family in a scope at a severity."""

    photo: str  # the identity ("<base photo>-<k>", or "<base photo>-old" for the previous reconstruction)
    family: str  # "clean" for the clean clip
    scope: str
    severity: int
    category: str
    breaks: str

    @property
    def key(self) -> str:
        return f"{self.photo}-{self.family}-{self.scope}-{self.severity}"


def save_raw(path: Path, raw) -> None:
    np.savez(path, region_values=raw.region_values, region_colours=raw.region_colours, person_values=raw.person_values,
             flicker_series=raw.flicker_series, colour_cast=raw.colour_cast, found=raw.found,
             landmark_jitter=raw.landmark_jitter, clip_values=raw.clip_values)


def load_raw(path: Path):
    from judge.calibration import RawEvidence

    with np.load(path) as data:
        return RawEvidence(data["region_values"], data["region_colours"], data["person_values"], data["flicker_series"],
                           data["colour_cast"], data["found"], float(data["landmark_jitter"]), data["clip_values"])


@dataclass
class Outcome:
    rung: Rung
    quality: float
    authenticity: float
    top: str


def predict_rung(calibration, rung: Rung, raw) -> Outcome:
    """Scores and top category straight from cached evidence."""
    from judge.categories import top_category

    features = calibration.features(raw)
    quality, authenticity, probabilities = calibration.predict(features)
    return Outcome(rung, quality, authenticity, top_category(probabilities, features, len(raw.found) == 1))


def spearman(x, y) -> float:
    from scipy.stats import spearmanr

    value = spearmanr(x, y).statistic
    return float(value) if np.isfinite(value) else 0.0


def ladder_srcc(outcomes: list[Outcome], clean: dict, hurt) -> dict[str, float]:
    """Family -> mean |SRCC| of severity (0 = the identity's clean clip) against the score the family hurts,
    over the (identity, scope) ladders that have all five severities."""
    ladders: dict[tuple[str, str, str], list[Outcome]] = {}
    for o in outcomes:
        if o.rung.family not in ("clean", "stylised", "old_recon") and o.rung.photo in clean:
            ladders.setdefault((o.rung.photo, o.rung.family, o.rung.scope), []).append(o)
    per_family: dict[str, list[float]] = {}
    for (photo, family, _), items in ladders.items():
        if len({o.rung.severity for o in items}) < 5:
            continue
        value = spearman([0] + [o.rung.severity for o in items], [hurt(clean[photo])] + [hurt(o) for o in items])
        per_family.setdefault(family, []).append(abs(value))
    return {f: float(np.mean(v)) for f, v in per_family.items()}


def report(outcomes: list[Outcome], title: str) -> None:
    from judge.result import NO_DISTORTION

    print(f"\n== {title}: {len(outcomes)} clips ==")
    clean = {o.rung.photo: o for o in outcomes if o.rung.family == "clean" and o.rung.scope == "global"}
    variants = [o for o in outcomes if o.rung.family == "clean" and o.rung.scope != "global"]
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        if o.rung.family != "clean":
            groups.setdefault((o.rung.family, o.rung.scope), []).append(o)
    hurt = lambda o: o.quality if o.rung.breaks == "technical" else o.authenticity  # the score its family hurts
    print(f"{'family':<10} {'scope':<11} {'n':>4} {'SRCC Q':>7} {'SRCC A':>7} {'SRCC*':>6} {'dQ@5':>6} {'dA@5':>6} "
          f"{'top ok':>6}")
    family_srcc: dict[str, list[tuple[float, float, float, str]]] = {}
    pairs = wins = right = 0
    for (family, scope), items in sorted(groups.items()):
        xs = [0] * len(clean) + [o.rung.severity for o in items]
        qs = [c.quality for c in clean.values()] + [o.quality for o in items]
        as_ = [c.authenticity for c in clean.values()] + [o.authenticity for o in items]
        sq, sa = spearman(xs, qs), spearman(xs, as_)
        sh = sq if items[0].rung.breaks == "technical" else sa
        top5 = [o for o in items if o.rung.severity == max(i.rung.severity for i in items) and o.rung.photo in clean]
        dq = np.mean([clean[o.rung.photo].quality - o.quality for o in top5]) if top5 else np.nan
        da = np.mean([clean[o.rung.photo].authenticity - o.authenticity for o in top5]) if top5 else np.nan
        ok = np.mean([o.top == o.rung.category for o in items])
        print(f"{family:<10} {scope:<11} {len(items):4d} {sq:7.3f} {sa:7.3f} {sh:6.3f} {dq:6.1f} {da:6.1f} {ok:6.0%}")
        family_srcc.setdefault(family, []).append((sq, sa, sh, items[0].rung.breaks))
        for o in items:
            right += o.top == o.rung.category
            if o.rung.photo in clean:
                pairs += 1
                wins += hurt(clean[o.rung.photo]) > hurt(o)
    per_family = {f: np.mean([abs(h) for _, _, h, _ in v]) for f, v in family_srcc.items()}
    technical = {f: np.mean([abs(q) for q, *_ in v]) for f, v in family_srcc.items() if v[0][3] == "technical"}
    print(f"mean |SRCC| severity vs the score each family hurts (quality: technical; authenticity: structure, "
          f"style): {np.mean(list(per_family.values())):.3f} "
          f"({', '.join(f'{f} {v:.2f}' for f, v in per_family.items())})")
    if technical:
        print(f"mean |SRCC| severity vs quality over the technical families: {np.mean(list(technical.values())):.3f}")
    ladders = ladder_srcc(outcomes, clean, hurt)
    if ladders:
        print(f"mean |SRCC| severity vs the score each family hurts, within each identity's full ladder (clean + "
              f"severities 1-5): {np.mean(list(ladders.values())):.3f} over {len(ladders)} families "
              f"({', '.join(f'{f} {v:.2f}' for f, v in sorted(ladders.items()))})")
        technical = [v for (f, v) in ladders.items() if any(o.rung.family == f and o.rung.breaks == "technical" for o in outcomes)]
        print(f"  the same, severity vs quality, technical families only: {np.mean(technical):.3f}")
    print(f"clean beats its degraded versions (on the score each hurts): {wins}/{pairs} = {wins / max(pairs, 1):.1%}")
    print(f"top category right: {right}/{sum(len(v) for v in groups.values())} = "
          f"{right / max(sum(len(v) for v in groups.values()), 1):.1%}; clean clips called "
          f"{NO_DISTORTION}: {sum(o.top == NO_DISTORTION for o in clean.values())}/{len(clean)}")
    if variants:
        print(f"clean variants: quality {min(o.quality for o in variants):.0f}-{max(o.quality for o in variants):.0f}, "
              f"authenticity {min(o.authenticity for o in variants):.0f}-{max(o.authenticity for o in variants):.0f}, "
              f"called {NO_DISTORTION} {sum(o.top == NO_DISTORTION for o in variants)}/{len(variants)}")
