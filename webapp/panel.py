"""The judge panel: scores, distortion categories, the judge's words, heatmaps over the strip and over
any frame, and questions. Used by the Create tab (a creation's judgement) and the Judge tab."""

from __future__ import annotations

import gradio as gr
import numpy as np

from webapp.sessions import session_name
from webapp.spotcheck import QUEUE_NOTICE
from webapp.words import judge_line

QUESTIONS = ["Which region is worst?", "Is the mouth distorted?", "How realistic is the left profile?",
             "Is it blurry?", "Why?"]


def panel(judged, images: tuple | None = None) -> tuple:
    """The panel's contents for a kept judgement (``webapp.services.Judged``) or None (empty): (scores
    plot, categories plot, summary, strip overlay, frame overlay, frame slider). ``images``: the two
    overlays when they were drawn before (an example's), else they are drawn here."""
    from judge.heatmap import overlay
    from judge.plots import category_figure, score_figure

    if judged is None:
        return None, None, "", None, None, gr.Slider(maximum=1, value=0)
    r = judged.result
    last = max(len(judged.frames) - 1, 0)
    if images is None:
        images = (overlay(r.strip, r.strip_heatmap) if r.strip is not None else None, frame_overlay(judged, last // 2))
    return (score_figure(r), category_figure(r), judge_line(r), *images,
            gr.Slider(minimum=0, maximum=last, value=last // 2, step=1))


def shown_panel(files, judged, request) -> list:
    """``panel``'s contents with its images written into the request's session folder (they show a
    visitor's face, so they go with the session). ``files``: ``webapp.sessions.SessionFiles``."""
    parts = list(panel(judged))
    parts[3:5] = [files.image(session_name(request), image) for image in parts[3:5]]
    return parts


def frame_overlay(judged, index: float) -> np.ndarray | None:
    """One analysed frame with its heatmap laid over it."""
    from judge.heatmap import overlay

    if judged is None or judged.result.frame_heatmaps is None:
        return None
    i = int(np.clip(index or 0, 0, len(judged.frames) - 1))
    return overlay(judged.frames[i], judged.result.frame_heatmaps[i])


def judge_panel(prefix: str, spot_enabled: bool):
    """Lay out the panel. Returns (its components in ``panel``'s order, the question box, the Ask button,
    the answer, (the "Add to the spot-check queue" button, its message line))."""
    with gr.Group(elem_classes="judge-panel"):
        summary = gr.Markdown(elem_id=f"{prefix}-summary")
        with gr.Row(equal_height=False):
            scores = gr.Plot(label="Scores", elem_id=f"{prefix}-scores", min_width=300)
            categories = gr.Plot(label="Distortion categories", elem_id=f"{prefix}-categories", min_width=300)
        with gr.Row(equal_height=False):
            strip = gr.Image(label="Distortion map, 3 views", elem_id=f"{prefix}-strip-heat",
                             height=240, min_width=300)
            with gr.Column(min_width=300):
                frame = gr.Image(label="Distortion over one frame", elem_id=f"{prefix}-frame-heat", height=240)
                slider = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id=f"{prefix}-frame-slider")
        with gr.Row(elem_classes="ask-row"):
            question = gr.Textbox(label="Ask the judge", placeholder="e.g. Is the mouth distorted?",
                                  elem_id=f"{prefix}-question", scale=4, min_width=220)
            ask = gr.Button("Ask", elem_id=f"{prefix}-ask", scale=1, min_width=80)
        gr.Examples([[q] for q in QUESTIONS], inputs=question, label="Questions")
        answer = gr.Markdown(elem_id=f"{prefix}-answer", elem_classes="answer")
    with gr.Row(visible=spot_enabled):
        queue = gr.Button("Add to the spot-check queue", elem_id=f"{prefix}-queue", size="sm", scale=1)
        gr.Markdown(QUEUE_NOTICE, scale=3)
    queued = gr.Markdown(elem_id=f"{prefix}-queued")
    return [scores, categories, summary, strip, frame, slider], question, ask, answer, (queue, queued)
