"""The Create tab: photo, prompt and light on the left, with Generate in sight at 1280x720; the result
streams in on the right (turntable, then mesh and strip, then the judge panel), with a large 3D viewer.

Every handler here reports problems in one message line under the buttons (``#message``) and leaves
the panels as they were; the API routes (``/generate``, ``/relight``) are declared separately in
``webapp.page`` and raise, so API callers get errors as errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from face_nerf.consent import LABEL as CONSENT_LABEL, WHY as CONSENT_WHY
from face_nerf.edit.prompt import MAX_PROMPT_CHARS
from face_nerf.lighting import PRESETS
from webapp.inputs import check_upload, photo_input
from webapp.panel import judge_panel, panel, shown_panel
from webapp.services import MAX_FRAMES, SIZES, TURNTABLES, Services
from webapp.sessions import session_name
from webapp.text import markdown_text
from webapp.words import status_line

EXAMPLES = sorted(str(p) for p in (Path(__file__).parents[1] / "assets" / "examples").glob("*.*"))
LIGHTING_CHOICES = [*PRESETS, "custom"]
EXAMPLE_PROMPTS = ["red lipstick", "blue eyes", "older, with a grey beard and blue eyes", "big smile", "sunglasses",
                   "marble statue", "zombie", "grey hair, raised eyebrows"]
# The page's own scripts (no server round trip): the prompt's character counter, and bringing the
# result into view when Generate is pressed (on a phone it is below the controls).
COUNT_JS = f"""(p) => {{ const n = (p || "").length, max = {MAX_PROMPT_CHARS};
  return n > max ? `⚠️ ${{n}} / ${{max}} characters: shorten it by ${{n - max}}` : `${{n}} / ${{max}} characters`; }}"""
log = logging.getLogger(__name__)

try:  # ZeroGPU on Hugging Face Spaces: Generate (the page's and the API's) holds a GPU while it runs; a no-op elsewhere
    import spaces

    gpu = spaces.GPU(duration=60)
except ImportError:
    def gpu(fn):
        return fn
# Generate and Relight bring the result into view and pause the old turntable (it is about to be
# replaced; a looping video costs a browser without a GPU half a core, taken from the work on a shared host).
SCROLL_JS = """() => { const el = document.getElementById('turntable');
  if (el) { el.scrollIntoView({behavior: 'smooth', block: 'nearest'}); el.querySelectorAll('video').forEach(v => v.pause()); } }"""


@dataclass
class CreateTab:
    """What other parts of the page need: the inputs of ``/generate`` and ``/relight``, the outputs the
    API fills, and this session's creations (for the Judge tab)."""

    inputs: list  # photo, prompt, lighting, light, fixed to, size, frames, editor, turntable, consent
    relight_inputs: list  # result, lighting, light, fixed to
    api_outputs: list  # video, mesh, strip, judgement JSON, result token
    creations: gr.State  # [(label, token)] made in this session
    show_first_example: object  # (request) -> the first example photo and its result, for ``load_outputs``
    load_outputs: list  # what opening the page fills


def example_photo(example) -> str | None:
    """The photo of a clicked example: the gallery passes (its index, its values)."""
    index = example[0] if isinstance(example, (list, tuple)) and example else None
    return EXAMPLES[index] if isinstance(index, int) and 0 <= index < len(EXAMPLES) else None


def warning(message: str) -> str:
    """The message line's text for a problem."""
    return f"⚠️ {markdown_text(message)}"


