"""The judge's data set: clean turntables of many identities, each degraded, split by identity.

Identities: every example photo and every photo of ``../shared/realworld/photos`` that reconstructs is a
*base* (but ``EXCLUDED``; the ``STYLISED`` ones give clean images of faces that are not real); each base gives ``--per-base`` identities by sampling the head model: random shape-target offsets
on the fitted head, a facial expression, age, skin tone, hair and eye colour (the embedded editor), and a
light. The split is by base photo (``held_out``), so no face of the held-out set was seen in fitting.

Clips per identity: the clean turntable and ``--rungs`` distorted ones, the families and severities
dealt round-robin over:
- the frame families of ``bench/degrade.py`` (blur, noise, JPEG, exposure, low resolution, colour,
  flicker, warp, smear, holes, face-only mask, background bleeding onto the head, cartoon look) over
  the whole frame, a stretch of frames or one face region;
- identity drift (the face cross-fades into another identity's across the turn), a second face
  (Janus) on the head, a warped background (over a textured backdrop that otherwise moves rigidly);
- the previous reconstruction (a flat face on a capsule, from ``git`` history: ``OLD_COMMIT``) of each base.
The first ``--ladders`` held-out identities of each base also get every severity of ``LADDER_COMBOS``, so
that severity can be ranked within one identity.

Usage:
  python bench/judge_dataset.py --make       # render identities and distortions, cache their evidence (~40 min on 2 cores)
  python bench/judge_dataset.py --fit        # fit judge/calibration.json on the fitting split, then evaluate
  python bench/judge_dataset.py --fit --rated  # ... and the scores to the rated clips too (over-fits; see judge_rated.py --loo)
  python bench/judge_dataset.py              # evaluate judge/calibration.json on the held-out split
Options: --data DIR (default /tmp/facelab-judge-data) --per-base 16 --rungs 3 --ladders 1 --frames 16 --size 256 --workers 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from common import ROOT

sys.path.insert(0, str(ROOT))

from judge_outcomes import Rung, load_raw, save_raw  # noqa: E402

SHARED_PHOTOS = ROOT.parent / "shared" / "realworld" / "photos"
OLD_COMMIT = "861551e"  # the last commit before the head model: the face-on-a-capsule reconstruction
PROMPTS = {  # what an identity may be given, one draw per group (or nothing)
    "age": ("older", "younger", ""),
    "skin": ("darker skin", "lighter skin", "", ""),
    "hair": ("blond hair", "grey hair", "black hair", "auburn hair", "brown hair", ""),
    "eyes": ("blue eyes", "green eyes", "brown eyes", ""),
    "expression": ("smile", "frown", "open mouth", "raised eyebrows", "", ""),
    "shape": ("bigger nose", "strong chin", "wider face", "", "", ""),
}
LIGHTS = ("original", "original", "studio", "left", "right", "top", "warm", "cool", "flat")
# Bases that cannot be clean references: a group photo whose faces are 59 px across, and a photo blurred
# on purpose (their identities would teach the judge that blur is clean).
EXCLUDED = ("p17_group_of_four_lowres", "p28_degraded_blurry_man_glasses")
# Bases that are not real faces (a drawing, a statue): their identities are clean images but not
# authentic, a "style" rung of severity 4, and are not degraded further.
STYLISED = ("p22_cartoon_2d_mermaid", "p27_golden_buddha_statue")
COMPOUND = ("drift", "janus", "bg_warp")  # distortions that need more than one clip's frames
CATEGORY = {"drift": "Facial Feature", "janus": "Head Structure", "bg_warp": "Overlap/Blending",
            "old_recon": "Head Structure"}
# The ladders of the held-out identities that get every severity (``--ladders``): each family once, over
# the whole frame where it can be, and the region families in one region each.
LADDER_COMBOS = (("blur", "global"), ("noise", "global"), ("jpeg", "global"), ("exposure", "global"),
                 ("lowres", "global"), ("colour", "global"), ("flicker", "global"), ("warp", "global"),
                 ("noise", "frames"), ("blur", "eyes"), ("noise", "mouth"), ("colour", "hair"), ("smear", "cheek"),
                 ("warp", "mouth"), ("hole", "mouth"), ("smear", "neck"), ("face_only", "beyond-face"),
                 ("bleed", "head"), ("stylise", "global"), ("drift", "global"), ("janus", "global"),
                 ("bg_warp", "global"))
JANUS_OPACITY = (0.35, 0.5, 0.65, 0.8, 1.0)
DRIFT_AMOUNT = (0.25, 0.4, 0.6, 0.8, 1.0)  # how far into the other identity the last view goes


def bases() -> list[Path]:
    photos = sorted((ROOT / "assets" / "examples").glob("*.*"))
    if SHARED_PHOTOS.is_dir():
        photos += sorted(p for p in SHARED_PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return photos


def held_out(base: str) -> bool:
    """The fixed split: a base (and every identity made from it) is held out when its name hashes to 0 mod 3."""
    return zlib.crc32(base.encode()) % 3 == 0


def combos() -> list[tuple[str, str]]:
    """Every (family, scope) the data set deals, frame families first, then the compound ones."""
    from bench.degrade import FAMILIES

    return [(f.name, scope) for f in FAMILIES.values() for scope in f.scopes] + [(c, "global") for c in COMPOUND]


# --- identities ----------------------------------------------------------------------------------------

def make_identity(base: Path, k: int, frames: int, size: int) -> tuple[np.ndarray, dict]:
    """One identity from a base photo: the head model's shape offset, edited, lit, rendered."""
    from face_nerf.appearance.hair import estimate_hair
    from face_nerf.edit import EmbeddedEditor
    from face_nerf.export import render_views, turntable_poses
    from face_nerf.field import build_field
    from face_nerf.geometry import build_head
    from face_nerf.head import fit_head, load_head_template, load_landmark_correspondence
    from face_nerf.head.place import place_fitted_head
    from face_nerf.landmarks import analyse_face
    from face_nerf.lighting import Lighting
    from face_nerf.photo import load_photo
    from face_nerf.pipeline import ReconstructionConfig

    rng = np.random.default_rng(zlib.crc32(f"{base.stem}-{k}".encode()))
    config = ReconstructionConfig()
    photo = load_photo(base)
    analysis = analyse_face(photo.rgb)
    template, correspondence = load_head_template(), load_landmark_correspondence()
    fit = fit_head(analysis.landmarks, template, correspondence, config.fit)
    if k:  # identity 0 is the base itself; the others move a third of the shape weights
        weights = {n: float(np.clip(w + (rng.normal(0.0, 0.3) if rng.random() < 0.33 else 0.0), 0.0, 1.0))
                   for n, w in fit.target_weights.items()}
        fit = dataclasses.replace(fit, target_weights=weights)
    head = place_fitted_head(fit, correspondence, analysis.image_size, analysis.landmarks)
    hair = estimate_hair(photo.rgb, analysis.person_mask, head, config.hair)
    field, _ = build_field(photo.rgb, analysis.person_mask, head, hair, build_head(head, hair, config.geometry),
                           config.appearance)
    prompt = ", ".join(p for p in (str(rng.choice(v)) for v in PROMPTS.values()) if p) if k else ""
    if prompt:
        field = EmbeddedEditor().edit(field, prompt, seed=k).field
    light = str(rng.choice(LIGHTS)) if k else "original"
    yaw = float(rng.choice((30.0, 45.0, 45.0, 60.0)))
    views, _ = render_views(field, turntable_poses(frames, yaw), size, Lighting(light).to_sh(field.photo_light))
    return views, {"base": base.stem, "k": k, "prompt": prompt, "light": light, "yaw": yaw}


