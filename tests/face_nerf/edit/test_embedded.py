"""The embedded editor on the example faces: each edit family lands where it should, in every view."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from face_nerf.edit import EmbeddedEditor
from face_nerf.export import STRIP_YAWS, TurntableFrame, render_views
from face_nerf.quality import mean_delta_e, mean_lab, mouth_width_ratio, region_masks
from face_nerf.regions import BEARD_AREA, REGION_ID, SKIN_REGIONS
from scipy.ndimage import binary_dilation

WHOLE_SKIN = SKIN_REGIONS + ("ears", "neck")


@pytest.fixture(scope="module")
def editor():
    return EmbeddedEditor()


def _strip(field, size=256):
    views, _ = render_views(field, [TurntableFrame(yaw, 0.0) for yaw in STRIP_YAWS], size)
    return views


@pytest.fixture(scope="module")
def base_strips():
    return {}


def _base(example_run, base_strips):
    name, _, _, recon, _ = example_run
    if name not in base_strips:
        views = _strip(recon.field)
        base_strips[name] = (views, [region_masks(v) for v in views])
    return base_strips[name]


def test_red_lipstick_in_every_view_and_nowhere_else(example_run, editor, base_strips):
    _, _, _, recon, _ = example_run
    views, masks = _base(example_run, base_strips)
    edited = _strip(editor.edit(recon.field, "red lipstick").field)
    rise = [mean_lab(edited[i], masks[i]["lips"])[1] - mean_lab(views[i], masks[i]["lips"])[1] for i in range(3)]
    assert rise[1] >= 10 and rise[0] >= 6 and rise[2] >= 6
    skin = np.logical_or.reduce([masks[1][r] for r in SKIN_REGIONS if r not in BEARD_AREA])
    assert mean_delta_e(views[1], edited[1], skin) <= 3.0


def test_blue_eyes(example_run, editor, base_strips):
    _, _, _, recon, _ = example_run
    views, masks = _base(example_run, base_strips)
    edited = _strip(editor.edit(recon.field, "blue eyes").field)
    assert mean_lab(edited[1], masks[1]["irises"])[2] - mean_lab(views[1], masks[1]["irises"])[2] <= -8


def test_grey_hair_loses_chroma(example_run, editor, base_strips):
    from skimage.color import rgb2lab

    _, _, _, recon, _ = example_run
    views, masks = _base(example_run, base_strips)
    edited = _strip(editor.edit(recon.field, "grey hair").field)

    def chroma(frame):
        lab = rgb2lab(frame / 255.0)[masks[1]["hair"]]
        return np.hypot(lab[:, 1], lab[:, 2]).mean()

    assert chroma(edited[1]) <= 0.6 * chroma(views[1])


def test_big_smile_widens_the_mouth_and_keeps_a_face_in_every_frame(example_run, editor, base_strips):
    from face_nerf.quality import track_turntable

    _, _, _, recon, outputs = example_run
    views, _ = _base(example_run, base_strips)
    smiling = editor.edit(recon.field, "big smile").field
    frames, _ = render_views(smiling, outputs.poses, 256)
    assert mouth_width_ratio(frames[0]) >= 1.08 * mouth_width_ratio(views[1])
    assert track_turntable(frames, [p.yaw for p in outputs.poses]).detection_rate == 1.0


@pytest.mark.parametrize("prompt, inside", [
    ("blush", ("cheeks",)), ("eyeshadow", ("eyelids",)), ("eyeliner", ("eyelids",)), ("purple lipstick", ("lips",)),
    ("black eyebrows", ("eyebrows",)),
    ("older", SKIN_REGIONS + ("hair", "eyebrows", "eyelids")), ("younger", SKIN_REGIONS + ("lips",)),
    ("tanned", WHOLE_SKIN), ("pale", WHOLE_SKIN), ("sunburnt", ("nose", "cheeks", "forehead")),
    ("zombie", WHOLE_SKIN + ("lips", "eyelids", "irises")), ("vampire", WHOLE_SKIN + ("lips", "irises", "eyelids")),
    ("clown paint", WHOLE_SKIN + ("lips", "eyelids")), ("darker skin", WHOLE_SKIN), ("lighter hair", ("hair",)),
])
def test_colour_edits_stay_in_their_regions(example_run, editor, prompt, inside):
    _, _, _, recon, _ = example_run
    before = recon.field
    result = editor.edit(before, prompt)
    change = (result.field.photo - before.photo).abs().sum(1)[0]
    labels = before.photo_labels
    ids = torch.tensor([REGION_ID[r] for r in inside])
    in_region = torch.isin(labels, ids)
    near = torch.from_numpy(binary_dilation(in_region.numpy(), iterations=12))
    assert change[in_region].mean() > 0.01
    assert change[~near].mean() < 0.1 * change[in_region].mean()
    assert len(result.applied) == 1 and result.backend == "embedded-editor"


@pytest.mark.parametrize("prompt, moved, still", [
    ("smile", 61, 10), ("frown", 291, 234), ("raised eyebrows", 105, 152), ("open mouth", 17, 10)])
def test_expressions_move_the_surface_locally(example_run, editor, prompt, moved, still):
    _, _, _, recon, _ = example_run
    field = recon.field
    edited = editor.edit(field, prompt).field
    ball = torch.randn(200, 3, generator=torch.Generator().manual_seed(0)) * 0.02
    near, far = field.landmarks[moved] + ball, field.landmarks[still] + ball
    assert (edited.sdf(near) - field.sdf(near)).abs().max() > 0.005
    assert (edited.sdf(far) - field.sdf(far)).abs().max() < 1e-3


def test_sunglasses_add_dark_geometry_in_front_of_the_eyes(example_run, editor):
    _, _, _, recon, _ = example_run
    field = recon.field
    result = editor.edit(field, "sunglasses")
    ray = field.landmarks[468] + torch.linspace(0.05, 0.3, 200)[:, None] * torch.tensor([0.0, 0.0, 1.0])
    assert field.sdf(ray).min() > 0.02  # nothing in front of the eye before
    hit = result.field.sdf(ray).argmin()
    assert result.field.sdf(ray)[hit] < 0.005
    albedo, _ = result.field.attributes(ray[hit][None])
    assert albedo.max() < 0.05  # a dark lens
    assert result.field.overlay_grid is not None and field.overlay_grid is None  # the original is untouched


def test_edits_compose_with_relighting(example_run, editor):
    from face_nerf.lighting import Lighting
    from face_nerf.pipeline import ReconstructionConfig, edit_reconstruction, render_outputs

    _, _, _, recon, _ = example_run
    edited = edit_reconstruction(recon, "red lips, blue eyes", editor)
    outputs = render_outputs(edited, ReconstructionConfig(frames=4, size=64, lighting=Lighting("left")))
    assert outputs.report["edit"]["summary"] == "applied: lips -> #c8102e (normal), irises -> #2a62d8 (normal)"
    assert outputs.report["lighting"]["name"] == "left" and edited.field is not recon.field


def test_empty_prompt_is_no_edit(example_run, editor):
    _, _, _, recon, _ = example_run
    result = editor.edit(recon.field, "")
    assert result.applied == [] and result.field is recon.field and result.summary() == "no edit"
