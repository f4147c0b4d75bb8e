"""FaceLab 3D web app (minimal): photo -> turntable video, 3D mesh and 3-view strip.

The UI is a thin layer over ``face_nerf``: nothing heavy is loaded at import, ``launch()`` runs only
under ``__main__``. Port: $PORT or $GRADIO_SERVER_PORT, default 7860.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from face_nerf.errors import FaceLabError

EXAMPLES = sorted(str(p) for p in (Path(__file__).parent / "assets" / "examples").glob("*.*"))
MAX_UPLOAD = "30mb"
OUTPUT_TTL_S = 3600  # result folders older than this are removed when a new run starts


@dataclass(frozen=True)
class Services:
    """What the UI calls into; ``generate`` writes a run's outputs into a fresh folder under ``output_root``."""

    output_root: Path

    def generate(self, photo_path: str | None, progress=gr.Progress()) -> tuple[str, str, str, dict]:
        """Reconstruct a face from a photo; returns (turntable.mp4, mesh.glb, views.png, report)."""
        from face_nerf.pipeline import ReconstructionConfig, reconstruct, render_outputs, write_outputs

        if not photo_path:
            raise gr.Error("No photo yet: upload a face photo or click one of the examples.")
        self._remove_old_runs()
        config = ReconstructionConfig()
        progress(0.05, desc="Finding the face")
        try:
            recon = reconstruct(photo_path, config)
            for warning in recon.warnings:
                gr.Warning(warning)
            done = [0]

            def frame_done(n: int) -> None:
                done[0] += n
                progress(0.2 + 0.7 * done[0] / config.frames, desc="Rendering the turntable")

            outputs = render_outputs(recon, config, progress=frame_done)
            progress(0.95, desc="Writing video and mesh")
            out = write_outputs(recon, outputs, Path(tempfile.mkdtemp(dir=self.output_root)) / "result", config.fps)
        except FaceLabError as err:
            raise gr.Error(str(err)) from err
        return str(out / "turntable.mp4"), str(out / "mesh.glb"), str(out / "views.png"), outputs.report

    def _remove_old_runs(self) -> None:
        cutoff = time.time() - OUTPUT_TTL_S
        for run in self.output_root.iterdir():
            if run.is_dir() and run.stat().st_mtime < cutoff:
                shutil.rmtree(run, ignore_errors=True)


def build_demo(services: Services) -> gr.Blocks:
    """The page: upload on the left, results on the right; the event is exposed as ``/generate``."""
    with gr.Blocks(title="FaceLab 3D") as demo:
        gr.Markdown("# FaceLab 3D\nOne face photo in: a 3D face radiance field out, as a turntable video and a mesh.")
        with gr.Row():
            with gr.Column(scale=1):
                photo = gr.Image(type="filepath", label="Face photo", elem_id="photo", sources=["upload", "webcam", "clipboard"])
                gr.Examples(EXAMPLES, inputs=photo)
                run = gr.Button("Generate", variant="primary")
            with gr.Column(scale=2):
                video = gr.Video(label="Turntable", autoplay=True, loop=True, elem_id="turntable")
                with gr.Row():
                    mesh = gr.Model3D(label="3D mesh (GLB)", elem_id="mesh")
                    strip = gr.Image(label="Views at -45, 0, +45 degrees", elem_id="strip")
                report = gr.JSON(label="Report (backend, timings, cameras)")
        run.click(services.generate, inputs=photo, outputs=[video, mesh, strip, report], api_name="generate",
                  concurrency_limit=1)
    return demo


def main() -> None:
    from face_nerf.pipeline import set_cpu_threads

    set_cpu_threads()
    root = Path(os.environ.get("FACELAB_OUTPUTS", Path(tempfile.gettempdir()) / "facelab-outputs"))
    root.mkdir(parents=True, exist_ok=True)
    demo = build_demo(Services(root))
    port = int(os.environ.get("PORT", os.environ.get("GRADIO_SERVER_PORT", 7860)))
    demo.queue(max_size=16).launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), server_port=port,
                                   max_file_size=MAX_UPLOAD, allowed_paths=[str(root)])


if __name__ == "__main__":
    main()