def old_reconstructions(photos: list[Path], out: Path, frames: int, size: int, folder: str = "old") -> None:
    """Turntables of the previous reconstruction, made by its own code checked out from git history into
    ``out/old-code``, saved as ``out/<folder>/<photo>.npz``."""
    worktree = out / "old-code"
    if not worktree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(worktree), OLD_COMMIT],
                       check=True, capture_output=True)
    todo = [p for p in photos if not (out / folder / f"{p.stem}.npz").exists()]
    if not todo:
        return
    (out / folder).mkdir(parents=True, exist_ok=True)
    script = ("import sys, numpy as np\nfrom face_nerf.pipeline import reconstruct\n"
              "from face_nerf.export import render_views, turntable_poses\n"
              "for photo, target in zip(sys.argv[1::2], sys.argv[2::2]):\n"
              "    try:\n        r = reconstruct(photo)\n    except Exception as e:\n"
              "        print('skipped', photo, e); continue\n"
              f"    v = render_views(r.field, turntable_poses({frames}, 45.0), {size})\n"
              "    np.savez_compressed(target, frames=v[0] if isinstance(v, tuple) else v)\n")
    args = [a for p in todo for a in (str(p), str(out / folder / f"{p.stem}.npz"))]
    subprocess.run([sys.executable, "-c", script, *args], cwd=worktree, check=True)


