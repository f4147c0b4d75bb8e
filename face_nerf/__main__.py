"""Command line: python -m face_nerf reconstruct PHOTO --out DIR --i-have-consent [--frames N] [--size PX]
[--yaw DEG] [--lighting PRESET | --light "azimuth=40,elevation=20,color=#ffd8a8,intensity=1.2,ambient=0.3"];
python -m face_nerf batch PHOTOS... --out DIR --i-have-consent [--workers N | --ray [ADDRESS]] [--resume];
python -m face_nerf verify FILE...; python -m face_nerf audit [--export FILE]."""

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
    rec.add_argument("--device", default="cpu", help="where to render the turntable, strip and input view: cpu "
                     "(default) or cuda (cuda:N); the photo's analysis and the fit run on the CPU either way")
    rec.add_argument("--quiet", action="store_true", help="no progress bar")
    _consent_argument(rec)
    _batch_parser(commands)
    _verify_parser(commands)
    _audit_parser(commands)
    return parser


def _consent_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--i-have-consent", action="store_true",
                        help="confirm that you have the right to use the photos (they show you, or their people "
                             "agreed); required except for the example photos; or set $FACELAB_I_HAVE_CONSENT=1")


def _verify_parser(commands) -> None:
    verify = commands.add_parser("verify", help="is this file made with FaceLab 3D? (watermark, signed manifest)",
                                 description="Look for FaceLab 3D's invisible watermark and read the file's signed "
                                 "provenance: the C2PA manifest of a PNG, JPEG or MP4, or the signed sidecar "
                                 "(FILE.provenance.json) of a mesh. Exit status: 0 made with FaceLab 3D and every "
                                 "signature verifies, 1 no watermark or manifest found, 3 a manifest fails "
                                 "verification (the file or its manifest was changed).")
    verify.add_argument("files", nargs="+", metavar="FILE", help="image, video or GLB mesh")
    verify.add_argument("--trust", metavar="PEM", help="certificates to trust (default $FACELAB_TRUST_ANCHORS)")
    verify.add_argument("--quick", action="store_true", help="look for the watermark at the likely scales only")
    verify.add_argument("--json", action="store_true", help="print one JSON object per file")


def _audit_parser(commands) -> None:
    audit = commands.add_parser("audit", help="list or export the audit log of creations",
                                description="The audit log: one row per creation (time, event, creation id, the "
                                "photo's SHA-256, prompt, backends, consent, outputs' SHA-256). Rows older than "
                                "$FACELAB_AUDIT_RETENTION_DAYS (default 90) are deleted.")
    audit.add_argument("--db", metavar="PATH", help="the log (default $FACELAB_AUDIT_DB, else audit.sqlite in the "
                       "data folder: $FACELAB_DATA, /data/facelab on a Space, else ./data)")
    audit.add_argument("--id", metavar="CREATION_ID", help="only this creation's rows")
    audit.add_argument("--limit", type=int, default=50, help="rows to list, newest first (default 50; 0: all)")
    audit.add_argument("--export", metavar="FILE", help="write every row to FILE (.csv or .jsonl) instead")


def _batch_parser(commands) -> None:
    from face_nerf.batch import RAY_HELP, add_runner_arguments

    batch = commands.add_parser("batch", help="many photos -> each one's outputs, reconstructions.parquet and "
                                "report.html", description="Reconstruct many photos: each one's outputs under "
                                "outputs/, one row per photo in reconstructions.parquet and .jsonl, and report.html. "
                                "A photo that fails is a row with its error.", epilog=RAY_HELP)
    batch.add_argument("inputs", nargs="+", metavar="PHOTOS", help="a folder (searched recursively for photos), a "
                       "glob, a manifest (.csv, .tsv or .jsonl with a 'photo' column) or a photo")
    add_runner_arguments(batch, "photo")
    _consent_argument(batch)
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
    if args.command in ("batch", "verify", "audit"):
        return {"batch": _batch, "verify": _verify, "audit": _audit}[args.command](args)
    from tqdm import tqdm

    from face_nerf.audit import AuditLog
    from face_nerf.consent import check_consent, consent_from_environment
    from face_nerf.edit import EmbeddedEditor
    from face_nerf.lighting import CustomLight, Lighting
    from face_nerf.output_folder import check_output_folder
    from face_nerf.pipeline import (TOOL, ReconstructionConfig, edit_reconstruction, reconstruct, render_outputs,
                                    set_cpu_threads, write_outputs)
    from face_nerf.provenance import Provenance

    set_cpu_threads()
    inputs = _input_paths(args)
    try:
        consent = check_consent(args.photo, args.i_have_consent or consent_from_environment(), "cli")
        check_output_folder(args.out, TOOL, inputs)  # a bad --out fails now, not after the run
        provenance = Provenance(audit=AuditLog(), consent=consent)
        custom = CustomLight.parse(args.light) if args.light else None
        lighting = Lighting(args.lighting, custom, args.light_fixed_to)
        config = ReconstructionConfig(frames=args.frames, size=args.size, yaw=args.yaw, fps=args.fps,
                                      lighting=lighting, mesh_lighting=args.mesh_lighting,
                                      relightable=False, device=args.device)  # nothing relights it later
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
            out = write_outputs(recon, outputs, args.out, config.fps, inputs, provenance=provenance)
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
    print(f"creation id {recon.creation_id}: watermarked and signed; recorded in the audit log {provenance.audit.path}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    import json

    from face_nerf.provenance import verify_file

    anchors = Path(args.trust).read_bytes() if args.trust else None
    status = 0
    for path in args.files:
        try:
            found = verify_file(path, anchors, thorough=not args.quick)
        except FaceLabError as err:
            print(f"error: {err}", file=sys.stderr)
            status = max(status, 2)
            continue
        print(json.dumps(found.__dict__, default=str) if args.json else "\n".join(found.lines()))
        if found.signature_valid is False:
            status = max(status, 3)
        elif not found.made_with_facelab:
            status = max(status, 1)
    return status


def _audit(args: argparse.Namespace) -> int:
    from face_nerf.audit import AuditLog

    try:
        log = AuditLog(args.db)
        if args.export:
            print(f"wrote {log.export(args.export)} rows to {args.export}")
            return 0
        entries = log.entries(args.id, args.limit or None)
    except FaceLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{log.path}: {len(entries)} row(s) shown, newest first; kept {log.retention:g} days")
    for e in entries:
        edit = f' prompt "{e.prompt}"' if e.prompt else ""
        print(f"{e.when}  {e.event:7s} {e.creation_id}  photo {e.photo_sha256[:16]}  consent {e.consent}{edit}  "
              f"backends {', '.join(f'{k}={v}' for k, v in sorted(e.backends.items()) if v)}  "
              f"outputs {len(e.outputs)}")
    return 0


def _batch(args: argparse.Namespace) -> int:
    from face_nerf.batch import print_summary, run_from_arguments
    from face_nerf.batch_reconstruct import PHOTO_SUFFIXES, ReconstructTask, write_report

    from face_nerf.consent import consent_from_environment

    task = ReconstructTask(args.frames, args.size, args.yaw, args.prompt, args.lighting,
                           args.i_have_consent or consent_from_environment())
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
