"""FaceLab 3D web app (minimal): photo -> turntable video, 3D mesh and 3-view strip, under a chosen light.

The UI is a thin layer over ``face_nerf``: nothing heavy is loaded at import, ``launch()`` runs only
under ``__main__``. Port: $PORT or $GRADIO_SERVER_PORT, default 7860.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from face_nerf.edit import EmbeddedEditor
from face_nerf.errors import FaceLabError
from face_nerf.lighting import PRESETS, CustomLight, Lighting

EXAMPLES = sorted(str(p) for p in (Path(__file__).parent / "assets" / "examples").glob("*.*"))
MAX_UPLOAD = "30mb"
OUTPUT_TTL_S = 3600  # result folders older than this are removed when a new run starts


LIGHTING_CHOICES = [*PRESETS, "custom"]
EXAMPLE_PROMPTS = ["red lipstick", "blue eyes", "older, with a grey beard and blue eyes", "big smile", "sunglasses",
                   "marble statue", "zombie", "grey hair, raised eyebrows"]


def status_line(report: dict | None) -> str:
    """What produced a result, for the page: backends and the edits applied."""
    if not report:
        return ""
    edit = report.get("edit") or {}
    lighting = report.get("lighting") or {}
    return (f"**Backend:** {report.get('backend')} · **editor:** {edit.get('backend') or 'none'} · "
            f"**lighting:** {lighting.get('name')} ({lighting.get('fixed_to')}-fixed)  \n"
            f"**Edits:** {edit.get('summary', 'no edit')}")


@dataclass
class Result:
    """A finished run kept in the browser session, so its light can change without reconstructing."""

    recon: object  # face_nerf.pipeline.Reconstruction
    outputs: object  # face_nerf.pipeline.Outputs
    config: object  # face_nerf.pipeline.ReconstructionConfig


def parse_lighting(preset: str | None, light: str | None = None, fixed_to: str | None = "world") -> Lighting:
    """The lighting of a request: a preset name, or a custom light spec ("azimuth=40,elevation=20,...")
    when ``light`` is given or the preset is "custom"."""
    preset = (preset or "original").strip().lower()
    if preset == "custom" or (light or "").strip():
        if not (light or "").strip():
            raise FaceLabError("Custom lighting needs a light, e.g. azimuth=40,elevation=20,color=#ffd8a8,intensity=1.2,ambient=0.3.")
        return Lighting(custom=CustomLight.parse(light), fixed_to=fixed_to or "world")
    return Lighting(preset, fixed_to=fixed_to or "world")


def light_spec(azimuth: float, elevation: float, colour: str, intensity: float, ambient: float) -> str:
    """The custom-light controls as a light spec string."""
    return f"azimuth={azimuth:g},elevation={elevation:g},color={_hex_colour(colour)},intensity={intensity:g},ambient={ambient:g}"


def _hex_colour(colour: str) -> str:
    """'#rrggbb' or a CSS 'rgb(a)(r, g, b[, a])' string (what colour pickers send) -> '#rrggbb'."""
    colour = (colour or "#ffffff").strip()
    if colour.startswith("rgb"):
        try:
            parts = [float(v) for v in colour[colour.index("(") + 1:colour.rindex(")")].split(",")[:3]]
        except ValueError:
            return colour  # CustomLight rejects it with a message naming the expected form
        return "#" + "".join(f"{max(0, min(255, round(v))):02x}" for v in parts)
    return colour


@dataclass
class Services:
    """What the UI calls into; each run writes its outputs into a fresh folder under ``output_root``.
    The editor (and its sentence-embedding model, loaded on first need) is shared by all sessions."""

    output_root: Path
    editor: EmbeddedEditor = field(default_factory=EmbeddedEditor)

    def generate(self, photo_path: str | None, prompt: str = "", lighting: str = "original", light: str = "",
                 fixed_to: str = "world", progress=gr.Progress()) -> tuple[str, str, str, dict, Result]:
        """Reconstruct a face from a photo, edit it by the prompt, light it; returns (turntable.mp4,
        mesh.glb, views.png, report, the result kept for relighting)."""
        from face_nerf.pipeline import ReconstructionConfig, edit_reconstruction, reconstruct, render_outputs

        if not photo_path:
            raise gr.Error("No photo yet: upload a face photo or click one of the examples.")
        self._remove_old_runs()
        progress(0.05, desc="Finding the face")
        try:
            config = ReconstructionConfig(lighting=parse_lighting(lighting, light, fixed_to))
            self.editor.parse(prompt or "")  # an unreadable prompt fails before any work
            recon = reconstruct(photo_path, config)
            for warning in recon.warnings:
                gr.Warning(warning)
            progress(0.15, desc="Editing")
            recon = edit_reconstruction(recon, prompt or "", self.editor)
            done = [0]

            def frame_done(n: int) -> None:
                done[0] += n
                progress(0.2 + 0.7 * done[0] / config.frames, desc="Rendering the turntable")

            outputs = render_outputs(recon, config, progress=frame_done)
            progress(0.95, desc="Writing video and mesh")
            return (*self._write(recon, outputs, config), Result(recon, outputs, config))
        except FaceLabError as err:
            raise gr.Error(str(err)) from err

    def relight(self, result: Result | None, lighting: str = "original", light: str = "", fixed_to: str = "world",
                progress=gr.Progress()) -> tuple[str, str, str, dict, Result]:
        """The last result under another light, without reconstructing."""
        from face_nerf.pipeline import relight_outputs

        if result is None:
            raise gr.Error("Nothing to relight yet: generate a face first.")
        try:
            progress(0.1, desc="Relighting")
            outputs = relight_outputs(result.recon, result.outputs, parse_lighting(lighting, light, fixed_to),
                                      result.config.mesh_lighting)
            return (*self._write(result.recon, outputs, result.config), Result(result.recon, outputs, result.config))
        except FaceLabError as err:
            raise gr.Error(str(err)) from err

    def _write(self, recon, outputs, config) -> tuple[str, str, str, dict]:
        from face_nerf.pipeline import write_outputs

        out = write_outputs(recon, outputs, Path(tempfile.mkdtemp(dir=self.output_root)) / "result", config.fps)
        return str(out / "turntable.mp4"), str(out / "mesh.glb"), str(out / "views.png"), outputs.report

    def _remove_old_runs(self) -> None:
        cutoff = time.time() - OUTPUT_TTL_S
        for run in self.output_root.iterdir():
            if run.is_dir() and run.stat().st_mtime < cutoff:
                shutil.rmtree(run, ignore_errors=True)


def build_demo(services: Services) -> gr.Blocks:
    """The page: upload and lighting on the left, results on the right; events ``/generate`` and ``/relight``."""
    with gr.Blocks(title="FaceLab 3D") as demo:
        gr.Markdown("# FaceLab 3D\nOne face photo in: a 3D face radiance field out, as a turntable video and a mesh.")
        result = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                photo = gr.Image(type="filepath", label="Face photo", elem_id="photo", sources=["upload", "webcam", "clipboard"])
                gr.Examples(EXAMPLES, inputs=photo)
                prompt = gr.Textbox(label="Edit prompt (optional)", elem_id="prompt", max_length=300,
                                    placeholder="e.g. older, with a grey beard and blue eyes")
                gr.Examples([[p] for p in EXAMPLE_PROMPTS], inputs=prompt, label="Example prompts")
                lighting = gr.Dropdown(LIGHTING_CHOICES, value="original", label="Lighting", elem_id="lighting",
                                       info="original = the photo's own light; custom = the controls below")
                fixed_to = gr.Radio(["world", "camera"], value="world", label="Light fixed to",
                                    info="world: the light stays put as the head turns; camera: it turns with the view")
                with gr.Accordion("Custom light", open=False) as custom_box:
                    azimuth = gr.Slider(-180, 180, value=40, step=1, label="Azimuth (degrees; 0 = from the camera, + = viewer's right)")
                    elevation = gr.Slider(-90, 90, value=20, step=1, label="Elevation (degrees)")
                    colour = gr.ColorPicker("#ffd8a8", label="Colour")
                    intensity = gr.Slider(0, 4, value=1.2, step=0.05, label="Intensity")
                    ambient = gr.Slider(0, 2, value=0.3, step=0.05, label="Ambient")
                light = gr.Textbox(visible=False)  # the custom light as a spec string (also the API's input)
                with gr.Row():
                    run = gr.Button("Generate", variant="primary")
                    relight = gr.Button("Relight", elem_id="relight")
            with gr.Column(scale=2):
                status = gr.Markdown(elem_id="status")
                video = gr.Video(label="Turntable", autoplay=True, loop=True, elem_id="turntable")
                with gr.Row():
                    mesh = gr.Model3D(label="3D mesh (GLB)", elem_id="mesh")
                    strip = gr.Image(label="Views at -45, 0, +45 degrees", elem_id="strip")
                report = gr.JSON(label="Report (backend, lighting, timings, cameras)")
        controls = [azimuth, elevation, colour, intensity, ambient]

        def spec(choice, *values):
            return light_spec(*values) if choice == "custom" else ""

        for control in [lighting, *controls]:
            control.change(spec, [lighting, *controls], light, api_visibility="private", queue=False)
        lighting.change(lambda choice: gr.Accordion(open=choice == "custom"), lighting, custom_box,
                        api_visibility="private", queue=False)
        outs = [video, mesh, strip, report, result]
        run.click(services.generate, inputs=[photo, prompt, lighting, light, fixed_to], outputs=outs,
                  api_name="generate", concurrency_limit=1
                  ).then(status_line, report, status, api_visibility="private", queue=False)
        relight.click(services.relight, inputs=[result, lighting, light, fixed_to], outputs=outs, api_name="relight",
                      concurrency_limit=2).then(status_line, report, status, api_visibility="private", queue=False)
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