def create_tab(services: Services) -> CreateTab:
    """Lay out the Create tab and wire its events."""
    result, judged, creations = gr.State(None), gr.State(None), gr.State([])
    made_now = gr.State(None)  # the token of what the last Generate or Relight made; None when it failed
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320, elem_id="create-controls"):
            photo = photo_input(services.files, type="filepath", label="1 · Face photo", elem_id="photo",
                                image_mode=None, sources=["upload", "webcam", "clipboard"], height=120)
            prompt = gr.Textbox(label="2 · Edit (optional)", elem_id="prompt", lines=1, max_lines=3,
                                placeholder="e.g. older, with a grey beard and blue eyes")
            prompt_count = gr.Markdown(f"0 / {MAX_PROMPT_CHARS} characters", elem_id="prompt-count")
            lighting = gr.Dropdown(LIGHTING_CHOICES, value="original", label="Lighting", elem_id="lighting")
            # Beside the button it enables; the example photos (public domain) need no tick.
            consent = gr.Checkbox(False, label=CONSENT_LABEL, info=CONSENT_WHY, elem_id="consent")
            with gr.Row():
                run = gr.Button("3 · Generate", variant="primary", elem_id="generate", size="lg", scale=2)
                relight = gr.Button("Relight", elem_id="relight", size="lg", scale=1)
            message = gr.Markdown(elem_id="message")
            example_photos = gr.Examples(EXAMPLES, inputs=photo, label="Example photos (public domain): click one "
                                         "to see its result", examples_per_page=8, elem_id="example-photos")
            gr.Examples([[p] for p in EXAMPLE_PROMPTS], inputs=prompt, label="Example edits")
            with gr.Accordion("More options", open=False, elem_id="more-options"):
                editor = gr.Radio(["embedded", "diffusion"], value="embedded", label="Editor",
                                  visible=services.diffusion_model is not None, elem_id="editor",
                                  info="embedded: offline, seconds; diffusion: Stable Diffusion on a GPU, minutes")
                fixed_to = gr.Radio(["world", "camera"], value="world", label="Light fixed to",
                                    info="world: the light stays put as the head turns; camera: it turns with the view")
                turntable = gr.Radio(list(TURNTABLES), value="±45°", label="Turntable", elem_id="turntable-choice",
                                     info="full turn: round the whole head, the back included")
                size = gr.Dropdown(list(SIZES), value=256, label="Output size (pixels)")
                frames = gr.Slider(8, MAX_FRAMES, value=48, step=1, label="Turntable frames")
            with gr.Accordion("Custom light", open=False, elem_id="custom-light") as custom_box:
                azimuth = gr.Slider(-180, 180, value=40, step=1, label="Azimuth (degrees; 0 = from the camera, + = viewer's right)")
                elevation = gr.Slider(-90, 90, value=20, step=1, label="Elevation (degrees)")
                colour = gr.ColorPicker("#ffd8a8", label="Colour")
                intensity = gr.Slider(0, 4, value=1.2, step=0.05, label="Intensity")
                ambient = gr.Slider(0, 2, value=0.3, step=0.05, label="Ambient")
            light = gr.Textbox("", visible=False)  # the custom light as a spec string (also the API's input)
        with gr.Column(scale=3, min_width=320, elem_id="create-result"):
            status = gr.Markdown(elem_id="status")
            video = gr.Video(label="Turntable", autoplay=True, loop=True, elem_id="turntable", height=400)
            mesh = gr.Model3D(label="3D mesh: drag to turn, scroll to zoom", elem_id="mesh", height=520)
            strip = gr.Image(label="Views at -45°, 0°, +45°", elem_id="strip", height=220)
            downloads = gr.File(label="Downloads (mp4, glb, png, json)", file_count="multiple", elem_id="downloads")
            with gr.Accordion("Compare", open=False, elem_id="compare-box"):
                with gr.Row():
                    compare_mode = gr.Radio(["original vs edited", "two lighting presets"], value="original vs edited",
                                            label="Compare")
                    compare_preset = gr.Dropdown(list(PRESETS), value="studio", label="Second lighting preset")
                    compare_button = gr.Button("Compare", elem_id="compare")
                gr.Markdown("**Side by side**")
                compare_image = gr.Image(show_label=False, elem_id="compare-image")
                gr.Markdown("**Before / after:** drag the handle")
                compare_slider = gr.ImageSlider(show_label=False, elem_id="compare-slider")
            gr.Markdown("### What the judge says")
            parts, question, ask, answer, (queue, queued) = judge_panel("create", services.spot.enabled)
            with gr.Accordion("Judgement (JSON)", open=False):
                judgement = gr.JSON(label="Judgement", elem_id="judgement")

    inputs = [photo, prompt, lighting, light, fixed_to, size, frames, editor, turntable, consent]
    streamed = [message, video, mesh, strip, judgement, result, *parts, answer, made_now]
    finished = [status, downloads, judged, queued, creations]
    quiet = dict(api_visibility="private", queue=False)

    def streamed_steps(steps, request):
        yield from page_steps(steps, lambda token: shown_panel(services.files, services.judged(token, request), request),
                              len(parts))

    @gpu
    def generate_in_page(photo_path, text, preset, spec, fixed, pixels, count, editor_name, sweep, confirmed,
                         request: gr.Request, progress=gr.Progress()):
        yield from streamed_steps(services.generate_steps(photo_path, text, preset, spec, fixed, pixels, count,
                                                          editor_name, sweep, confirmed, "ui", request=request,
                                                          progress=progress), request)

    def relight_in_page(token, preset, spec, fixed, request: gr.Request, progress=gr.Progress()):
        yield from streamed_steps(services.relight_steps(token, preset, spec, fixed, request=request,
                                                         progress=progress), request)

    def after(token, made, request: gr.Request):
        """Status, downloads and the panel's token of what Generate or Relight just made (nothing when it
        failed); it joins the session's list."""
        try:
            res = services.result(token, request) if token else None
        except gr.Error:
            res = None
        if res is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        label = f"{len(made) + 1}. {res.outputs.report['edit'].get('summary', 'no edit')}"[:80]
        return status_line(res.outputs.report, res.judged), res.files or None, token, "", [*made, (label, token)]

    def show_example(example, request: gr.Request):
        """A clicked example's prepared result, at once (nothing when examples were not prepared). The
        mesh and the panel's charts follow in ``show_example_rest``: the browser draws them more slowly."""
        photo_path = example_photo(example)
        shown = services.show_example(photo_path, request)
        if shown is None:
            return [gr.skip()] * len(example_outputs)
        video_path, _, strip_path, data, token = shown
        example = services.examples.get(photo_path)
        words = status_line(example.report, example.judged, example=example.name)
        return ("", video_path, gr.skip(), strip_path, data, token, *[gr.skip()] * len(parts), "", None, words,
                example.files, token, "")

    def show_example_rest(example):
        example = services.examples.get(example_photo(example))
        if example is None:
            return [gr.skip()] * (1 + len(parts))
        return example.mesh, *panel(example.judged, example.overlays)

    def busy(label: str):
        return gr.Button(value=label, interactive=False)

    run.click(lambda: busy("Generating…"), None, run, js=SCROLL_JS, **quiet).then(
        generate_in_page, inputs, streamed, show_progress_on=[video, message], concurrency_limit=1, concurrency_id="heavy",
        api_visibility="private").then(after, [made_now, creations], finished, **quiet).then(
        lambda: gr.Button(value="3 · Generate", interactive=True), None, run, **quiet)
    relight.click(lambda: busy("Relighting…"), None, relight, js=SCROLL_JS, **quiet).then(
        relight_in_page, [result, lighting, light, fixed_to], streamed, show_progress_on=[video, message],
        concurrency_limit=1, concurrency_id="heavy", api_visibility="private").then(
        after, [made_now, creations], finished, **quiet).then(
        lambda: gr.Button(value="Relight", interactive=True), None, relight, **quiet)
    # Clicking an example photo shows its prepared result at once: from the click itself, beside the
    # gallery's own event that puts the photo in the input (one round trip, not two in a row).
    example_outputs = streamed + finished[:-1]
    example_photos.dataset.click(show_example, example_photos.dataset, example_outputs, **quiet).then(
        show_example_rest, example_photos.dataset, [mesh, *parts], **quiet)

    def checked_upload(payload):
        value, problem = check_upload(payload)
        return value, warning(problem) if problem else ""

    photo.upload(checked_upload, photo, [photo, message], preprocess=False, **quiet)
    prompt.change(None, prompt, prompt_count, js=COUNT_JS, **quiet)

    def compare(token, mode, preset, request: gr.Request):
        try:
            image, pair = services.compare(token, mode, preset, request)
        except gr.Error as err:
            return gr.skip(), gr.skip(), warning(err.message)
        session = session_name(request)
        return (services.files.image(session, image),
                tuple(services.files.image(session, p) for p in pair), "")

    compare_button.click(compare, [result, compare_mode, compare_preset], [compare_image, compare_slider, message],
                         api_visibility="private", concurrency_limit=1, concurrency_id="heavy")
    _wire_light(lighting, [azimuth, elevation, colour, intensity, ambient], light, custom_box)
    wire_panel(services, judged, parts, question, ask, answer, judgement, queue, queued)
    def show_first_example(request: gr.Request):
        """Opening the page shows the first example photo and its result, before any click."""
        first = EXAMPLES[0] if EXAMPLES and services.examples.get(EXAMPLES[0]) else None
        shown = list(show_example((0, [first]), request))
        if first:
            rest = show_example_rest((0, [first]))
            shown[2], shown[6:6 + len(parts)] = rest[0], rest[1:]
        return (first or gr.skip(), *shown)

    return CreateTab(inputs, [result, lighting, light, fixed_to], [video, mesh, strip, judgement, result], creations,
                     show_first_example, [photo, *example_outputs])