# --- distortions that need more than one clip ------------------------------------------------------------

def drift(frames: np.ndarray, other: np.ndarray, severity: int) -> np.ndarray:
    """The face becomes another identity's across the turn: a cross-fade growing from 0 at the first frame
    to ``DRIFT_AMOUNT`` at the last (both clips share the poses)."""
    t = len(frames)
    alpha = DRIFT_AMOUNT[severity - 1] * np.linspace(0.0, 1.0, t, dtype=np.float32)[:, None, None, None]
    return np.clip(np.rint(frames * (1 - alpha) + other * alpha), 0, 255).astype(np.uint8)


def janus(frames: np.ndarray, face: np.ndarray, beyond: np.ndarray, severity: int) -> np.ndarray:
    """A second face on the head: each frame's own face, mirrored, shrunk to 60% and pasted where the head
    extends furthest beyond the face."""
    from scipy import ndimage

    out = frames.astype(np.float32)
    for i in range(len(frames)):
        ys, xs = np.nonzero(face[i] > 0.5)
        by, bx = np.nonzero(beyond[i] > 0.5)
        if len(ys) < 20 or len(by) < 20:
            continue
        cy, cx = ys.mean(), xs.mean()
        side = 1.0 if bx.mean() >= cx else -1.0
        ty, tx = by.mean(), np.percentile(bx, 80 if side > 0 else 20)
        zoom = 0.6
        # Where each output pixel reads from in the source frame (mirrored about the face's centre).
        y, x = np.mgrid[0:frames.shape[1], 0:frames.shape[2]].astype(np.float32)
        sy, sx = cy + (y - ty) / zoom, cx - (x - tx) / zoom
        patch = np.stack([ndimage.map_coordinates(out[i, ..., c], [sy, sx], order=1) for c in range(3)], -1)
        weight = ndimage.map_coordinates(face[i], [sy, sx], order=1) * beyond[i] * JANUS_OPACITY[severity - 1]
        out[i] += weight[..., None] * (patch - out[i])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def backdrop(frames: np.ndarray, plate: np.ndarray, yaw: np.ndarray, head: np.ndarray,
             warp: np.ndarray | None = None) -> np.ndarray:
    """The frames over a textured backdrop ``plate`` [H', W', 3] that slides with the turn (a rigid
    parallax, as a real scene shows), or bends by ``warp`` [T, 2, H, W] pixels (a generator's warped background)."""
    from scipy import ndimage

    t, h, w = frames.shape[:3]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty_like(frames)
    head = ndimage.minimum_filter(head, size=(1, 3, 3))  # the rim blends the head with the old backdrop: drop it
    margin = (plate.shape[1] - w) / 2
    for i in range(t):
        sy, sx = y + (plate.shape[0] - h) / 2, x + margin + margin * np.sin(np.radians(yaw[i]))
        if warp is not None:
            sy, sx = sy + warp[i, 0], sx + warp[i, 1]
        back = np.stack([ndimage.map_coordinates(plate[..., c], [sy, sx], order=1, mode="reflect") for c in range(3)], -1)
        out[i] = np.clip(np.rint(back + head[i, ..., None] * (frames[i] - back)), 0, 255).astype(np.uint8)
    return out


def backdrop_plate(photo: Path, size: int) -> np.ndarray:
    """A textured backdrop from a photo: blurred (out of focus, like a scene behind a head), 1.5 frames wide."""
    from PIL import Image, ImageFilter

    image = Image.open(photo).convert("RGB").resize((int(1.5 * size), int(1.2 * size)))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(3)), np.float32)


# --- the whole set --------------------------------------------------------------------------------------

def planned(index: int, count: int, ladder: bool = False) -> list[tuple[str, str, int]]:
    """(family, scope, severity) of the distortions of identity number ``index`` (see ``identity_rungs``)."""
    if ladder:
        return [(f, scope, severity) for f, scope in LADDER_COMBOS for severity in range(1, 6)]
    deal = combos()
    return [(*deal[(index * count + j) % len(deal)], 1 + (index + 2 * j) % 5) for j in range(count)]


