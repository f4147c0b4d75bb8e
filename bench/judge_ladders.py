"""The judge's benchmark: clean turntables of our reconstructions of the example photos, each degraded
by every distortion family (bench/degrade.py) at 5 severities, globally and in single regions.

Prints, per family and scope: the Spearman correlation between severity (0 = clean) and each score,
the mean drop of each score at severity 5, the top-category accuracy, and for local distortions the
heatmap's NSS and AUC against the degraded region; then the acceptance summary.

Usage:
  python bench/judge_ladders.py                 # evaluate judge/calibration.json on all ladders
  python bench/judge_ladders.py --fit           # refit judge/calibration.json on all ladders, then evaluate
  python bench/judge_ladders.py --holdout       # fit on one photo's ladders, evaluate on the other's (both ways)
Options: --frames 24 --size 256 --threads 2 --cache DIR (evidence cache, default /tmp/facelab-judge-cache)
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import ROOT

sys.path.insert(0, str(ROOT))

EXAMPLES = sorted((ROOT / "assets" / "examples").glob("*.*"))


@dataclass(frozen=True)
class Rung:
    """One clip of a ladder."""

    photo: str
    family: str  # "clean" for the clean clip
    scope: str
    severity: int
    category: str
    breaks: str

    @property
    def key(self) -> str:
        return f"{self.photo}-{self.family}-{self.scope}-{self.severity}"


def clean_turntable(photo: Path, frames: int, size: int) -> np.ndarray:
    from face_nerf.export import render_views, turntable_poses
    from face_nerf.pipeline import reconstruct

    views, _ = render_views(reconstruct(photo).field, turntable_poses(frames, 45.0), size)
    return views


def clean_variants(photo: Path, frames: int, size: int):
    """Yield (name, frames) of other clean turntables of a photo: twice as many frames, half as many,
    another light, an edit, mirrored. They are not degraded; they teach the calibration what clean
    looks like beyond one render."""
    from face_nerf.edit import EmbeddedEditor
    from face_nerf.export import render_views, turntable_poses
    from face_nerf.lighting import Lighting
    from face_nerf.pipeline import reconstruct

    field = reconstruct(photo).field
    poses = turntable_poses(frames, 45.0)
    yield "frames-x2", render_views(field, turntable_poses(2 * frames, 45.0), size)[0]
    yield "frames-half", render_views(field, turntable_poses(max(8, frames // 2), 45.0), size)[0]
    yield "studio-light", render_views(field, poses, size, Lighting("studio").to_sh(field.photo_light))[0]
    edited = EmbeddedEditor().edit(field, "red lipstick, blue eyes").field
    yield "edited", render_views(edited, poses, size)[0]
    yield "mirrored", np.ascontiguousarray(render_views(field, poses, size)[0][:, :, ::-1])


def ladder(photo: str, clean: np.ndarray, variants=()):
    """Yield (rung, frames, region mask or None) for the clean clip, its clean variants and every
    degraded clip."""
    from bench.degrade import FAMILIES, GLOBAL, SEVERITIES, background_colour, clip_region_masks, degrade, expected_category

    yield Rung(photo, "clean", GLOBAL, 0, "No Distortion", "none"), clean, None
    for name, frames in variants:
        yield Rung(photo, "clean", name, 0, "No Distortion", "none"), frames, None
    masks = clip_region_masks(clean)
    background = background_colour(clean)
    for family in FAMILIES.values():
        for scope in family.scopes:
            mask = None if scope == GLOBAL else masks[scope]
            for severity in SEVERITIES:
                seed = zlib.crc32(f"{photo}-{family.name}-{scope}-{severity}".encode())
                frames = degrade(clean, family.name, severity, mask, seed=seed, background=background)
                yield (Rung(photo, family.name, scope, severity, expected_category(family.name, scope), family.breaks),
                       frames, mask)


def raw_evidence(frames: np.ndarray):
    from judge.calibration import RawEvidence
    from judge.evidence import gather_evidence
    from judge.track import track_faces

    track = track_faces(frames)
    return RawEvidence.of(gather_evidence(frames, track), track)


def save_raw(path: Path, raw) -> None:
    np.savez(path, region_values=raw.region_values, region_colours=raw.region_colours, person_values=raw.person_values,
             flicker_series=raw.flicker_series, colour_cast=raw.colour_cast, found=raw.found,
             landmark_jitter=raw.landmark_jitter)


def load_raw(path: Path):
    from judge.calibration import RawEvidence

    with np.load(path) as data:
        return RawEvidence(data["region_values"], data["region_colours"], data["person_values"], data["flicker_series"],
                           data["colour_cast"],
                           data["found"], float(data["landmark_jitter"]))


@dataclass
class Outcome:
    rung: Rung
    quality: float
    authenticity: float
    top: str
    nss: float | None
    auc: float | None


def judge_rung(judge, rung: Rung, frames: np.ndarray, mask: np.ndarray | None) -> Outcome:
    from judge.frames import Clip
    from judge.heatmap import auc, nss

    result = judge.judge(Clip(frames, list(range(len(frames))), len(frames), 24.0, "frames", rung.key))
    n_s = a_u = None
    if mask is not None and result.frame_heatmaps is not None:
        target = mask > 0.5
        keep = [i for i in range(len(frames)) if target[i].sum() >= 20]
        n_s = float(np.mean([nss(result.frame_heatmaps[i], target[i]) for i in keep])) if keep else None
        a_u = float(np.mean([auc(result.frame_heatmaps[i], target[i]) for i in keep])) if keep else None
    return Outcome(rung, result.quality.mos, result.authenticity.mos, result.top_category(), n_s, a_u)


def predict_rung(calibration, rung: Rung, raw) -> Outcome:
    """Scores and top category straight from cached evidence (no heatmaps)."""
    from judge.analytic import top_category

    quality, authenticity, probabilities = calibration.predict(calibration.features(raw))
    return Outcome(rung, quality, authenticity, top_category(probabilities), None, None)


def spearman(x, y) -> float:
    from scipy.stats import spearmanr

    value = spearmanr(x, y).statistic
    return float(value) if np.isfinite(value) else 0.0


def report(outcomes: list[Outcome], title: str) -> None:
    from judge.result import NO_DISTORTION

    print(f"\n== {title}: {len(outcomes)} clips ==")
    clean = {o.rung.photo: o for o in outcomes if o.rung.family == "clean" and o.rung.scope == "global"}
    variants = [o for o in outcomes if o.rung.family == "clean" and o.rung.scope != "global"]
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        if o.rung.family != "clean":
            groups.setdefault((o.rung.family, o.rung.scope), []).append(o)
    print(f"{'family':<9} {'scope':<7} {'SRCC Q':>7} {'SRCC A':>7} {'dQ@5':>6} {'dA@5':>6} {'top ok':>6} {'NSS':>5} {'AUC':>5}")
    family_srcc: dict[str, list[tuple[float, float]]] = {}
    family_drops: dict[str, list[tuple[float, float]]] = {}
    pairs = wins = right = 0
    for (family, scope), items in sorted(groups.items()):
        xs = [0] * len(clean) + [o.rung.severity for o in items]
        qs = [clean[p].quality for p in clean] + [o.quality for o in items]
        as_ = [clean[p].authenticity for p in clean] + [o.authenticity for o in items]
        sq, sa = spearman(xs, qs), spearman(xs, as_)
        top5 = [o for o in items if o.rung.severity == 5]
        dq = np.mean([clean[o.rung.photo].quality - o.quality for o in top5])
        da = np.mean([clean[o.rung.photo].authenticity - o.authenticity for o in top5])
        ok = np.mean([o.top == o.rung.category for o in items])
        nsses = [o.nss for o in items if o.nss is not None]
        aucs = [o.auc for o in items if o.auc is not None]
        loc = f"{np.mean(nsses):5.2f} {np.mean(aucs):5.2f}" if nsses else f"{'-':>5} {'-':>5}"
        print(f"{family:<9} {scope:<7} {sq:7.3f} {sa:7.3f} {dq:6.1f} {da:6.1f} {ok:6.0%} {loc}")
        family_srcc.setdefault(family, []).append((sq, sa))
        family_drops.setdefault(family, []).append((dq, da))
        for o in items:
            pairs += 1
            wins += clean[o.rung.photo].quality > o.quality
            right += o.top == o.rung.category
    per_family = {f: np.mean([abs(q) for q, _ in v]) for f, v in family_srcc.items()}
    signs = {f: all(q < 0 for q, _ in v) for f, v in family_srcc.items()}
    local = [o for o in outcomes if o.nss is not None]
    print(f"mean |SRCC| (severity vs quality) over families: {np.mean(list(per_family.values())):.3f} "
          f"({', '.join(f'{f} {v:.2f}' for f, v in per_family.items())})")
    print(f"sign right (quality falls) for every family and scope: {all(signs.values())} "
          f"{[f for f, s in signs.items() if not s] or ''}")
    print(f"clean scores higher (quality) than its degraded versions: {wins}/{pairs} = {wins / max(pairs, 1):.1%}")
    print(f"top category right: {right}/{pairs} = {right / max(pairs, 1):.1%}; clean clips called "
          f"{NO_DISTORTION}: {sum(o.top == NO_DISTORTION for o in clean.values())}/{len(clean)}")
    if variants:
        print(f"clean variants (more/fewer frames, another light, an edit, mirrored): quality "
              f"{min(o.quality for o in variants):.0f}-{max(o.quality for o in variants):.0f}, authenticity "
              f"{min(o.authenticity for o in variants):.0f}-{max(o.authenticity for o in variants):.0f}, called "
              f"{NO_DISTORTION} {sum(o.top == NO_DISTORTION for o in variants)}/{len(variants)}")
    if local:
        print(f"local distortions: heatmap NSS {np.mean([o.nss for o in local]):.2f}, "
              f"AUC {np.mean([o.auc for o in local]):.3f} over {len(local)} clips")
    for family, drops in sorted(family_drops.items()):
        dq, da = np.mean([d[0] for d in drops]), np.mean([d[1] for d in drops])
        print(f"  {family:<9} drop at severity 5: quality {dq:5.1f}, authenticity {da:5.1f} "
              f"-> {'authenticity' if da > dq else 'quality'} falls more")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fit", action="store_true", help="refit judge/calibration.json first")
    parser.add_argument("--holdout", action="store_true", help="fit on one photo, evaluate on the other (both ways)")
    parser.add_argument("--cache", default="/tmp/facelab-judge-cache")
    parser.add_argument("--l2", type=float, default=3.0, help="ridge / logistic penalty when fitting")
    args = parser.parse_args()

    import torch

    from judge.analytic import EmbeddedJudge
    from judge.calibration import Calibration, fit_calibration

    torch.set_num_threads(args.threads)
    cache = Path(args.cache) / f"v3-{args.frames}x{args.size}"
    cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    cleans = {p.stem: clean_turntable(p, args.frames, args.size) for p in EXAMPLES}
    variants = {p.stem: list(clean_variants(p, args.frames, args.size)) for p in EXAMPLES}
    print(f"clean turntables: {len(cleans)} x {args.frames} frames at {args.size} px "
          f"({time.perf_counter() - start:.1f} s)")

    if args.fit or args.holdout:
        samples = {}
        for photo, clean in cleans.items():
            for rung, frames, _ in ladder(photo, clean, variants[photo]):
                path = cache / f"{rung.key}.npz"
                if not path.exists():
                    save_raw(path, raw_evidence(frames))
                samples[rung] = load_raw(path)
        print(f"evidence of {len(samples)} clips ready ({time.perf_counter() - start:.1f} s)")

        def fit(photos):
            chosen = [(raw, r.category, r.breaks, r.severity) for r, raw in samples.items() if r.photo in photos]
            return fit_calibration(chosen, l2=args.l2, fitted_on=f"bench/judge_ladders.py ladders of {', '.join(photos)}, "
                                                     f"{args.frames} frames at {args.size} px, l2 {args.l2}")
        if args.holdout:  # scores and categories from the cached evidence; heatmaps need --fit's full run
            outcomes = []
            for held in cleans:
                calibration = fit([p for p in cleans if p != held])
                outcomes += [predict_rung(calibration, r, raw) for r, raw in samples.items() if r.photo == held]
            report(outcomes, "held out: each photo's ladders judged by a calibration fitted on the other photo's")
            calibration = fit(list(cleans))
            report([predict_rung(calibration, r, raw) for r, raw in samples.items()],
                   "in sample, from cached evidence (no heatmaps)")
        if args.fit:
            fit(list(cleans)).save()
            print("wrote judge/calibration.json")
    if args.holdout and not args.fit:
        return
    judge = EmbeddedJudge(Calibration.load())
    outcomes = [judge_rung(judge, r, f, m) for photo, clean in cleans.items()
                for r, f, m in ladder(photo, clean, variants[photo])]
    report(outcomes, "judge/calibration.json on every ladder")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