def page_steps(steps, shown, n_parts: int):
    """The services' streamed steps (video, mesh, strip, judgement, token) as the Create tab's outputs
    (message, video, mesh, strip, judgement, token, *panel parts, answer, token): the panel cleared at
    the first step and filled at the last (``shown(token)``: its ``n_parts`` contents); a problem becomes
    the message line, the rest left as it was.

    A file already shown is not sent again: Gradio would probe and cache it once more (the video's
    ffprobe) on the cores the judge needs, and the browser would load it again. The last mesh stays
    until the new one comes: clearing it removes the 3D viewer, and a new viewer starts its WebGL from
    nothing (in a browser without a GPU that cost 4-5 CPU-s beside the judge, against ~2 for a model
    loaded into the viewer already there). Should the new mesh fail, the old one is cleared."""
    sent = [None, None, None]  # the video, mesh and strip shown by this request
    try:
        for video_path, mesh_path, strip_path, data, token in steps:
            if token:
                contents = shown(token)
            else:
                contents = list(panel(None)) if sent[0] is None else [gr.skip()] * n_parts
            files = [gr.skip() if (path is not None and path == old) or (path is None and i == 1) else path
                     for i, (path, old) in enumerate(zip((video_path, mesh_path, strip_path), sent))]
            sent = [video_path, mesh_path, strip_path]
            yield "", *files, data, token, *contents, "", token
    except Exception as err:
        if isinstance(err, gr.Error):
            message = err.message
        else:  # a fault of ours: logged, and said in the message line
            log.exception("generating failed")
            message = (f"Something went wrong on the server ({type(err).__name__}). Try again; if it persists, "
                       "tell the operator.")
        stale_mesh = None if sent[0] is not None and sent[1] is None else gr.skip()
        yield warning(message), gr.skip(), stale_mesh, *[gr.skip()] * (n_parts + 4), None


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


