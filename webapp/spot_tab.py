"""The Spot-check tab, keyboard first for annotators rating hundreds of items: 1-5 set the quality
band, Shift+1-5 the authenticity band, letters toggle distortions, Enter submits and loads the next
item. The form fits one 1280x720 screen, the verdict names the item it is about, and the progress line
shows the annotator's pace. Hidden where spot-checks are not offered (a public Space without an
annotator key); every handler checks the key itself, since hidden events can still be called."""

from __future__ import annotations

import json
import uuid

import gradio as gr

from judge.result import CATEGORIES, LEVELS
from webapp.spotcheck import SpotCheck
from webapp.text import markdown_text

BANDS = tuple(20 * i + 10 for i in range(len(LEVELS)))  # the value a level key sets: the middle of its band
CATEGORY_KEYS = {"e": "Eye", "m": "Mouth", "h": "Hair", "f": "Facial Feature", "s": "Head Structure",
                 "o": "Overlap/Blending", "b": "Blurring/Exposure/Grain", "a": "Accessories/Cloth", "n": "No Distortion"}
assert set(CATEGORY_KEYS.values()) == set(CATEGORIES)
SHORTCUTS = ("**Keys:** **1-5** quality (" + ", ".join(f"{i + 1} {w}" for i, w in enumerate(LEVELS)) + ") · "
             "**Shift+1-5** authenticity · letters toggle distortions (shown in brackets) · **Enter** submits and "
             "loads the next · click the strip to mark spots")
# The page's key handler (installed in <head> by ``webapp.page``); it acts only while this tab shows, and
# never while the annotator types in a text box (Enter there: the name starts, the comment submits).
KEYBOARD_JS = """
<script>
(() => {
  const BANDS = %s, KEYS = %s;
  const shown = () => { const el = document.getElementById("spot-quality"); return el && el.offsetParent !== null; };
  function setSlider(id, value) {
    const box = document.getElementById(id);
    if (!box) return;
    for (const input of box.querySelectorAll("input[type=number], input[type=range]")) {
      input.value = value;
      input.dispatchEvent(new Event("input", {bubbles: true}));
      input.dispatchEvent(new Event("change", {bubbles: true}));
    }
  }
  function toggle(name) {
    for (const label of document.querySelectorAll("#spot-categories label")) {
      if (label.textContent.trim().startsWith(name + " [")) { label.querySelector("input").click(); return; }
    }
  }
  document.addEventListener("keydown", (ev) => {
    if (!shown() || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    const typing = t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && !["checkbox", "radio", "range", "button"].includes(t.type)));
    if (typing) {
      if (ev.key === "Enter" && t.closest("#annotator")) setTimeout(() => t.blur(), 0);
      return;
    }
    const digit = ev.code && ev.code.startsWith("Digit") ? Number(ev.code.slice(5)) : NaN;
    if (digit >= 1 && digit <= BANDS.length) {
      setSlider(ev.shiftKey ? "spot-authenticity" : "spot-quality", BANDS[digit - 1]);
      ev.preventDefault();
    } else if (!ev.shiftKey && KEYS[ev.key.toLowerCase()]) {
      toggle(KEYS[ev.key.toLowerCase()]);
      ev.preventDefault();
    } else if (ev.key === "Enter") {
      const submit = document.getElementById("spot-submit");
      if (submit) submit.click();
      ev.preventDefault();
    }
  });
})();
</script>
""" % (json.dumps(list(BANDS)), json.dumps(CATEGORY_KEYS))
# The rating form into view (the page's header stays above it): it fits one 1280x720 screen.
SCROLL_JS = """() => { const el = document.getElementById("spot-progress");
  if (el) el.scrollIntoView({block: "start"}); }"""
# Opening the page with ?tab=spot (an annotator's bookmark) shows this tab with the name box focused.
OPEN_JS = """() => {
  if (new URLSearchParams(window.location.search).get("tab") !== "spot") return;
  const tab = [...document.querySelectorAll("button[role=tab]")].find(b => b.textContent.trim() === "Spot-check");
  if (tab) tab.click();
  setTimeout(() => { const name = document.querySelector("#annotator input, #annotator textarea"); if (name) name.focus(); }, 300);
}"""


def spot_check_tab(spot: SpotCheck) -> None:
    """Lay out the Spot-check tab and wire its events."""
    problem = spot.check() if spot.enabled else None
    with gr.Tab("Spot-check", id="spot", visible=spot.enabled):
        if problem:
            gr.Markdown(f"⚠️ {markdown_text(problem)} Creating and judging work as usual.", elem_id="spot-problem")
        spot_item, spot_clicks, spot_rating = gr.State(None), gr.State([]), gr.State("")
        with gr.Row(equal_height=True):
            annotator = gr.Textbox(label="Your name (Enter starts)", elem_id="annotator", scale=3)
            key = gr.Textbox(label="Annotator key", type="password", elem_id="annotator-key", scale=2,
                             visible=spot.key is not None)
            start = gr.Button("Start / next item", elem_id="spot-start", scale=1)
        progress = gr.Markdown("Rate results yourself; the judge's verdict stays hidden until you submit.",
                               elem_id="spot-progress")
        gr.Markdown(SHORTCUTS, elem_id="spot-keys")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                video = gr.Video(label="Turntable", autoplay=True, loop=True, elem_id="spot-video", height=210)
                strip = gr.Image(label="3-view strip: click the distorted spots", interactive=False,
                                 elem_id="spot-strip", height=150)
                undo = gr.Button("Undo last click", size="sm")
            with gr.Column(scale=1, min_width=300):
                quality = gr.Slider(0, 100, value=50, step=1, label="Quality (1-5)", elem_id="spot-quality")
                authenticity = gr.Slider(0, 100, value=50, step=1, label="Authenticity (Shift+1-5)",
                                         elem_id="spot-authenticity")
                keys = {v: k for k, v in CATEGORY_KEYS.items()}
                categories = gr.CheckboxGroup([(f"{c} [{keys[c]}]", c) for c in CATEGORIES],
                                              label="Distortions you see", elem_id="spot-categories")
                with gr.Row(equal_height=True):
                    comment = gr.Textbox(label="Comment (Enter submits)", elem_id="spot-comment", scale=3)
                    submit = gr.Button("Submit and next (Enter)", variant="primary", elem_id="spot-submit", scale=2)
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
    for trigger in (start.click, annotator.submit):
        trigger(next_item, [annotator, key], loaded + fresh, **light).then(None, js=SCROLL_JS, **light)
    strip.select(spot.click, [spot_item, spot_clicks, key], [strip, spot_clicks], **light)
    undo.click(spot.undo, [spot_item, spot_clicks, key], [strip, spot_clicks], **light)
    rate = [annotator, spot_item, quality, authenticity, categories, spot_clicks, comment, spot_rating, key]
    for trigger in (submit.click, comment.submit):
        trigger(submit_and_next, rate, [verdict, *loaded, *fresh], **light)
