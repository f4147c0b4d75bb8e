"""Command line: python -m face_nerf reconstruct PHOTO --out DIR [--frames N] [--size PX] [--yaw DEG]
[--lighting PRESET | --light "azimuth=40,elevation=20,color=#ffd8a8,intensity=1.2,ambient=0.3"];
python -m face_nerf batch PHOTOS... --out DIR [--workers N | --ray [ADDRESS]] [--resume]."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from face_nerf.errors import FaceLabError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m face_nerf", description="Single-photo 3D face radiance fields.")
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("reconstruct", help="photo -> turntable.mp4, views.png, input_view.png, mesh.glb, field, report")
    rec.add_argument("photo", help="face photo (JPEG, PNG, WebP, ...)")
    rec.add_argument("--out", required=True, help="output folder: new, empty, or an earlier output of this command "
                     "(replaced atomically); a folder holding other files is refused")
    rec.add_argument("--frames", type=int, default=48, help="turntable frames (default 48)")
    rec.add_argument("--size", type=int, default=256, help="turntable and strip view size in pixels (default 256)")
    rec.add_argument("--yaw", type=float, default=45.0, help="turntable sweeps between -yaw and +yaw degrees (default 45); 180 is a full turn that shows the back")
    rec.add_argument("--fps", type=int, default=24, help="turntable frame rate (default 24)")
    rec.add_argument("--prompt", default="", metavar="TEXT",
                     help='text edit applied before lighting, e.g. "older, grey beard, blue eyes" or "marble statue"')
    rec.add_argument("--editor", choices=("embedded", "diffusion"), default="embedded",
                     help="embedded (offline, CPU, seconds; default) or diffusion (Stable Diffusion score distillation; "
                          "needs a GPU and --sd-model)")
    rec.add_argument("--sd-model", metavar="PATH_OR_HUB_ID",
                     help="Stable Diffusion checkpoint for --editor diffusion (or $FACELAB_SD_MODEL)")
    rec.add_argument("--sd-steps", type=int, default=300, help="score distillation steps (default 300)")
    rec.add_argument("--lighting", default="original", metavar="PRESET",
                     help="lighting preset: original (the photo's own light, default), " + ", ".join(_preset_names()[1:]))
    rec.add_argument("--light", metavar="SPEC", help='custom light instead of a preset, e.g. '
                     '"azimuth=40,elevation=20,color=#ffd8a8,intensity=1.2,ambient=0.3" (azimuth 0 = from the camera, '
                     'positive toward the viewer\'s right; degrees)')
    rec.add_argument("--light-fixed-to", choices=("world", "camera"), default="world",
                     help="the light stays put as the head turns (world, default) or turns with the camera")
    rec.add_argument("--mesh-lighting", action="store_true", help="bake the lighting into the mesh colours (default: albedo)")
    rec.add_argument("--quiet", action="store_true", help="no progress bar")
    _batch_parser(commands)
    return parser


def _batch_parser(commands) -> None:
    from face_nerf.batch import RAY_HELP, add_runner_arguments

    batch = commands.add_parser("batch", help="many photos -> each one's outputs, reconstructions.parquet and "
                                "report.html", description="Reconstruct many photos: each one's outputs under "
                                "outputs/, one row per photo in reconstructions.parquet and .jsonl, and report.html. "
                                "A photo that fails is a row with its error.", epilog=RAY_HELP)
    batch.add_argument("inputs", nargs="+", metavar="PHOTOS", help="a folder (searched recursively for photos), a "
                       "glob, a manifest (.csv, .tsv or .jsonl with a 'photo' column) or a photo")
    add_runner_arguments(batch, "photo")
    batch.add_argument("--frames", type=int, default=48, help="turntable frames (default 48)")
    batch.add_argument("--size", type=int, default=256, help="turntable size in pixels (default 256)")
    batch.add_argument("--yaw", type=float, default=45.0, help="turntable sweep in degrees either side (default 45)")
    batch.add_argument("--prompt", default="", metavar="TEXT", help="the same text edit for every photo")
    batch.add_argument("--lighting", default="original", metavar="PRESET", help="lighting preset (default original)")


# The lighting presets' names, for --help without importing torch (tests hold it equal to lighting.PRESETS).
PRESET_NAMES = ("original", "flat", "studio", "left", "right", "top", "rim", "dramatic", "warm", "cool", "sunset")


def _preset_names() -> list[str]:
    return list(PRESET_NAMES)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "batch":
        return _batch(args)
    from tqdm import tqdm

    from face_nerf.edit import EmbeddedEditor
    from face_nerf.lighting import CustomLight, Lighting
    from face_nerf.output_folder import check_output_folder
    from face_nerf.pipeline import (TOOL, ReconstructionConfig, edit_reconstruction, reconstruct, render_outputs,
                                    set_cpu_threads, write_outputs)

    set_cpu_threads()
    inputs = _input_paths(args)
    try:
        check_output_folder(args.out, TOOL, inputs)  # a bad --out fails now, not after the run
        custom = CustomLight.parse(args.light) if args.light else None
        lighting = Lighting(args.lighting, custom, args.light_fixed_to)
        config = ReconstructionConfig(frames=args.frames, size=args.size, yaw=args.yaw, fps=args.fps,
                                      lighting=lighting, mesh_lighting=args.mesh_lighting)
        if args.editor == "diffusion":
            from face_nerf.edit.diffusion import DiffusionEditor, SDSConfig

            editor = DiffusionEditor(args.sd_model, SDSConfig(steps=args.sd_steps))  # refuses without a GPU or model
        else:
            editor = EmbeddedEditor()
            editor.parse(args.prompt)  # a prompt that cannot be read fails before any work
        with tqdm(total=config.frames + 3, desc="reconstruct", unit="step", disable=args.quiet) as bar:
            recon = edit_reconstruction(reconstruct(args.photo, config), args.prompt, editor)
            bar.update(1)
            bar.set_description("turntable")
            outputs = render_outputs(recon, config, progress=bar.update)
            bar.update(1)
            bar.set_description("writing")
            out = write_outputs(recon, outputs, args.out, config.fps, inputs)
            bar.update(1)
    except FaceLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for warning in recon.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if recon.edit is not None and recon.edit.applied:
        print(recon.edit.summary())
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in outputs.report["timings_s"].items())
    print(f"wrote {out} ({timings})")
    return 0


def _batch(args: argparse.Namespace) -> int:
    from face_nerf.batch import print_summary, run_from_arguments
    from face_nerf.batch_reconstruct import PHOTO_SUFFIXES, ReconstructTask, write_report

    task = ReconstructTask(args.frames, args.size, args.yaw, args.prompt, args.lighting)
    try:
        task.config()  # bad settings fail now, not once per photo
        task.load()  # and so does a prompt that cannot be read
        summary = run_from_arguments(task, args, PHOTO_SUFFIXES, "reconstructing")
    except FaceLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print_summary(summary, "photo")
    print(f"wrote {write_report(summary.table.with_suffix('.jsonl'))}")
    return 1 if args.fail_on_error and summary.failed else 0


def _input_paths(args: argparse.Namespace) -> list[str]:
    """The files the run reads, which ``--out`` may not contain: the photo and a local SD model."""
    return [args.photo] + ([args.sd_model] if args.sd_model and Path(args.sd_model).exists() else [])


if __name__ == "__main__":
    sys.exit(main())