def _wire_light(lighting, controls: list, light, custom_box) -> None:
    """The custom-light controls write the light spec; choosing "custom" opens them."""
    def spec(choice, *values):
        return light_spec(*values) if choice == "custom" else ""

    for control in [lighting, *controls]:
        control.change(spec, [lighting, *controls], light, api_visibility="private", queue=False)
    lighting.change(lambda choice: gr.Accordion(open=choice == "custom"), lighting, custom_box,
                    api_visibility="private", queue=False)


def wire_panel(services: Services, state, parts: list, question, ask, answer, source, queue, queued) -> None:
    """A judge panel's own events: the frame slider, questions, and adding the result to the spot-check queue."""
    from webapp.panel import frame_overlay

    def show_frame(token, index, request: gr.Request):
        try:
            judged = services.judged(token, request)
        except gr.Error:
            return gr.skip()
        return services.files.image(session_name(request), frame_overlay(judged, index))

    def answer_question(token, data, text, request: gr.Request):
        try:
            return f"**Q:** {markdown_text(text or '')}  \n**A:** {services.ask_kept(token, data, text, request)}"
        except gr.Error as err:
            return warning(err.message)

    parts[-1].change(show_frame, [state, parts[-1]], parts[-2], api_visibility="private", queue=False)
    queue.click(services.queue_for_spotcheck, state, queued, api_visibility="private", queue=False)
    for trigger in (ask.click, question.submit):
        trigger(answer_question, [state, source, question], answer, api_visibility="private",
                concurrency_limit=1, concurrency_id="heavy")  # the LMM judge answers on the same device
