"""Small parts of the page: the compare view, the upload check, an example click, an annotator's pace."""

from __future__ import annotations

import numpy as np

from webapp.compare import side_by_side
from webapp.create_tab import EXAMPLES, example_photo
from webapp.inputs import check_upload
from webapp.spotcheck import items_per_hour


def test_side_by_side_puts_strips_next_to_each_other_under_wrapped_captions():
    a, b = np.zeros((64, 192, 3), np.uint8), np.full((64, 192, 3), 200, np.uint8)
    short = side_by_side([a, b], ("original", "edited"))
    long = side_by_side([a, b], ("original", "edited: applied: lipstick -> #c8102e (normal), irises -> #2a62d8 "
                                              "(normal), hair -> #8a8a8a (strong)"))
    assert short.shape[1] == long.shape[1] == 2 * 192 + 12 and short.dtype == np.uint8
    assert long.shape[0] > short.shape[0] > 64  # the long caption wraps onto more lines instead of being cut
    assert np.array_equal(long[-64:, :192], a) and np.array_equal(long[-64:, -192:], b)


def test_an_upload_that_is_not_an_image_is_taken_out_with_a_message(tmp_path):
    from PIL import Image

    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    photo, message = check_upload({"path": str(text), "orig_name": "notes.jpg"})
    assert photo is None and "notes.jpg is not an image that can be read" in message and "JPEG, PNG" in message
    good = tmp_path / "ok.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(good)
    photo, message = check_upload({"path": str(good), "orig_name": "ok.png"})
    assert message == "" and photo is not None  # left as uploaded (gr.skip())


def test_an_annotators_pace_in_items_per_hour():
    now = 10_000.0
    assert items_per_hour([], now) is None and items_per_hour([now - 10], now) is None
    assert items_per_hour([now - 60, now - 30, now], now) == 2 / 60 * 3600  # two intervals in a minute
    assert items_per_hour([now - 7200, now - 60, now], now) == 60.0  # only the last hour counts


def test_a_clicked_example_names_its_photo_and_nothing_else():
    assert example_photo((1, ["anything shown"])) == EXAMPLES[1]
    assert example_photo([0, None]) == EXAMPLES[0]
    for clicked in (None, (), (len(EXAMPLES), None), (-1, None), ("0", None)):
        assert example_photo(clicked) is None


def _steps(*steps, fail=None):
    yield from steps
    if fail is not None:
        raise fail


def test_page_steps_send_each_file_once_and_keep_the_last_mesh_until_the_new_one():
    import gradio as gr

    from webapp.create_tab import page_steps

    skip = gr.skip()
    out = list(page_steps(_steps(("v.mp4", None, None, None, None), ("v.mp4", "m.glb", "s.png", None, None),
                                 ("v.mp4", "m.glb", "s.png", {"q": 1}, "tok")), lambda token: [token] * 6, 6))
    assert [len(o) for o in out] == [14] * 3
    first, second, last = out
    assert first[:4] == ("", "v.mp4", skip, None)  # the old mesh stays (its 3D viewer too); the old strip goes
    assert first[6] is None and first[7] is None and first[12:] == ("", None)  # the panel cleared
    assert second[1:4] == (skip, "m.glb", "s.png") and all(p == skip for p in second[6:12])
    assert last[1:6] == (skip, skip, skip, {"q": 1}, "tok") and last[6:12] == ("tok",) * 6 and last[13] == "tok"


def test_page_steps_clear_the_old_mesh_when_the_new_one_fails_after_the_video():
    import gradio as gr

    from webapp.create_tab import page_steps

    skip = gr.skip()
    out = list(page_steps(_steps(("v.mp4", None, None, None, None), fail=gr.Error("The mesh could not be made.")),
                          lambda token: [], 6))
    message, video, mesh, *rest = out[-1]
    assert "The mesh could not be made." in message and video == skip and mesh is None
    assert len(out[-1]) == 14 and all(r == skip for r in rest[:-1]) and rest[-1] is None

    before = list(page_steps(_steps(fail=RuntimeError("boom")), lambda token: [], 6))[-1]
    assert "Something went wrong on the server (RuntimeError)" in before[0] and "boom" not in before[0]
    assert before[2] == skip  # nothing new shown: the old result stays whole
