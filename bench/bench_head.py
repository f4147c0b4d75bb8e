"""Acceptance figures for issue 16, "a head, not a mask", and a contact sheet to look at.

Sections (all by default; choose with --only, comma-separated):
  sheet       every shared real-world photo and example photo at yaw -90, -45, 0, 45, 90, 180, one row each
              (a photo that cannot be reconstructed shows its error message): contact_sheet.png, plus
              seconds, hair and warnings per photo.
  background  over a 24-frame full turn at 192 px, the share of the head's pixels (coverage >= 0.5, their
              colour taken out of the blend with the render's grey) that are closer in colour (CIELAB) to the
              photo's background than to the person: nearer a background palette colour (k-means, 8, from
              outside the person mask) than any person palette colour (16, from inside it) by more than
              MARGIN_DE, a clearly visible difference (a tie is not evidence of background). Accept <= 3 % in
              every frame. Also printed: the same test on the photo's own head (what palette overlap alone
              gives; ~0 for a measure that works), and on the back view with its head pixels painted with
              the photo's background pixels (how much of a background the measure can see: ~0 on a black and
              white photo, whose greys the person shares). background_flags.png shows each photo's worst frame
              with the flagged pixels.
  silhouette  IoU above the chin of our silhouettes against the true ones of t07 (a synthetic head, 32 views
              11.25 degrees apart) at yaw 0, +-45, +-90, reconstructed from its frontal frame and aligned on
              the frontal views: silhouette_overlay.png. Accept a mean of the four side views >= 0.85.
  landmarks   on the examples' 48-frame +-60 degree turntable at 256 px: landmarker detection rate (>= 95 %)
              and yaw correlation (>= 0.95).
  psnr        on the examples: input-view PSNR over the face (>= 30 dB).
  speed       reconstruct + 48-frame turntable at 256 px: warm, in this process (<= 5 s); first run ever, in a
              fresh process with an empty head-model cache ($FACELAB_CACHE) (<= 30 s); peak RSS of a child
              process doing it warm (<= 1.5 GB).

The shared photos are read in place from ../shared/realworld and never copied; images go to out/bench_head.
Usage: python bench/bench_head.py [--only sheet,background,silhouette,landmarks,psnr,speed] [--out DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REALWORLD = ROOT.parent / "shared" / "realworld"
EXAMPLES = ROOT / "assets" / "examples"
T07 = REALWORLD / "turntables" / "t07_facelift_synthetic_head_32views_360.mp4"
SECTIONS = ("sheet", "background", "silhouette", "landmarks", "psnr", "speed")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")

SHEET_YAWS = (-90.0, -45.0, 0.0, 45.0, 90.0, 180.0)
SHEET_CELL = 160  # px per view on the contact sheet
TURN_FRAMES, TURN_SIZE = 24, 192  # background: full turn
HEAD_DIFF = 8  # a rendered pixel is head when a channel differs from the background grey by more than this
HEAD_COVERAGE = 0.5  # background measure: a pixel is the head's when the head covers at least this much of it
BACKGROUND_K, PERSON_K, PALETTE_SAMPLES, SEED = 8, 16, 20_000, 0
MARGIN_DE = 5.0  # CIELAB distance by which a colour must be nearer the background palette to count
T07_FRONTAL, T07_STEP = 25, 11.25  # frame index of the frontal view, degrees between frames
SILHOUETTE_YAWS = (-90.0, -45.0, 0.0, 45.0, 90.0)
NEAR_WHITE = 16  # a t07 pixel is head/body when a channel is more than this below white
SPEED_FRAMES, SPEED_YAW, SPEED_SIZE = 48, 45.0, 256


@dataclass
class PhotoRun:
    """One photo through the reconstruction: what the sheet and the background section need."""

    path: Path
    seconds: float = 0.0
    error: str | None = None  # the FaceLabError message, or "<Type>: message" of an unexpected exception
    hair: bool = False
    warnings: int = 0
    views: np.ndarray | None = None  # [6, S, S, 3] uint8 at SHEET_YAWS
    yaws: list[float] = field(default_factory=list)  # [TURN_FRAMES] of the full turn
    background: BackgroundMeasure | str | None = None  # the measure, or why there is none
    worst_frame: np.ndarray | None = None  # [S, S, 3] the frame with the most background colour


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections (default: all)")
    parser.add_argument("--out", default=str(ROOT / "out" / "bench_head"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=("warm", "cold"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # the photos' warnings are counted from Reconstruction.warnings
    if args.child:
        print(json.dumps(_child_run()))
        return
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    if unknown := sorted(set(sections) - set(SECTIONS)):
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if {"sheet", "background"} & set(sections):
        runs = [_run_photo(path, sections) for path in _photos()]
        if "sheet" in sections:
            _guarded("sheet", _print_sheet, runs, out / "contact_sheet.png")
        if "background" in sections:
            _guarded("background", _print_background, runs, out / "background_flags.png")
    if "silhouette" in sections:
        _guarded("silhouette", _print_silhouettes, out / "silhouette_overlay.png")
    if {"landmarks", "psnr"} & set(sections):
        _guarded("landmarks/psnr", _print_examples, sections)
    if "speed" in sections:
        _guarded("speed", _print_speed, args.threads)


def _guarded(name: str, section, *args) -> None:
    """Run one section; a failure is printed with its traceback and the next section runs."""
    try:
        section(*args)
    except Exception:  # a bench reports every section it can
        print(f"\n{name} section failed:\n{traceback.format_exc()}", flush=True)


def _photos() -> list[Path]:
    shared = REALWORLD / "photos"
    if not shared.is_dir():
        print(f"note: {shared} not found; only the example photos are used")
    found = sorted(p for p in shared.glob("*") if p.suffix.lower() in PHOTO_SUFFIXES) if shared.is_dir() else []
    return found + sorted(p for p in EXAMPLES.glob("*") if p.suffix.lower() in PHOTO_SUFFIXES)


def _reconstruct(path: Path):
    """(Reconstruction or None, seconds, error message or None); a failure never stops the bench."""
    from face_nerf.errors import FaceLabError
    from face_nerf.pipeline import ReconstructionConfig, reconstruct

    start = time.perf_counter()
    try:
        return reconstruct(path, ReconstructionConfig()), time.perf_counter() - start, None
    except FaceLabError as error:
        return None, time.perf_counter() - start, str(error)
    except Exception as error:  # a bug, not a bad photo: reported on the sheet and the figures, never raised
        return None, time.perf_counter() - start, f"{type(error).__name__}: {error}"


def _run_photo(path: Path, sections: list[str]) -> PhotoRun:
    recon, seconds, error = _reconstruct(path)
    run = PhotoRun(path, seconds, error)
    if recon is not None:
        run.hair, run.warnings = bool(recon.hair.present), len(recon.warnings)
        _render_photo(run, recon, sections)
    print(f"  {path.name}: {seconds:.1f} s" + (f", {run.error}" if run.error else ""), flush=True)
    return run


def _render_photo(run: PhotoRun, recon, sections: list[str]) -> None:
    """Fill in the sheet's views and, with the background section, the full turn's measure."""
    from face_nerf.export import TurntableFrame, render_views, turntable_poses
    from face_nerf.landmarks import CHIN

    try:
        if "background" in sections:  # the full turn at 15 degree steps holds every sheet yaw
            poses = turntable_poses(TURN_FRAMES, 180.0)
            frames, transfer = render_views(recon.field, poses, TURN_SIZE)
            run.yaws = [p.yaw for p in poses]
            run.background = measure_background(frames, transfer.alpha[..., 0].numpy(), recon.photo.rgb,
                                                recon.analysis.person_mask, recon.analysis.landmarks[CHIN, 1])
            if isinstance(run.background, BackgroundMeasure):
                run.worst_frame = frames[int(run.background.shares.argmax())]
            pick = [run.yaws.index(yaw) for yaw in SHEET_YAWS]
            run.views = np.stack([np.asarray(Image.fromarray(frames[i]).resize((SHEET_CELL,) * 2, Image.LANCZOS))
                                  for i in pick])
        else:
            run.views, _ = render_views(recon.field, [TurntableFrame(y, 0.0) for y in SHEET_YAWS], SHEET_CELL)
    except Exception as error:  # keep the photo's row; say what broke
        run.error = f"rendering failed, {type(error).__name__}: {error}"


# --- contact sheet --------------------------------------------------------------------------------------

def _print_sheet(runs: list[PhotoRun], path: Path) -> None:
    draw_contact_sheet(runs).save(path)
    print(f"\ncontact sheet: {path}")
    print(f"{'photo':<44} {'seconds':>7} {'hair':>5} {'warnings':>8}  error")
    for run in runs:
        if run.error:
            print(f"{run.path.name:<44} {run.seconds:>7.1f} {'':>5} {'':>8}  {run.error}")
        else:
            print(f"{run.path.name:<44} {run.seconds:>7.1f} {str(run.hair):>5} {run.warnings:>8}")


def draw_contact_sheet(runs: list[PhotoRun]) -> Image.Image:
    """One row per photo: the photo, then the views at SHEET_YAWS, or the error message; a name band above."""
    cell, band, font = SHEET_CELL, 16, ImageFont.load_default(size=12)
    columns = 1 + len(SHEET_YAWS)
    sheet = Image.new("RGB", (columns * cell, band + len(runs) * (band + cell)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, yaw in enumerate(SHEET_YAWS, start=1):
        draw.text((c * cell + 4, 2), f"yaw {yaw:+.0f}", fill="black", font=font)
    for r, run in enumerate(runs):
        top = band + r * (band + cell)
        facts = f"{run.seconds:.1f} s" + (f", hair {run.hair}, {run.warnings} warnings" if not run.error else "")
        draw.text((4, top + 2), f"{run.path.name}   {facts}", fill="black", font=font)
        photo = _thumbnail(run.path, cell)
        sheet.paste(photo, ((cell - photo.width) // 2, top + band + (cell - photo.height) // 2))
        if run.views is not None:
            for c, view in enumerate(run.views, start=1):
                sheet.paste(Image.fromarray(view), (c * cell, top + band))
        if run.error:
            lines = textwrap.wrap(run.error, width=130)[:9]
            draw.multiline_text((cell + 8, top + band + 8), "\n".join(lines), fill=(170, 0, 0), font=font)
    return sheet


def _thumbnail(path: Path, cell: int) -> Image.Image:
    try:
        with Image.open(path) as image:
            photo = ImageOps.exif_transpose(image).convert("RGB")
    except OSError:  # unreadable: its row already says why
        return Image.new("RGB", (cell, cell), (200, 200, 200))
    photo.thumbnail((cell, cell))
    return photo


# --- background on the head -----------------------------------------------------------------------------

@dataclass(frozen=True)
class BackgroundMeasure:
    """How much of the rendered head takes the photo's background colours.

    Attributes:
        shares: [N] per frame, share of the head's pixels closer to the background (the acceptance figure).
        photo_floor: the same test on the photo's own head (person mask > 0.5 above the chin landmark).
        painted: the same test on the back view with its head pixels painted with the photo's background
            pixels: the measure's power to see a background on this photo (1 = all of it).
        worst_flags: [S, S] bool, the flagged pixels of the worst frame.
    """

    shares: np.ndarray
    photo_floor: float
    painted: float
    worst_flags: np.ndarray


def measure_background(frames: np.ndarray, alpha: np.ndarray, photo_rgb: np.ndarray, person_mask: np.ndarray,
                       chin_row: float) -> BackgroundMeasure | str:
    """Background colours on the rendered head, per frame.

    Args:
        frames: [N, S, S, 3] uint8 renders over the export BACKGROUND.
        alpha: [N, S, S] the head's coverage of each pixel.
        photo_rgb: [H, W, 3] uint8 photo.
        person_mask: [H, W] in [0, 1]; background palette from below 0.2, person palette from above 0.8.
        chin_row: the chin's row in the photo (for the photo floor).

    Returns:
        The measure, or why there is none (too few background or person pixels for a palette).
    """
    from skimage.color import rgb2lab

    rng = np.random.default_rng(SEED)
    lab = rgb2lab(photo_rgb)
    background = palette(lab[person_mask < 0.2], BACKGROUND_K, rng)
    person = palette(lab[person_mask > 0.8], PERSON_K, rng)
    if background is None or person is None:
        return "too few background or person pixels in the photo for palettes"

    def flagged(colours):  # [P, 3] Lab -> [P] bool, nearer a background colour by more than the margin
        d_bg = np.linalg.norm(colours[:, None] - background[None], axis=-1).min(1)
        return d_bg + MARGIN_DE < np.linalg.norm(colours[:, None] - person[None], axis=-1).min(1)

    shares, flags = [], []
    for frame, cover in zip(frames, alpha):
        head = cover >= HEAD_COVERAGE
        flag = np.zeros_like(head)
        flag[head] = flagged(rgb2lab(_head_colours(frame[head], cover[head])[None])[0])
        shares.append(flag[head].mean() if head.any() else 0.0)
        flags.append(flag)
    own_head = (person_mask > 0.5) & (np.arange(person_mask.shape[0])[:, None] < chin_row)
    floor = float(flagged(lab[own_head]).mean()) if own_head.any() else float("nan")
    back = alpha[len(alpha) // 2] >= HEAD_COVERAGE
    pixels = photo_rgb[person_mask < 0.2]
    painted = float(flagged(rgb2lab(pixels[rng.choice(len(pixels), int(back.sum()))][None])[0]).mean()) if back.any() else 0.0
    return BackgroundMeasure(np.array(shares), floor, painted, flags[int(np.argmax(shares))])


def _head_colours(rgb: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """[P, 3] uint8 pixels composited over the render's grey with coverage [P] -> the head's own colours
    [P, 3] in [0, 1] (compositing is in linear light, as ``LightTransfer.shade`` does it)."""
    import torch

    from face_nerf.export import BACKGROUND
    from face_nerf.lighting import linear_to_srgb, srgb_to_linear

    linear = srgb_to_linear(torch.from_numpy(rgb.astype(np.float32) / 255.0))
    grey = srgb_to_linear(torch.tensor(BACKGROUND))
    cover = torch.from_numpy(cover.astype(np.float32))[:, None]
    head = ((linear - (1.0 - cover) * grey) / cover).clamp(0.0, 1.0)
    return linear_to_srgb(head).numpy().astype(np.float64)


def palette(pixels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray | None:
    """[k, 3] k-means centres of a random subsample of [P, 3] colours; None for fewer than 10 k pixels."""
    from scipy.cluster.vq import kmeans2

    if len(pixels) < 10 * k:
        return None
    sample = pixels[rng.choice(len(pixels), min(PALETTE_SAMPLES, len(pixels)), replace=False)]
    centres, _ = kmeans2(sample, k, minit="++", rng=rng)
    return centres


def _print_background(runs: list[PhotoRun], path: Path) -> None:
    print(f"\nbackground colours on the head, {TURN_FRAMES}-frame full turn at {TURN_SIZE} px (accept <= 3 % every "
          f"frame); the same test on the photo's own head (floor), and on a back view painted with the photo's "
          f"background (power)")
    print(f"{'photo':<44} {'worst':>7} {'at yaw':>7} {'mean':>7} {'pass':>5} | {'photo floor':>11} {'power':>7}")
    worst = None
    for run in runs:
        m = run.background
        if not isinstance(m, BackgroundMeasure):
            print(f"{run.path.name:<44} {'-':>7} {'-':>7} {'-':>7} {'-':>5} | {m or run.error or 'not measured'}")
            continue
        i = int(m.shares.argmax())
        print(f"{run.path.name:<44} {m.shares[i]:>7.2%} {run.yaws[i]:>7.0f} {m.shares.mean():>7.2%} "
              f"{str(m.shares[i] <= 0.03):>5} | {m.photo_floor:>11.2%} {m.painted:>7.0%}")
        if worst is None or m.shares[i] > worst[0]:
            worst = (m.shares[i], run.yaws[i], run.path.name)
    if worst:
        print(f"overall worst: {worst[0]:.2%} at yaw {worst[1]:.0f} on {worst[2]}")
    measured = [r for r in runs if isinstance(r.background, BackgroundMeasure)]
    if measured:
        draw_background_flags(measured).save(path)
        print(f"worst frames, background-coloured pixels in magenta: {path}")


def draw_background_flags(runs: list[PhotoRun], per_row: int = 3) -> Image.Image:
    """Per photo, its worst frame and the same with the flagged pixels magenta, ``per_row`` photos a row."""
    cell, band, font = TURN_SIZE, 16, ImageFont.load_default(size=12)
    rows = (len(runs) + per_row - 1) // per_row
    image = Image.new("RGB", (2 * cell * per_row, rows * (band + cell)), "white")
    draw = ImageDraw.Draw(image)
    for k, run in enumerate(runs):
        x, y = (k % per_row) * 2 * cell, (k // per_row) * (band + cell)
        i = int(run.background.shares.argmax())
        marked = run.worst_frame.copy()
        marked[run.background.worst_flags] = (255, 0, 255)
        image.paste(Image.fromarray(np.concatenate([run.worst_frame, marked], 1)), (x, y + band))
        draw.text((x + 4, y + 2), f"{run.path.name[:34]} yaw {run.yaws[i]:+.0f}: {run.background.shares[i]:.1%}",
                  fill="black", font=font)
    return image


# --- silhouettes against t07 ----------------------------------------------------------------------------

def _print_silhouettes(path: Path) -> None:
    from judge.frames import load_clip
    from face_nerf.export import BACKGROUND, TurntableFrame, render_views
    from face_nerf.landmarks import CHIN, MIDLINE, detect_landmarks, nose_yaw_proxy

    print(f"\nsilhouettes against {T07.name} (IoU above the true chin; accept mean of the side views >= 0.85)")
    if not T07.is_file():
        print(f"  {T07} not found; skipped")
        return
    clip = load_clip(T07, max_frames=64, max_side=None).frames  # [32, H, W, 3]
    proxies = {}
    for i in range(T07_FRONTAL - 2, T07_FRONTAL + 3):
        faces = detect_landmarks(clip[i], max_faces=1)
        proxies[i] = nose_yaw_proxy(faces[0]) if faces else float("nan")
    print("  frontality (nose yaw proxy, 0 = frontal): " + ", ".join(f"frame {i}: {v:+.3f}" for i, v in proxies.items()))
    print(f"  most frontal by the proxy: frame {min(proxies, key=lambda i: abs(proxies[i]))}; "
          f"frame {T07_FRONTAL} is used")
    with tempfile.TemporaryDirectory() as tmp:
        frontal_png = Path(tmp) / "t07_frontal.png"
        Image.fromarray(clip[T07_FRONTAL]).save(frontal_png)
        recon, seconds, error = _reconstruct(frontal_png)
    if recon is None:
        print(f"  reconstruction failed: {error}")
        return
    size = clip.shape[1]
    ours, _ = render_views(recon.field, [TurntableFrame(y, 0.0) for y in SILHOUETTE_YAWS], size)
    truth = (255 - clip.astype(np.int16)).max(-1) > NEAR_WHITE  # [32, H, W]
    mine = np.abs(ours.astype(np.float64) - np.round(np.asarray(BACKGROUND) * 255)).max(-1) > HEAD_DIFF
    front = SILHOUETTE_YAWS.index(0.0)
    true_faces, our_faces = detect_landmarks(clip[T07_FRONTAL], 1), detect_landmarks(ours[front], 1)
    if not true_faces or not our_faces:
        print(f"  no landmarks on the {'true' if not true_faces else 'rendered'} frontal view; no alignment")
        return
    anchors = [(_top_row(m), f[CHIN, 1], f[list(MIDLINE), 0].mean())
               for m, f in ((truth[T07_FRONTAL], true_faces[0]), (mine[front], our_faces[0]))]
    (top_t, chin_t, x_t), (top_o, chin_o, x_o) = anchors
    scale = (chin_t - top_t) / (chin_o - top_o)
    warp = lambda image, fill: _similarity_warp(image, scale, (x_o, top_o), (x_t, top_t), truth.shape[1:], fill)
    aligned = np.stack([warp(m, False) for m in mine])
    chin = int(round(chin_t))
    iou = lambda a, b: float((a[:chin] & b[:chin]).sum() / max((a[:chin] | b[:chin]).sum(), 1))
    print(f"  reconstructed frame {T07_FRONTAL} in {seconds:.1f} s; our frontal maps to the true one by scale "
          f"{scale:.3f} (head top row {top_t}, chin row {chin_t:.0f}, centre x {x_t:.0f})")
    table = {}
    for sign in (+1, -1):  # our +yaw shown by clip frame 25 + sign * yaw / 11.25
        table[sign] = {yaw: (T07_FRONTAL + sign * int(round(yaw / T07_STEP))) % len(clip) for yaw in SILHOUETTE_YAWS}
    scores = {sign: {yaw: iou(aligned[j], truth[table[sign][yaw]]) for j, yaw in enumerate(SILHOUETTE_YAWS)}
              for sign in table}
    side = {sign: np.mean([v for yaw, v in scores[sign].items() if yaw != 0.0]) for sign in scores}
    best = max(side, key=side.get)
    print(f"  both directions compared: our +yaw shown by clip frame {T07_FRONTAL} + yaw/{T07_STEP} gives a side "
          f"mean of {side[1]:.3f}, by {T07_FRONTAL} - yaw/{T07_STEP} {side[-1]:.3f}; using {'+' if best > 0 else '-'}")
    for yaw in SILHOUETTE_YAWS:
        print(f"  yaw {yaw:+4.0f}  clip frame {table[best][yaw]:>2}  IoU {scores[best][yaw]:.3f}")
    print(f"  mean of the four side views: {side[best]:.3f}  pass {side[best] >= 0.85}")
    rgb = np.stack([warp(v, np.round(np.asarray(BACKGROUND) * 255)) for v in ours]).astype(np.uint8)
    shown = [table[best][yaw] for yaw in SILHOUETTE_YAWS]
    labels = [f"yaw {yaw:+.0f} / frame {shown[j]}: IoU {scores[best][yaw]:.3f}" for j, yaw in enumerate(SILHOUETTE_YAWS)]
    _silhouette_overlay(clip[shown], rgb, truth[shown], aligned, chin, labels).save(path)
    print(f"  overlay: {path}")


def _top_row(mask: np.ndarray) -> int:
    rows = np.nonzero(mask.any(1))[0]
    return int(rows[0]) if len(rows) else 0


def _similarity_warp(image: np.ndarray, scale: float, source: tuple[float, float], target: tuple[float, float],
                     shape: tuple[int, int], fill) -> np.ndarray:
    """``image`` scaled by ``scale`` about ``source`` (x, y), moved onto ``target``, on an ``shape`` canvas
    (nearest pixel; ``fill`` outside)."""
    ys, xs = np.mgrid[:shape[0], :shape[1]]
    sx = np.round((xs - target[0]) / scale + source[0]).astype(int)
    sy = np.round((ys - target[1]) / scale + source[1]).astype(int)
    inside = (sx >= 0) & (sx < image.shape[1]) & (sy >= 0) & (sy < image.shape[0])
    out = np.empty(shape + image.shape[2:], image.dtype)
    out[...] = fill
    out[inside] = image[sy[inside], sx[inside]]
    return out


def _silhouette_overlay(truth_rgb, ours_rgb, truth, ours, chin: int, labels: list[str], cell: int = 256) -> Image.Image:
    """Rows: t07 frames, our aligned renders, silhouettes (red: true only, blue: ours only, grey: both;
    green: the chin row, below which nothing is counted); ``labels`` above the columns."""
    overlay = np.full(truth.shape + (3,), 255, np.uint8)
    overlay[truth & ~ours] = (220, 40, 40)
    overlay[ours & ~truth] = (40, 80, 220)
    overlay[truth & ours] = (150, 150, 150)
    overlay[:, chin, :] = (0, 170, 0)
    rows = [np.concatenate(list(images), 1) for images in (truth_rgb, ours_rgb, overlay)]
    image = Image.fromarray(np.concatenate(rows, 0)).resize((cell * truth.shape[0], cell * 3), Image.LANCZOS)
    draw, font = ImageDraw.Draw(image), ImageFont.load_default(size=13)
    for j, label in enumerate(labels):
        draw.text((j * cell + 4, 4), label, fill="black", font=font)
    return image


# --- landmarks and PSNR on the examples -----------------------------------------------------------------

def _print_examples(sections: list[str]) -> None:
    from face_nerf.export import render_input_view, render_views, turntable_poses
    from face_nerf.quality import face_psnr, track_turntable

    print(f"\nexamples: landmarks on a 48-frame +-60 degree turntable at 256 px (accept >= 95 %, >= 0.95); "
          "input-view PSNR over the face (accept >= 30 dB)")
    print(f"{'photo':<20} {'detected':>9} {'yaw corr':>9} {'PSNR dB':>8}")
    for name in ("astronaut.png", "grace_hopper.jpg"):
        recon, _, error = _reconstruct(EXAMPLES / name)
        if recon is None:
            print(f"{name:<20} {error}")
            continue
        detected = correlation = psnr = float("nan")
        if "landmarks" in sections:
            poses = turntable_poses(48, 60.0)
            frames, _ = render_views(recon.field, poses, 256)
            tracking = track_turntable(frames, [p.yaw for p in poses])
            detected, correlation = tracking.detection_rate, tracking.yaw_correlation
        if "psnr" in sections:
            psnr = face_psnr(render_input_view(recon.field), recon.photo.rgb, recon.analysis.hull_mask())
        figure = lambda value, spec: "-" if np.isnan(value) else format(value, spec)  # "-": section not chosen
        print(f"{name:<20} {figure(detected, '.1%'):>9} {figure(correlation, '.3f'):>9} {figure(psnr, '.2f'):>8}")


# --- speed and memory -----------------------------------------------------------------------------------

def _reconstruct_and_turn(photo: Path) -> float:
    """Seconds for reconstruct + the SPEED_FRAMES-frame turntable at SPEED_SIZE px."""
    from face_nerf.export import render_views, turntable_poses
    from face_nerf.pipeline import ReconstructionConfig, reconstruct

    start = time.perf_counter()
    recon = reconstruct(photo, ReconstructionConfig())
    render_views(recon.field, turntable_poses(SPEED_FRAMES, SPEED_YAW), SPEED_SIZE)
    return time.perf_counter() - start


def _child_run() -> dict:
    """What a --child process reports: its reconstruct + turntable seconds and its own peak RSS."""
    seconds = _reconstruct_and_turn(EXAMPLES / "astronaut.png")
    return {"seconds": seconds, "self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(mode: str, threads: int, env: dict | None = None) -> tuple[dict | None, float, str]:
    """Run this script as a --child; (its report or None, wall seconds including imports, error text)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", mode, "--threads", str(threads)],
                          capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return None, wall, (done.stderr.strip().splitlines() or ["no output"])[-1]
    return json.loads(done.stdout.strip().splitlines()[-1]), wall, ""


