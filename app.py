"""FaceLab 3D web app: create (photo -> edited, lit 3D face), judge any turntable, explain, compare.

The UI is a thin layer over ``webapp.services``: nothing heavy is loaded at import, ``launch()`` runs
only under ``__main__``. Port: $PORT or $GRADIO_SERVER_PORT, default 7860. Outputs go under
$FACELAB_OUTPUTS (default: the system's temporary folder): Gradio's upload cache and one folder per
browser session, removed when the session ends and swept after $FACELAB_MAX_AGE_S (default 3600 s).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import gradio as gr
import numpy as np

from face_nerf.lighting import PRESETS
from judge.result import CATEGORIES
from webapp.judges import BACKEND_ENV, BACKENDS, Judges
from webapp.retention import MAX_AGE_ENV, MAX_AGE_S
from webapp.spotcheck import QUEUE_NOTICE, SLIDER_INFO, SpotCheck
from webapp.services import MAX_FRAMES, SIZES, TURNTABLES, Judged, Services, parse_lighting, status_line
from webapp.inputs import clip_input, photo_input
from webapp.sessions import session_name
from webapp.text import markdown_text

__all__ = ["Services", "Judged", "parse_lighting", "status_line", "light_spec", "panel", "frame_overlay", "build_demo",
           "main", "launch", "photo_input", "clip_input"]

EXAMPLES = sorted(str(p) for p in (Path(__file__).parent / "assets" / "examples").glob("*.*"))
MAX_UPLOAD = "32mb"  # every upload route: a turntable of a few seconds is a few MB; photos have a 30 MB limit
LIGHTING_CHOICES = [*PRESETS, "custom"]
EXAMPLE_PROMPTS = ["red lipstick", "blue eyes", "older, with a grey beard and blue eyes", "big smile", "sunglasses",
                   "marble statue", "zombie", "grey hair, raised eyebrows"]
QUESTIONS = ["Which region is worst?", "Is the mouth distorted?", "How realistic is the left profile?",
             "Is it blurry?", "Why?"]
CSS = """
.gradio-container {max-width: 1500px !important}
#status, #summary, #answer {font-size: 1.1rem}
"""

try:  # ZeroGPU on Hugging Face Spaces; a no-op elsewhere
    import spaces

    gpu = spaces.GPU(duration=60)
except ImportError:
    def gpu(fn):
        return fn


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


# --- the judge panel ------------------------------------------------------------------------------

def panel(judged: Judged | None):
    """The judge panel's contents: (scores plot, categories plot, summary, strip overlay, frame overlay,
    frame slider)."""
    from judge.heatmap import overlay
    from judge.plots import category_figure, score_figure

    if judged is None:
        return None, None, "", None, None, gr.Slider(maximum=1, value=0)
    r = judged.result
    found = ", ".join(f"**{d.category}** ({d.probability:.2f})" for d in r.distortions)
    summary = f"**[{markdown_text(r.backend)}]** {markdown_text(r.summary)}  \n**Found:** {found or 'nothing'}"
    strip = overlay(r.strip, r.strip_heatmap) if r.strip is not None else None
    last = max(len(judged.frames) - 1, 0)
    return (score_figure(r), category_figure(r), summary, strip, frame_overlay(judged, last // 2),
            gr.Slider(minimum=0, maximum=last, value=last // 2, step=1))


def frame_overlay(judged: Judged | None, index: float) -> np.ndarray | None:
    """One analysed frame with its heatmap laid over it."""
    from judge.heatmap import overlay

    if judged is None or judged.result.frame_heatmaps is None:
        return None
    i = int(np.clip(index or 0, 0, len(judged.frames) - 1))
    return overlay(judged.frames[i], judged.result.frame_heatmaps[i])


def _judge_panel(prefix: str, spot_enabled: bool):
    """The judge panel's components (returned in ``panel``'s order), the question box parts, and the
    "Add to the spot-check queue" button with its message line (shown when spot-checks are offered)."""
    with gr.Group():
        gr.Markdown("### Judge")
        summary = gr.Markdown(elem_id=f"{prefix}-summary")
        with gr.Row():
            scores = gr.Plot(label="Scores", elem_id=f"{prefix}-scores")
            categories = gr.Plot(label="Distortion categories", elem_id=f"{prefix}-categories")
        with gr.Row():
            strip = gr.Image(label="Heatmap over the 3-view strip", elem_id=f"{prefix}-strip-heat", height=280)
            with gr.Column():
                frame = gr.Image(label="Heatmap over a frame", elem_id=f"{prefix}-frame-heat", height=280)
                slider = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id=f"{prefix}-frame-slider")
        with gr.Row():
            question = gr.Textbox(label="Ask the judge", placeholder="e.g. Is the mouth distorted?",
                                  elem_id=f"{prefix}-question", scale=4)
            ask = gr.Button("Ask", elem_id=f"{prefix}-ask", scale=1)
        gr.Examples([[q] for q in QUESTIONS], inputs=question, label="Questions")
        answer = gr.Markdown(elem_id=f"{prefix}-answer")
    with gr.Row(visible=spot_enabled):
        queue = gr.Button("Add to the spot-check queue", elem_id=f"{prefix}-queue", size="sm", scale=1)
        gr.Markdown(QUEUE_NOTICE, scale=3)
    queued = gr.Markdown(elem_id=f"{prefix}-queued")
    return [scores, categories, summary, strip, frame, slider], question, ask, answer, (queue, queued)


def build_demo(services: Services) -> gr.Blocks:
    """The page: a Create tab (photo -> 3D face, with its judgement) and a Judge tab (any turntable).
    Events: ``/generate``, ``/relight``, ``/judge``, ``/ask``, ``/compare``."""
    with gr.Blocks(title="FaceLab 3D") as demo:
        gr.Markdown("# FaceLab 3D\nOne face photo in: a 3D face you can edit with words, relight, download, "
                    "and have judged.")
        with gr.Tab("Create", id="create"):
            result = gr.State(None)  # tokens of what Services keeps (bounded memory)
            judged = gr.State(None)
            with gr.Row():
                with gr.Column(scale=1):
                    photo = photo_input(services.files, type="filepath", label="Face photo", elem_id="photo", image_mode=None,
                                        sources=["upload", "webcam", "clipboard"])
                    gr.Examples(EXAMPLES, inputs=photo, label="Example photos (public domain)")
                    prompt = gr.Textbox(label="Edit prompt (optional)", elem_id="prompt", max_length=300,
                                        placeholder="e.g. older, with a grey beard and blue eyes")
                    gr.Examples([[p] for p in EXAMPLE_PROMPTS], inputs=prompt, label="Example prompts")
                    editor_choice = gr.Radio(["embedded", "diffusion"], value="embedded", label="Editor",
                                             visible=services.diffusion_model is not None, elem_id="editor",
                                             info="embedded: offline, seconds; diffusion: Stable Diffusion on a GPU, minutes")
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
                    light = gr.Textbox("", visible=False)  # the custom light as a spec string (also the API's input)
                    with gr.Accordion("Advanced", open=False):
                        size = gr.Dropdown(list(SIZES), value=256, label="Output size (pixels)")
                        frames = gr.Slider(8, MAX_FRAMES, value=48, step=1, label="Turntable frames")
                    turntable = gr.Radio(list(TURNTABLES), value="±45°", label="Turntable", elem_id="turntable-choice",
                                         info="full turn: round the whole head, the back included")
                    with gr.Row():
                        run = gr.Button("Generate", variant="primary", elem_id="generate")
                        relight = gr.Button("Relight", elem_id="relight")
                with gr.Column(scale=2):
                    status = gr.Markdown(elem_id="status")
                    video = gr.Video(label="Turntable", autoplay=True, loop=True, elem_id="turntable", height=420)
                    with gr.Row():
                        mesh = gr.Model3D(label="3D mesh (GLB)", elem_id="mesh")
                        strip = gr.Image(label="Views at -45, 0, +45 degrees", elem_id="strip")
                    downloads = gr.File(label="Downloads (mp4, glb, png, json)", file_count="multiple", elem_id="downloads")
                    with gr.Accordion("Compare", open=False):
                        with gr.Row():
                            compare_mode = gr.Radio(["original vs edited", "two lighting presets"],
                                                    value="original vs edited", label="Compare")
                            compare_preset = gr.Dropdown(list(PRESETS), value="studio", label="Second lighting preset")
                            compare_button = gr.Button("Compare", elem_id="compare")
                        compare_image = gr.Image(label="Side by side", elem_id="compare-image")
                    create_panel, create_question, create_ask, create_answer, create_queue = \
                        _judge_panel("create", services.spot.enabled)
                    with gr.Accordion("Judgement (JSON)", open=False):
                        judgement = gr.JSON(label="Judgement", elem_id="judgement")
        with gr.Tab("Judge", id="judge"):
            gr.Markdown("Judge a turntable video of a 3D face from any generator (mp4, webm, gif), or one image.")
            judged_upload = gr.State(None)
            with gr.Row():
                with gr.Column(scale=1):
                    upload = clip_input(label="Turntable video or image", elem_id="judge-upload",
                                     file_types=[".mp4", ".webm", ".gif", ".mov", ".mkv", ".avi", "image"])
                    judge_backend = gr.Radio(["embedded", "lmm"], value=services.judges.backend, label="Judge",
                                             info="lmm: the vision-language judge ($FACELAB_LMM_MODEL; needs a GPU "
                                                  "for a full-size model)", visible=services.judges.lmm_model is not None,
                                             elem_id="judge-backend")
                    judge_button = gr.Button("Judge", variant="primary", elem_id="judge-button")
                    judge_json = gr.JSON(label="Judgement", elem_id="judge-json")
                with gr.Column(scale=2):
                    judge_panel, judge_question, judge_ask, judge_answer, judge_queue = \
                        _judge_panel("judge", services.spot.enabled)

        _spot_check_tab(services.spot)

        controls = [azimuth, elevation, colour, intensity, ambient]

        def spec(choice, *values):
            return light_spec(*values) if choice == "custom" else ""

        for control in [lighting, *controls]:
            control.change(spec, [lighting, *controls], light, api_visibility="private", queue=False)
        lighting.change(lambda choice: gr.Accordion(open=choice == "custom"), lighting, custom_box,
                        api_visibility="private", queue=False)

        def shown_panel(judged_item: Judged | None, request: gr.Request) -> list:
            """The panel, its images written into the session's folder (they show the visitor's face)."""
            parts = list(panel(judged_item))
            parts[3:5] = [services.files.image(session_name(request), image) for image in parts[3:5]]
            return parts

        def after_create(token: str | None, request: gr.Request):
            res = services.result(token, request)
            report = res.outputs.report if res else None
            return (status_line(report, res.judged if res else None), res.files if res else None,
                    token, *shown_panel(res.judged if res else None, request), "")

        def show_panel(token: str | None, request: gr.Request):
            return *shown_panel(services.judged(token, request), request), ""

        def show_frame(token: str | None, index: float, request: gr.Request):
            return services.files.image(session_name(request), frame_overlay(services.judged(token, request), index))

        def compare(token: str | None, mode: str, preset: str, request: gr.Request):
            return services.files.image(session_name(request), services.compare(token, mode, preset, request))

        create_outputs = [video, mesh, strip, judgement, result]
        shown = [status, downloads, judged, *create_panel, create_queue[1]]
        run.click(gpu(services.generate), inputs=[photo, prompt, lighting, light, fixed_to, size, frames, editor_choice, turntable],
                  outputs=create_outputs, api_name="generate", concurrency_limit=1, concurrency_id="heavy"
                  ).then(after_create, result, shown, api_visibility="private", queue=False)
        relight.click(services.relight, inputs=[result, lighting, light, fixed_to], outputs=create_outputs,
                      api_name="relight", concurrency_limit=1, concurrency_id="heavy"
                      ).then(after_create, result, shown, api_visibility="private", queue=False)
        compare_button.click(compare, [result, compare_mode, compare_preset], compare_image,
                             api_visibility="private", concurrency_limit=1, concurrency_id="heavy")
        judge_button.click(services.judge_video, [upload, judge_backend], [judge_json, judged_upload], api_name="judge",
                           concurrency_limit=1, concurrency_id="heavy"
                           ).then(show_panel, judged_upload, [*judge_panel, judge_queue[1]], api_visibility="private",
                                  queue=False)
        # The API's /ask (judgement JSON, question) -> answer; declared before the panels' own ask events.
        hidden_json, hidden_question, hidden_answer = gr.JSON(visible=False), gr.Textbox(visible=False), gr.Textbox(visible=False)
        gr.Button(visible=False).click(services.ask, [hidden_json, hidden_question], hidden_answer, api_name="ask")
        for state, panel_parts, question, ask, answer, source, (queue, queued) in (
                (judged, create_panel, create_question, create_ask, create_answer, judgement, create_queue),
                (judged_upload, judge_panel, judge_question, judge_ask, judge_answer, judge_json, judge_queue)):
            panel_parts[-1].change(show_frame, [state, panel_parts[-1]], panel_parts[-2],
                                   api_visibility="private", queue=False)
            queue.click(services.queue_for_spotcheck, state, queued, api_visibility="private", queue=False)
            for trigger in (ask.click, question.submit):
                trigger(services.ask_kept, [state, source, question], answer, api_visibility="private",
                        concurrency_limit=1, concurrency_id="heavy")  # the LMM judge answers on the same device
        demo.unload(services.end_session)
    # The example photos Gradio keeps for every visitor are never removed.
    services.files.keep = frozenset(str(Path(p).resolve()) for block in demo.blocks.values()
                                    for p in getattr(block, "keep_in_cache", ()))
    return demo


def _spot_check_tab(spot: SpotCheck) -> None:
    """The Spot-check tab and its events. Hidden where spot-checks are not offered (a public Space
    without an annotator key); every handler checks the key itself, since hidden events can still be
    called."""
    problem = spot.check() if spot.enabled else None
    with gr.Tab("Spot-check", id="spot", visible=spot.enabled):
        gr.Markdown("Rate results yourself. The judge's verdict stays hidden until you submit. Keyboard: Tab "
                    "between controls, arrow keys move sliders, Enter in the comment box submits and loads the next item.")
        if problem:
            gr.Markdown(f"⚠️ {markdown_text(problem)} Creating and judging work as usual.", elem_id="spot-problem")
        spot_item, spot_clicks, spot_rating = gr.State(None), gr.State([]), gr.State("")
        with gr.Row():
            annotator = gr.Textbox(label="Your name", elem_id="annotator", scale=3)
            key = gr.Textbox(label="Annotator key", type="password", elem_id="annotator-key", scale=2,
                             visible=spot.key is not None)
            start = gr.Button("Start / next item", elem_id="spot-start", scale=1)
        progress = gr.Markdown(elem_id="spot-progress")
        with gr.Row():
            video = gr.Video(label="Turntable", autoplay=True, loop=True, elem_id="spot-video", height=320)
            with gr.Column():
                strip = gr.Image(label="3-view strip: click the distorted spots", interactive=False,
                                 elem_id="spot-strip")
                undo = gr.Button("Undo last click", size="sm")
        quality = gr.Slider(0, 100, value=50, step=1, label="Quality", info=SLIDER_INFO, elem_id="spot-quality")
        authenticity = gr.Slider(0, 100, value=50, step=1, label="Authenticity", info=SLIDER_INFO,
                                 elem_id="spot-authenticity")
        categories = gr.CheckboxGroup(list(CATEGORIES), label="Distortions you see", elem_id="spot-categories")
        comment = gr.Textbox(label="Comment (Enter submits)", elem_id="spot-comment")
        submit = gr.Button("Submit and next", variant="primary", elem_id="spot-submit")
        verdict = gr.Markdown(elem_id="spot-verdict")

    loaded = [spot_item, video, strip, spot_clicks, progress]
    fresh = [quality, authenticity, categories, comment, spot_rating]

    def next_item(name: str, given_key: str):
        return *spot.next_item(name, given_key), 50, 50, [], "", uuid.uuid4().hex

    def submit_and_next(name, item, q, a, cats, clicks, text, rating_id, given_key):
        message, saved = spot.submit(name, item, q, a, cats, clicks, text, rating_id, given_key)
        if not saved:
            return message, *[gr.skip()] * (len(loaded) + len(fresh))
        return message, *next_item(name, given_key)

    light = dict(api_visibility="private", queue=False)
    start.click(next_item, [annotator, key], loaded + fresh, **light)
    strip.select(spot.click, [spot_item, spot_clicks, key], [strip, spot_clicks], **light)
    undo.click(spot.undo, [spot_item, spot_clicks, key], [strip, spot_clicks], **light)
    rate = [annotator, spot_item, quality, authenticity, categories, spot_clicks, comment, spot_rating, key]
    for trigger in (submit.click, comment.submit):
        trigger(submit_and_next, rate, [verdict, *loaded, *fresh], **light)


def main(argv: list[str] | None = None) -> None:
    import argparse

    from face_nerf.pipeline import set_cpu_threads

    parser = argparse.ArgumentParser(description="FaceLab 3D web app")
    parser.add_argument("--backend", choices=BACKENDS, default=os.environ.get(BACKEND_ENV, "embedded"),
                        help=f"judge of creations and the Judge tab's default (lmm: $FACELAB_LMM_MODEL, "
                             f"$FACELAB_LMM_ADAPTER; default ${BACKEND_ENV} or embedded)")
    args = parser.parse_args(argv)
    if args.backend not in BACKENDS:  # a default from the environment is not checked by argparse
        parser.error(f"${BACKEND_ENV} must be one of {BACKENDS}. Got {args.backend!r}.")
    try:
        max_age = float(os.environ.get(MAX_AGE_ENV, MAX_AGE_S))
    except ValueError:
        max_age = -1.0
    if not max_age > 0:
        parser.error(f"${MAX_AGE_ENV} must be a positive number of seconds. Got {os.environ.get(MAX_AGE_ENV)!r}.")
    set_cpu_threads()
    root = Path(os.environ.get("FACELAB_OUTPUTS", Path(tempfile.gettempdir()) / "facelab-outputs"))
    # Gradio's upload cache is the app's own, inside the outputs, so that the sweep may empty it; session
    # folders lie inside it, so Gradio serves them where they are instead of keeping copies elsewhere.
    os.environ.setdefault("GRADIO_TEMP_DIR", str(root / "uploads"))
    uploads = Path(os.environ["GRADIO_TEMP_DIR"])
    services = Services(uploads / "sessions", spot=SpotCheck(), judges=Judges(args.backend), uploads_root=uploads,
                        max_age_s=max_age)  # ratings under ./data (or $FACELAB_ANNOTATIONS)
    if args.backend == "lmm":
        try:  # refuse at start (no model, too slow here) rather than at the first request
            services.judges.get("lmm")
        except gr.Error as err:
            raise SystemExit(f"error: {err.message}") from err
    services.warm_up()
    demo = build_demo(services)
    services.start_retention()
    port = int(os.environ.get("PORT", os.environ.get("GRADIO_SERVER_PORT", 7860)))
    launch(demo, server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), server_port=port)


def launch(demo: gr.Blocks, **options):
    """Serve the page with the app's limits: the queue (40 waiting, one heavy request at a time), the
    upload limit on every upload route, no folder served beyond Gradio's own cache. ``options`` go to
    ``Blocks.launch`` (a port, ``prevent_thread_lock`` in tests)."""
    return demo.queue(max_size=40, default_concurrency_limit=1).launch(
        max_file_size=MAX_UPLOAD, state_session_capacity=16, theme=gr.themes.Soft(text_size="lg"), css=CSS,
        **options)


if __name__ == "__main__":
    main()