def identity_rungs(name: str, index: int, clean: np.ndarray, meta: dict, partner: np.ndarray, plate: np.ndarray,
                   count: int, ladder: bool = False):
    """Yield (rung, frames) of one identity: clean, and ``count`` distortions dealt by ``index`` (or, with
    ``ladder``, every severity of each of ``LADDER_COMBOS``)."""
    from bench.degrade import (BEYOND_FACE, GLOBAL, HEAD, STRETCH, background_colour, clip_region_masks, degrade,
                               head_masks, stretch_mask, warp_field)

    yield Rung(name, "clean", GLOBAL, 0, "No Distortion", "none"), clean
    masks = clip_region_masks(clean)
    background = background_colour(clean)
    masks.update(head_masks(clean, masks["face"], background))
    masks[STRETCH] = stretch_mask(clean)
    yaw = meta["yaw"] * np.sin(2 * np.pi * np.arange(len(clean)) / len(clean))
    for family, scope, severity in planned(index, count, ladder):
        seed = zlib.crc32(f"{name}-{family}-{scope}-{severity}".encode())
        if family == "drift":
            frames = drift(clean, partner, severity)
        elif family == "janus":
            frames = janus(clean, masks["face"], masks[BEYOND_FACE], severity)
        elif family == "bg_warp":
            field = warp_field(clean.shape, severity, np.random.default_rng(seed)) * 2.0
            yield Rung(name, "clean", "textured", 0, "No Distortion", "none"), backdrop(clean, plate, yaw, masks[HEAD])
            frames = backdrop(clean, plate, yaw, masks[HEAD], field)
        else:
            mask = None if scope == GLOBAL else masks[scope]
            frames = degrade(clean, family, severity, mask, seed=seed, background=background)
        yield Rung(name, family, scope, severity, *_labels(family, scope)), frames


def _raw(frames: np.ndarray, models):
    from judge.calibration import RawEvidence
    from judge.evidence import track_and_gather

    track, evidence = track_and_gather(frames, models)
    return RawEvidence.of(evidence, track)


def _work_identity(job) -> str:
    """Worker: one identity's clean clip (stage "clean": rendered once, cached) or its rungs' evidence
    (stage "rungs")."""
    import torch

    from judge.evidence import FaceModels

    torch.set_num_threads(1)
    stage, base, k, index, args, partner_key = job
    data = Path(args.data)
    name = f"{base.stem}-{k:02d}"
    clean_path = data / "clean" / f"{name}.npz"
    try:
        if stage == "clean":
            if not clean_path.exists():
                views, meta = make_identity(base, k, args.frames, args.size)
                np.savez_compressed(clean_path, frames=views, meta=json.dumps(meta))
            return f"{name}: rendered"
        if not clean_path.exists():
            return f"{name}: skipped (no clean clip)"
        keys = [f"{name}-{f}-{sc}-{sv}" for f, sc, sv in planned(index, args.rungs, stage == "ladder")]
        if all((data / "evidence" / f"{key}.npz").exists() for key in keys):
            return f"{name}: cached"
        with np.load(clean_path) as f:
            clean, meta = f["frames"], json.loads(str(f["meta"]))
        partner_path = data / "clean" / f"{partner_key}.npz"
        partner = np.load(partner_path)["frames"] if partner_path.exists() else clean  # (no partner: no drift)
        plate = backdrop_plate(base, args.size)
        models = FaceModels.load()
        for rung, frames in identity_rungs(name, index, clean, meta, partner, plate, args.rungs, stage == "ladder"):
            path = data / "evidence" / f"{rung.key}.npz"
            if not path.exists():
                save_raw(path, _raw(frames, models))
        return f"{name}: ok"
    except Exception as error:  # a base that does not reconstruct is reported, not fatal
        return f"{name}: skipped ({type(error).__name__}: {error})"