def _print_speed(threads: int) -> None:
    from face_nerf.head.cache import default_cache_dir

    astronaut = EXAMPLES / "astronaut.png"
    print(f"\nspeed: reconstruct({astronaut.name}) + {SPEED_FRAMES}-frame +-{SPEED_YAW:.0f} degree turntable "
          f"at {SPEED_SIZE} px, {threads} threads")
    _reconstruct_and_turn(astronaut)  # warm-up: caches read, models loaded
    times = [_reconstruct_and_turn(astronaut) for _ in range(3)]
    print(f"  warm, in process: {', '.join(f'{t:.2f}' for t in times)} s; median {np.median(times):.2f} s "
          f"(budget 5 s) pass {np.median(times) <= 5.0}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report, wall, error = _child("warm", threads)  # the head model cache is warm: this process filled it
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if report is None:
        print(f"  warm child failed: {error}")
    else:
        own = "" if after > before else " (an earlier child was larger; see the child's own figure)"
        print(f"  peak RSS of a warm child (RUSAGE_CHILDREN): {after / 1024:.0f} MB{own}; the child's own "
              f"{report['self_peak_rss_mb']:.0f} MB (budget 1536 MB) pass {report['self_peak_rss_mb'] <= 1536}; "
              f"its reconstruct + turntable {report['seconds']:.2f} s")
    with tempfile.TemporaryDirectory(prefix="facelab_cold_cache_") as cache:
        env = dict(os.environ, FACELAB_CACHE=cache)
        report, wall, error = _child("cold", threads, env)
        built = sorted(p.name for p in Path(cache).iterdir())
    if report is None:
        print(f"  cold child failed: {error}")
        return
    print(f"  first run, empty FACELAB_CACHE (default here: {default_cache_dir()}): reconstruct + turntable "
          f"{report['seconds']:.2f} s, process wall {wall:.2f} s with imports (budget 30 s) pass {report['seconds'] <= 30.0}")
    print(f"  the cold child built in its cache: {', '.join(built) or 'nothing (the variable was not used!)'}")


if __name__ == "__main__":
    main()
