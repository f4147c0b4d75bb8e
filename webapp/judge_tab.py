"""The Judge tab: judge several turntables at once (uploaded, or picked from this session's creations)
and see them ranked side by side: scores, main distortions and strip heatmaps, with the chosen clip
playing above its full judge panel."""

from __future__ import annotations

import gradio as gr

from webapp.create_tab import warning, wire_panel
from webapp.inputs import clip_input
from webapp.panel import judge_panel, shown_panel
from webapp.services import Services
from webapp.sessions import session_name
from webapp.text import markdown_text

CLIP_TYPES = [".mp4", ".webm", ".gif", ".mov", ".mkv", ".avi", "image"]
MAX_CLIPS = 12  # per press of Judge (each takes about 3 s on 2 cores)
TABLE_HEADERS = ["Rank", "Clip", "Quality", "Authenticity", "Main distortions", "Watermark"]


def judge_tab(services: Services, creations: gr.State) -> None:
    """Lay out the Judge tab and wire its events; ``creations``: the Create tab's (label, token) list."""
    ranked, chosen_token = gr.State([]), gr.State(None)
    gr.Markdown("Judge turntable videos of 3D faces from any generator (mp4, webm, gif) or single images. "
                "Upload several to rank them side by side.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            uploads = clip_input(file_count="multiple", label="Turntable videos or images", elem_id="judge-upload",
                                 file_types=CLIP_TYPES)
            picked = gr.CheckboxGroup([], label="Results from this session", elem_id="judge-picked",
                                      info="Creations of the Create tab, judged already")
            backend = gr.Radio(["embedded", "lmm"], value=services.judges.backend, label="Judge",
                               info="lmm: the vision-language judge ($FACELAB_LMM_MODEL; needs a GPU for a full-size "
                                    "model)", visible=services.judges.lmm_model is not None, elem_id="judge-backend")
            run = gr.Button("Judge", variant="primary", elem_id="judge-button", size="lg")
            message = gr.Markdown(elem_id="judge-message")
        with gr.Column(scale=3, min_width=300):
            table = gr.Dataframe(headers=TABLE_HEADERS, label="Ranking (best first)", elem_id="judge-ranking",
                                 interactive=False, wrap=True)
            gallery = gr.Gallery(label="Where each is distorted (-45°, 0°, +45°), best first", columns=3, height=300,
                                 object_fit="contain", elem_id="judge-gallery", allow_preview=True)
            choice = gr.Dropdown([], label="Show a clip", elem_id="judge-choice")
            video = gr.Video(label="The clip", autoplay=True, loop=True, elem_id="judge-video", height=320)
            parts, question, ask, answer, (queue, queued) = judge_panel("judge", services.spot.enabled)
            with gr.Accordion("Judgement (JSON)", open=False):
                data = gr.JSON(label="Judgement", elem_id="judge-json")

    def judge_all(paths, tokens, chosen_backend, made, request: gr.Request, progress=gr.Progress()):
        """Judge every upload (one that fails becomes a line of the message) and rank them with the picked
        creations."""
        from judge.heatmap import overlay

        paths, labels = list(paths or [])[:MAX_CLIPS], dict((t, l) for l, t in made)
        items, problems = [], []
        for i, path in enumerate(paths):
            progress(i / max(len(paths), 1), desc=f"Judging clip {i + 1} of {len(paths)}")
            name = path.rsplit("/", 1)[-1]
            try:
                _, token = services.judge_video(path, chosen_backend, request)
                items.append((name, token))
            except gr.Error as err:
                problems.append(f"{markdown_text(name)}: {markdown_text(err.message)}")
        items += [(labels.get(t, "creation"), t) for t in tokens or []]
        if not items:
            return (warning("Nothing to judge: upload turntable videos, or pick results from this session.")
                    if not problems else "⚠️ " + "  \n⚠️ ".join(problems)), *[gr.skip()] * 4
        scored = [(name, token, services.judged(token, request)) for name, token in items]
        scored.sort(key=lambda s: -(s[2].result.quality.mos + s[2].result.authenticity.mos))
        rows, images = [], []
        for rank, (name, token, judged) in enumerate(scored, 1):
            r = judged.result
            main = ", ".join(d.category for d in r.distortions[:2]) or "nothing"
            rows.append([rank, name, f"{r.quality.mos:.0f} ({r.quality.level})",
                         f"{r.authenticity.mos:.0f} ({r.authenticity.level})", main,
                         r.provenance or "none found"])  # "made with FaceLab 3D (creation ...)"
            strip = services.files.image(session_name(request), overlay(r.strip, r.strip_heatmap)
                                         if r.strip is not None else None)  # only the strip's map, not the panel
            images.append((strip, f"{rank}. {name} · Q {r.quality.mos:.0f} · A {r.authenticity.mos:.0f}"))
        names = [f"{rank}. {name}" for rank, (name, _, _) in enumerate(scored, 1)]
        note = "  \n".join(f"⚠️ {p}" for p in problems)
        return (note, rows, images, gr.Dropdown(choices=names, value=names[0]),
                [(n, token) for n, (_, token, _) in zip(names, scored)])

    def show(name, ranking, request: gr.Request):
        """One ranked clip: its video, its panel, its JSON; old answers cleared."""
        token = dict(ranking).get(name)
        judged = services.judged(token, request) if token else None
        if judged is None:
            return gr.skip(), None, *[gr.skip()] * (len(parts) + 2)
        return (judged.video, token, *shown_panel(services.files, judged, request),
                judged.result.to_dict(), "")

    def pickable(made):
        return gr.CheckboxGroup(choices=[(label, token) for label, token in made])

    creations.change(pickable, creations, picked, api_visibility="private", queue=False)
    run.click(lambda: gr.Button("Judging…", interactive=False), None, run, api_visibility="private", queue=False).then(
        judge_all, [uploads, picked, backend, creations], [message, table, gallery, choice, ranked],
        show_progress_on=[message, table], api_visibility="private", concurrency_limit=1, concurrency_id="heavy").then(
        show, [choice, ranked], [video, chosen_token, *parts, data, answer], api_visibility="private", queue=False).then(
        lambda: gr.Button("Judge", interactive=True), None, run, api_visibility="private", queue=False)
    choice.input(show, [choice, ranked], [video, chosen_token, *parts, data, answer], api_visibility="private",
                 queue=False)
    wire_panel(services, chosen_token, parts, question, ask, answer, data, queue, queued)
