"""The page: a short "how it works", then the Create, Judge and Spot-check tabs, and the API routes.

``build_demo(services)`` lays it out; nothing heavy is loaded at import. The page's own events report
problems in a message line and leave the panels clean; the API routes (``/generate`` streams the video
before the judgement, ``/relight``, ``/judge``, ``/ask``) raise ``gr.Error``, so API callers get errors
as errors.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from webapp.create_tab import create_tab, gpu
from webapp.inputs import clip_input
from webapp.judge_tab import CLIP_TYPES, judge_tab
from webapp.services import Services
from webapp.spot_tab import KEYBOARD_JS, OPEN_JS, spot_check_tab

MAX_UPLOAD = "32mb"  # every upload route: a turntable of a few seconds is a few MB; photos have a 30 MB limit
HOW_IT_WORKS = ("# FaceLab 3D\n**How it works:** **1** pick an example or upload a face photo → **2** type an edit "
                "if you like (\"older, grey beard\") and choose a light → **3** press **Generate**: a turntable "
                "video, a 3D mesh to download and a judge's verdict, in seconds on a CPU. Nothing you upload is "
                "shown to anyone else.")
CSS = """
.gradio-container {max-width: 1500px !important; padding-top: 4px !important}
#header h1 {margin: 0 0 2px 0; font-size: 1.7rem}
#header p {margin: 0}
#status, #create-summary, #judge-summary {font-size: 1.05rem}
#message p, #judge-message p {color: #b3261e; font-weight: 600; margin: 4px 0}
#prompt-count p {font-size: 0.85rem; color: #666; margin: -6px 0 0 4px}
.answer p {background: #fff6d5; border-left: 5px solid #e0a800; padding: 6px 12px; font-size: 1.15rem; margin: 4px 0}
.js-plotly-plot .modebar-container {display: none !important}
details summary {cursor: pointer; color: #555; font-size: 0.9rem}
@media (max-width: 640px) {
  .ask-row {flex-wrap: wrap !important}
  .ask-row > * {min-width: 100% !important}
  #header h1 {font-size: 1.3rem}
}
"""

def build_demo(services: Services) -> gr.Blocks:
    """The page. API routes: ``/generate``, ``/relight``, ``/judge``, ``/ask``."""
    with gr.Blocks(title="FaceLab 3D") as demo:
        gr.Markdown(HOW_IT_WORKS, elem_id="header")
        with gr.Tabs():
            with gr.Tab("Create", id="create"):
                create = create_tab(services)
            with gr.Tab("Judge", id="judge"):
                judge_tab(services, create.creations)
            spot_check_tab(services.spot)
        _api_routes(services, create)
        demo.load(create.show_first_example, None, create.load_outputs, js=OPEN_JS, api_visibility="private",
                  queue=False)
        demo.unload(services.end_session)
    # The example photos Gradio keeps for every visitor, and their prepared results, are never removed.
    services.files.keep = services.files.keep | frozenset(
        str(Path(p).resolve()) for block in demo.blocks.values() for p in getattr(block, "keep_in_cache", ()))
    return demo


def _api_routes(services: Services, create) -> None:
    """The routes API clients call, on hidden components; they raise errors a caller can act on."""
    with gr.Row(visible=False):
        clip = clip_input(label="clip", file_types=CLIP_TYPES)
        backend = gr.Radio(["embedded", "lmm"], value=services.judges.backend, label="backend")
        data, token = gr.JSON(), gr.State(None)
        question, answer = gr.Textbox(), gr.Textbox()
        generate, relight, judge, ask = (gr.Button() for _ in range(4))
    heavy = dict(concurrency_limit=1, concurrency_id="heavy")
    generate.click(gpu(services.generate_steps), create.inputs, create.api_outputs, api_name="generate", **heavy)
    relight.click(services.relight_steps, create.relight_inputs, create.api_outputs, api_name="relight", **heavy)
    judge.click(services.judge_video, [clip, backend], [data, token], api_name="judge", **heavy)
    ask.click(services.ask, [data, question], answer, api_name="ask")


def launch(demo: gr.Blocks, **options):
    """Serve the page with the app's limits: the queue (40 waiting, one heavy request at a time), the
    upload limit on every upload route, no folder served beyond Gradio's own cache. ``options`` go to
    ``Blocks.launch`` (a port, ``prevent_thread_lock`` in tests)."""
    return demo.queue(max_size=40, default_concurrency_limit=1).launch(
        max_file_size=MAX_UPLOAD, state_session_capacity=16, theme=gr.themes.Soft(text_size="lg"), css=CSS,
        head=KEYBOARD_JS, **options)
