"""Acceptance figures on the example photos: input-view PSNR over the face, landmarker detection rate and
yaw correlation on the turntable, mesh size; and for relighting: the input view under the photo's own
light against the unrelit field, left/right luminance ratios of the 0-degree face under the `left` and
`right` presets with the landmark agreement of the two, and red/blue under `warm` and `cool`.
Usage: python bench/measure_quality.py"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import torch
    import trimesh

    from face_nerf.export import glb_vertex_colours
    from face_nerf.pipeline import ReconstructionConfig, reconstruct, render_outputs, write_outputs
    from face_nerf.quality import face_psnr, track_turntable

    torch.set_num_threads(2)
    config = ReconstructionConfig()
    print(f"{'photo':<16} {'PSNR face dB':>12} {'detected':>9} {'yaw corr':>9} {'mesh faces':>10} {'coloured':>9}")
    lighting_rows = []
    for photo in sorted((ROOT / "assets" / "examples").glob("*.*")):
        recon = reconstruct(photo, config)
        outputs = render_outputs(recon, config)
        with tempfile.TemporaryDirectory() as tmp:
            out = write_outputs(recon, outputs, Path(tmp) / "run", config.fps)
            view = np.asarray(Image.open(out / "input_view.png"))
            mesh = trimesh.load(out / "mesh.glb", force="mesh")
        psnr = face_psnr(view, recon.photo.rgb, recon.analysis.hull_mask())
        tracking = track_turntable(outputs.frames, [p.yaw for p in outputs.poses])
        colours = glb_vertex_colours(out / "mesh.glb")  # None: textured
        coloured = (np.asarray(mesh.visual.to_color().vertex_colors) if colours is None else colours)[:, :3].std() > 10
        print(f"{photo.name:<16} {psnr:>12.2f} {tracking.detection_rate:>9.1%} {tracking.yaw_correlation:>9.3f} "
              f"{len(mesh.faces):>10,} {str(coloured):>9}")
        lighting_rows.append(_lighting_figures(photo, recon, outputs, psnr))
    print(f"\n{'photo':<16} {'PSNR original':>13} {'unrelit':>8} {'L/R left':>9} {'L/R right':>10} "
          f"{'landmarks moved':>15} {'R/B warm':>9} {'R/B cool':>9}")
    for row in lighting_rows:
        print("{:<16} {:>13.2f} {:>8.2f} {:>9.2f} {:>10.2f} {:>15.4f} {:>9.2f} {:>9.2f}".format(*row))


def _lighting_figures(photo, recon, outputs, psnr_original):
    from face_nerf.delight import DelightConfig
    from face_nerf.export import render_input_view
    from face_nerf.field import AppearanceConfig
    from face_nerf.lighting import Lighting
    from face_nerf.pipeline import ReconstructionConfig, reconstruct, relight_outputs
    from face_nerf.quality import face_psnr, measure_face_light

    unrelit = reconstruct(photo, ReconstructionConfig(appearance=AppearanceConfig(delight=DelightConfig(enabled=False))))
    psnr_unrelit = face_psnr(render_input_view(unrelit.field), recon.photo.rgb, recon.analysis.hull_mask())
    seen = {name: measure_face_light(relight_outputs(recon, outputs, Lighting(name)).frames[0])
            for name in ("left", "right", "warm", "cool")}
    moved = np.abs(seen["left"].landmarks[:, :2] - seen["right"].landmarks[:, :2]).mean() / np.ptp(seen["left"].landmarks[:, 1])
    return (photo.name, psnr_original, psnr_unrelit, seen["left"].left_right_ratio, seen["right"].left_right_ratio,
            moved, seen["warm"].red_blue_ratio, seen["cool"].red_blue_ratio)


if __name__ == "__main__":
    main()