def make(args) -> None:
    from multiprocessing import get_context

    data = Path(args.data)
    for sub in ("clean", "evidence", "old"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    photos = bases()[:args.bases or None]
    start = time.perf_counter()
    keys = [(base, k) for k in range(args.per_base) for base in photos]
    # The partner of a drifting identity: the same k of the next base in the same split.
    same_split = lambda b: [p for p in photos if held_out(p.stem) == held_out(b.stem) and p.stem not in EXCLUDED + STYLISED]
    partner = {(b, k): f"{(s := same_split(b))[(s.index(b) + 1) % len(s)].stem}-{k:02d}" for b, k in keys
               if b.stem not in EXCLUDED + STYLISED}
    with get_context("spawn").Pool(args.workers) as pool:
        for stage in ("clean", "rungs", "ladder"):  # every clean clip first, so the drifting ones find their partners
            jobs = [(stage, b, k, i, args, partner.get((b, k))) for i, (b, k) in enumerate(keys)
                    if stage == "clean" or (b.stem not in EXCLUDED + STYLISED and
                                            (stage == "rungs" or (held_out(b.stem) and k < args.ladders)))]
            for i, line in enumerate(pool.imap_unordered(_work_identity, jobs)):
                if i % 20 == 0 or "skipped" in line:
                    print(f"[{time.perf_counter() - start:6.0f} s] {stage} {i + 1}/{len(keys)} {line}", flush=True)
    old_reconstructions(photos, data, args.frames, args.size)
    from judge.evidence import FaceModels

    models = FaceModels.load()
    for path in sorted((data / "clean").glob("*.npz")):  # the stylised bases' identities, clean but not real
        if base_of(path.stem) in STYLISED and not (data / "evidence" / f"{path.stem}-clean-global-0.npz").exists():
            save_raw(data / "evidence" / f"{path.stem}-clean-global-0.npz", _raw(np.load(path)["frames"], models))
    for path in sorted((data / "old").glob("*.npz")):
        if path.stem in EXCLUDED:
            continue
        rung = Rung(f"{path.stem}-old", "old_recon", "global", 4, CATEGORY["old_recon"], "structure")
        target = data / "evidence" / f"{rung.key}.npz"
        if not target.exists():
            save_raw(target, _raw(np.load(path)["frames"], models))
    print(f"data set ready in {time.perf_counter() - start:.0f} s")


def load_samples(data: Path) -> dict[Rung, object]:
    """Every cached clip's rung and evidence (rungs are parsed back from the file names)."""
    out = {}
    for path in sorted((data / "evidence").glob("*.npz")):
        identity, family, scope, severity = _parse(path.stem)
        if base_of(identity) in EXCLUDED:
            continue
        if base_of(identity) in STYLISED:  # a drawing or a statue: clean as an image, not a real face
            if family != "clean":
                continue
            family, severity = "stylised", "4"
        category, breaks = _labels(family, scope)
        out[Rung(identity, family, scope, int(severity), category, breaks)] = load_raw(path)
    return out


def _parse(key: str) -> tuple[str, str, str, str]:
    """Rung.key "<base>-<k>-<family>-<scope>-<severity>" back into its parts (bases and scopes may hold '-')."""
    from bench.degrade import FAMILIES

    head, severity = key.rsplit("-", 1)
    for family in sorted(list(FAMILIES) + list(COMPOUND) + ["clean", "old_recon"], key=len, reverse=True):
        marker = f"-{family}-"
        if marker in head:
            identity, scope = head.split(marker, 1)
            return identity, family, scope, severity
    raise ValueError(f"Cannot parse rung key {key!r}.")


def _labels(family: str, scope: str) -> tuple[str, str]:
    from bench.degrade import FAMILIES, expected_category

    if family == "clean":
        return "No Distortion", "none"
    if family == "stylised":
        return "No Distortion", "style"
    if family in CATEGORY:
        return CATEGORY[family], "structure"
    return expected_category(family, scope), FAMILIES[family].breaks


def base_of(identity: str) -> str:
    """The base photo of an identity name "<base>-<k>" or "<base>-old"."""
    return identity.rsplit("-", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--make", action="store_true")
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--data", default="/tmp/facelab-judge-data")
    parser.add_argument("--per-base", type=int, default=16)
    parser.add_argument("--rungs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--l2", type=float, default=3.0)
    parser.add_argument("--rated", action="store_true", help="with --fit: fit the scores to the rated clips of "
                        "../shared/realworld too (judge_rated.py --loo shows this over-fits; off by default)")
    parser.add_argument("--bases", type=int, default=0, help="use only the first N bases (a quick trial)")
    parser.add_argument("--ladders", type=int, default=1,
                        help="held-out identities per base (k < N) that also get every severity of LADDER_COMBOS")
    args = parser.parse_args()
    if args.make:
        make(args)
    from judge_evaluate import evaluate

    evaluate(Path(args.data), args.fit, args.l2, args.rated)


if __name__ == "__main__":
    main()
