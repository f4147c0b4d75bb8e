"""What the page says about a result, in plain words for people in a meeting; backends and raw values
go in a collapsed details line underneath. Everything a visitor typed is escaped (``markdown_text``; in the details, HTML escapes)."""

from __future__ import annotations

import html

from webapp.text import markdown_text

BACKEND_WORDS = {  # backend names (reports, judgements) -> what the page calls them
    "embedded-head-model": "the offline head-model reconstruction",
    "embedded-editor": "the offline editor",
    "diffusion-editor": "Stable Diffusion",
    "embedded-judge": "the offline judge",
}


def backend_words(name: str | None) -> str:
    """A backend's name for people ("lmm-judge (Qwen...)" -> "the vision-language judge")."""
    name = str(name or "")
    if name.startswith("lmm-judge"):
        return "the vision-language judge"
    return BACKEND_WORDS.get(name, name or "none")


def details(summary: str, lines: list[str]) -> str:
    """A collapsed HTML details block of plain text lines. Markdown is not read inside HTML, so the lines
    are HTML-escaped here (not Markdown-escaped: a backslash would show)."""
    body = "<br>".join(html.escape(str(line), quote=False) for line in lines)
    return f"<details><summary>{summary}</summary>{body}</details>"


def status_line(report: dict | None, judged=None, example: str | None = None) -> str:
    """What was made and how, in words, then the backends and raw values in a collapsed details line.

    Args:
        report: the pipeline's report (``Outputs.report``).
        judged: the kept judgement (``webapp.services.Judged``), or None.
        example: the example photo's name when this is an example's prepared result.
    """
    if not report:
        return ""
    edit = report.get("edit") or {}
    lighting = report.get("lighting") or {}
    applied = [a.get("phrase") or a.get("target") for a in edit.get("applied") or []]
    edited = f"edited with {markdown_text(', '.join(applied))}" if applied else "no edit"
    light = markdown_text(lighting.get("name") or "original")
    fixed = "turning with the view" if lighting.get("fixed_to") == "camera" else "fixed in place"
    light_words = "the photo's own light" if light == "original" else f"{light} light, {fixed}"
    seconds = sum(v for k, v in (report.get("timings_s") or {}).items() if isinstance(v, (int, float)))
    text = (f"Example result for {markdown_text(example)}: {edited}, lit by {light_words}. Press Generate to make it "
            "yourself, or upload your own photo." if example else
            f"Made from your photo in {seconds:.1f} s: {edited}, lit by {light_words}.")
    if judged is not None:
        text += f" Judged by {markdown_text(backend_words(judged.result.backend))}."
    raw = [f"reconstruction: {report.get('backend')}",
           f"editor: {edit.get('backend') or 'none'}; {edit.get('summary', 'no edit')}",
           f"lighting: {lighting.get('name') or 'original'} ({lighting.get('fixed_to')}-fixed)"]
    if judged is not None:
        raw.append(f"judge: {judged.result.backend}")
    mesh = report.get("mesh") or {}
    if mesh:
        raw.append(f"mesh: {mesh.get('vertices')} vertices, {mesh.get('faces')} faces ({mesh.get('kind')})")
    return text + "\n\n" + details("Details: backends and settings", raw)


def judge_line(result) -> str:
    """The judge panel's summary: the judge's own paragraph, what it found, and the backend in details."""
    found = ", ".join(f"**{markdown_text(d.category)}** ({d.probability:.2f})" for d in result.distortions)
    summary = markdown_text(result.summary)
    if result.provenance:  # the summary opens with it: say it where the eye goes
        first, _, rest = summary.partition(". ")
        summary = f"🔏 **{first}.** {rest}"
    return (f"{summary}  \n**Found:** {found or 'nothing'}\n\n"
            + details("Details: judge", [f"judge: {result.backend} ({backend_words(result.backend)})",
                                         f"frames analysed: {len(result.frame_indices)}"]))
