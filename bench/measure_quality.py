"""Acceptance figures on the example photos: input-view PSNR over the face, landmarker detection rate and
yaw correlation on the turntable, mesh size. Usage: python bench/measure_quality.py"""

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

    from face_nerf.pipeline import ReconstructionConfig, reconstruct, render_outputs, write_outputs
    from face_nerf.quality import face_psnr, track_turntable

    torch.set_num_threads(2)
    config = ReconstructionConfig()
    print(f"{'photo':<16} {'PSNR face dB':>12} {'detected':>9} {'yaw corr':>9} {'mesh faces':>10} {'coloured':>9}")
    for photo in sorted((ROOT / "assets" / "examples").glob("*.*")):
        recon = reconstruct(photo, config)
        outputs = render_outputs(recon, config)
        with tempfile.TemporaryDirectory() as tmp:
            out = write_outputs(recon, outputs, Path(tmp) / "run", config.fps)
            view = np.asarray(Image.open(out / "input_view.png"))
            mesh = trimesh.load(out / "mesh.glb", force="mesh")
        psnr = face_psnr(view, recon.photo.rgb, recon.analysis.hull_mask())
        tracking = track_turntable(outputs.frames, [p.yaw for p in outputs.poses])
        coloured = mesh.visual.vertex_colors[:, :3].std() > 10
        print(f"{photo.name:<16} {psnr:>12.2f} {tracking.detection_rate:>9.1%} {tracking.yaw_correlation:>9.3f} "
              f"{len(mesh.faces):>10,} {str(coloured):>9}")


if __name__ == "__main__":
    main()
