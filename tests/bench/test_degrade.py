"""The benchmark's distortion families on a rendered turntable: shapes, locality, strength that grows
with severity, seeds, bad input, expected categories and the region masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from face_nerf.errors import NoFaceError
from bench.degrade import (BEYOND_FACE, FAMILIES, GLOBAL, HEAD, LADDER_REGIONS, REGION_CATEGORY, SEVERITIES, STRETCH,
                           WARP_AMPLITUDE, background_colour, clip_region_masks, degrade, expected_category, head_masks,
                           stretch_mask, warp_field)
from judge.result import CATEGORIES
from tests.conftest import EXAMPLES

TECHNICAL_GLOBAL = ("blur", "noise", "jpeg", "exposure", "colour", "flicker")


@pytest.fixture(scope="module")
def clip():
    """[8, 256, 256, 3] uint8 turntable of the astronaut example, frame 0 frontal."""
    import torch

    from face_nerf.export import render_views, turntable_poses
    from face_nerf.pipeline import reconstruct

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy 2-core machine, two spinning threads make this render ~7x slower
    try:
        frames, _ = render_views(reconstruct(EXAMPLES["astronaut"]).field, turntable_poses(8, 45.0), 256)
    finally:
        torch.set_num_threads(threads)
    return frames


@pytest.fixture(scope="module")
def masks(clip):
    """The ladder regions' masks, the head's (``head_masks``) and the stretch of frames."""
    masks = clip_region_masks(clip)
    return {**masks, **head_masks(clip, masks["face"]), STRETCH: stretch_mask(clip)}


def grey(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float64).mean(-1)


def ladder(clip, family, mask=None, seed=0):
    """The clean clip followed by its five rungs."""
    return [clip] + [degrade(clip, family, s, mask=mask, seed=seed) for s in SEVERITIES]


def rising(values) -> bool:
    return bool(np.all(np.diff(values) > 0))


# --- every family ------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_rung_is_a_new_uint8_clip_and_the_input_is_untouched(clip, masks, family):
    before = clip.copy()
    scope = FAMILIES[family].scopes[0]
    for severity in SEVERITIES:
        out = degrade(clip, family, severity, mask=None if scope == GLOBAL else masks[scope], seed=1)
        assert out.shape == clip.shape and out.dtype == np.uint8
        assert not np.shares_memory(out, clip)
        assert not np.array_equal(out, clip)
    np.testing.assert_array_equal(clip, before)


def test_the_family_table_is_consistent():
    for name, family in FAMILIES.items():
        assert family.name == name and family.breaks in ("technical", "structure", "style") and family.description
        assert set(family.scopes) <= {GLOBAL, STRETCH, BEYOND_FACE, HEAD, *LADDER_REGIONS}
    assert FAMILIES["warp"].breaks == FAMILIES["hole"].breaks == "structure"
    assert set(REGION_CATEGORY) == set(LADDER_REGIONS) and set(REGION_CATEGORY.values()) <= set(CATEGORIES)


@pytest.mark.parametrize("family", TECHNICAL_GLOBAL)
def test_global_effects_reach_every_region(clip, masks, family):
    diff = np.abs(degrade(clip, family, 3, seed=2).astype(np.float64) - clip).max(-1)
    for region in LADDER_REGIONS:
        assert diff[masks[region] > 0.9].mean() > 1.0, region
    if family in ("noise", "colour", "flicker", "exposure"):  # these change the plain background too
        assert (diff > 0).mean() > 0.5


LOCAL = [(family, scope) for family in sorted(FAMILIES) for scope in FAMILIES[family].scopes
         if scope != GLOBAL and family != "bleed"]  # bleeding changes only the rim of its mask (tested below)


@pytest.mark.parametrize("family,region", LOCAL)
def test_local_effects_stay_inside_their_mask(clip, masks, family, region):
    mask = masks[region]
    diff = np.abs(degrade(clip, family, 4, mask=mask, seed=3).astype(np.float64) - clip).max(-1)
    assert diff[mask == 0].max() == 0
    assert diff[mask > 0.9].mean() > 3.0
    assert (diff > 0).mean() < 2.0 * (mask > 0).mean()


# --- strength grows with severity ---------------------------------------------------------------------

def test_blur_lowers_laplacian_energy(clip):
    energy = [np.mean([ndimage.laplace(frame) ** 2 for frame in grey(rung)]) for rung in ladder(clip, "blur")]
    assert rising(-np.array(energy))
    assert energy[-1] < 0.05 * energy[0]


def test_noise_raises_high_pass_deviation_and_is_fresh_per_frame(clip):
    def high_pass(frames):
        g = grey(frames)
        return (g - ndimage.gaussian_filter(g, (0, 2, 2))).std()

    assert rising([high_pass(rung) for rung in ladder(clip, "noise")])
    flat = np.full((4, 64, 64, 3), 128, np.uint8)
    residual = degrade(flat, "noise", 3).astype(np.float64) - flat
    assert abs(residual.std() - 13.0) < 0.5  # sigma 13 levels at severity 3
    assert abs(np.corrcoef(residual[0].ravel(), residual[1].ravel())[0, 1]) < 0.05


def test_jpeg_raises_blockiness_at_8_pixel_borders(clip):
    def blockiness(frames):
        steps = np.abs(np.diff(grey(frames), axis=2))
        border = np.arange(steps.shape[2]) % 8 == 7
        return steps[..., border].mean() - steps[..., ~border].mean()

    values = [blockiness(rung) for rung in ladder(clip, "jpeg")]
    assert rising(values) and values[1] > values[0] + 0.5


def test_exposure_clips_more_and_most_of_the_face_at_5(clip, masks):
    face = masks["face"] > 0.5
    clipped = [(rung.max(-1) == 255)[face].mean() for rung in ladder(clip, "exposure")]
    assert rising(clipped) and clipped[0] < 0.01 and clipped[-1] > 0.8


def test_colour_cast_grows_and_a_local_tint_grows(clip, masks):
    mean = clip.reshape(-1, 3).mean(0)
    shift = [np.abs(rung.reshape(-1, 3).mean(0) - mean).max() for rung in ladder(clip, "colour")]
    assert rising(shift)
    eyes = masks["eyes"] > 0.9
    local = [np.abs(rung.astype(np.float64) - clip)[eyes].mean() for rung in ladder(clip, "colour", masks["eyes"])]
    assert rising(local)


def test_flicker_raises_frame_to_frame_brightness_jumps(clip):
    """The jumps the flicker adds to the clip's own (a turning head's brightness changes by itself)."""
    clean = grey(clip).mean((1, 2))
    jumps = [np.abs(np.diff(grey(rung).mean((1, 2)) - clean)).mean() for rung in ladder(clip, "flicker")]
    assert jumps[0] == 0.0 and rising(jumps) and jumps[1] > 0.5


def ramp_clip(t: int = 6, size: int = 256) -> np.ndarray:
    """Red = x, green = y: a warped ramp shows its own displacement field."""
    y, x = np.mgrid[0:size, 0:size]
    frame = np.stack([x, y, np.full_like(x, 128)], -1).astype(np.uint8)
    return np.repeat(frame[None], t, axis=0)


def test_warp_displacement_grows_to_its_amplitude_and_changes_over_time():
    ramp = ramp_clip()
    inner = (slice(None), slice(12, -12), slice(12, -12))
    for severity in SEVERITIES:
        moved = degrade(ramp, "warp", severity, seed=4).astype(np.float64) - ramp
        dx, dy = moved[inner + (0,)], moved[inner + (1,)]
        assert abs(np.abs(dx).max() - WARP_AMPLITUDE[severity - 1]) <= 0.6
        assert abs(np.abs(dy).max() - WARP_AMPLITUDE[severity - 1]) <= 0.6
    small = ramp_clip(size=128)  # amounts are for 256 px and scale with the frame
    moved = degrade(small, "warp", 5, seed=4).astype(np.float64) - small
    assert abs(np.abs(moved[:, 12:-12, 12:-12, 0]).max() - WARP_AMPLITUDE[4] / 2) <= 0.6
    # Not rigid: the displacement differs between frames and across the frame.
    field = warp_field(ramp.shape, 3, np.random.default_rng(4))
    assert np.abs(field[1] - field[0]).max() > 2.0
    assert np.abs(field[0] - field[3]).max() > 2.0
    assert field[0].std(axis=(1, 2)).min() > 1.0


def test_local_warp_is_weighted_by_the_mask():
    ramp = ramp_clip()
    mask = np.zeros(ramp.shape[:3], np.float32)
    mask[:, 100:160, 100:160] = 1.0
    moved = np.abs(degrade(ramp, "warp", 5, mask=mask, seed=4).astype(np.float64) - ramp)[..., :2].max(-1)
    assert moved[:, 110:150, 110:150].max() >= 6 and moved[mask == 0].max() == 0


def test_smear_changes_its_region_more_with_severity(clip, masks):
    mouth = masks["mouth"] > 0.9
    change = [np.abs(rung.astype(np.float64) - clip)[mouth].mean() for rung in ladder(clip, "smear", masks["mouth"])]
    assert rising(change)


def test_holes_show_more_background_with_severity(clip, masks):
    background = background_colour(clip).astype(np.int16)
    for region in FAMILIES["hole"].scopes:
        inside = masks[region] > 0.5
        shown = [(np.abs(rung.astype(np.int16) - background).max(-1) <= 2)[inside].mean()
                 for rung in ladder(clip, "hole", masks[region])]
        assert rising(shown) and shown[-1] > 0.4, region


def test_a_stretch_of_frames_is_degraded_and_the_rest_left_alone(clip, masks):
    stretch = masks[STRETCH]
    assert stretch.shape == clip.shape[:3] and set(np.unique(stretch)) == {0.0, 1.0}
    hit = np.nonzero(stretch.reshape(len(clip), -1).max(1))[0]
    assert list(hit) == list(range(len(clip) // 3, 2 * len(clip) // 3))
    noisy = degrade(clip, "noise", 5, mask=stretch, seed=1)
    changed = np.abs(noisy.astype(np.int16) - clip).reshape(len(clip), -1).max(1) > 0
    assert list(np.nonzero(changed)[0]) == list(hit)


def test_head_masks_cover_the_head_and_leave_out_the_face(clip, masks):
    head, beyond, face = masks[HEAD] > 0.5, masks[BEYOND_FACE] > 0.5, masks["face"] > 0.5
    background = np.abs(clip.astype(np.int16) - background_colour(clip)).max(-1) <= 2
    assert (head & background).mean() < 0.001 and head.mean() > 0.15
    assert not (beyond & face).any() and beyond.sum() > 0.3 * head.sum()  # hair, ears and neck beyond the face


def test_face_only_turns_the_head_beyond_the_face_into_background(clip, masks):
    background = background_colour(clip).astype(np.float64)
    beyond, face = masks[BEYOND_FACE] > 0.95, masks["face"] > 0.5
    away = [np.abs(rung.astype(np.float64) - background).max(-1)[beyond].mean()
            for rung in ladder(clip, "face_only", masks[BEYOND_FACE])]
    assert rising(-np.array(away)) and away[-1] < 0.1 * away[0]
    np.testing.assert_array_equal(degrade(clip, "face_only", 5, masks[BEYOND_FACE])[face & (masks[BEYOND_FACE] == 0)],
                                  clip[face & (masks[BEYOND_FACE] == 0)])


def test_bleeding_changes_the_heads_rim_more_than_its_middle(clip, masks):
    head = masks[HEAD]
    inner = ndimage.binary_erosion(head > 0.5, iterations=30, structure=np.ones((1, 3, 3)))
    rim = (head > 0.5) & ~ndimage.binary_erosion(head > 0.5, iterations=4, structure=np.ones((1, 3, 3)))
    change = [np.abs(rung.astype(np.float64) - clip).max(-1) for rung in ladder(clip, "bleed", head)]
    assert rising([c[rim].mean() for c in change])
    assert change[-1][rim].mean() > 5 * change[-1][inner].mean() and change[-1][inner].mean() < 2.0


def test_stylise_posterises_and_lowres_loses_detail(clip):
    colours = [len(np.unique(rung[0].reshape(-1, 3), axis=0)) for rung in ladder(clip, "stylise")]
    assert rising(-np.array(colours)) and colours[-1] < 0.1 * colours[0]
    energy = [np.mean([ndimage.laplace(frame) ** 2 for frame in grey(rung)]) for rung in ladder(clip, "lowres")]
    assert rising(-np.array(energy)) and energy[-1] < 0.2 * energy[0]


# --- seeds, input checks, categories -------------------------------------------------------------------

def test_the_same_seed_repeats_and_another_seed_differs(clip, masks):
    for family, mask in (("noise", None), ("flicker", None), ("warp", None), ("smear", masks["hair"])):
        first = degrade(clip, family, 3, mask=mask, seed=7)
        np.testing.assert_array_equal(first, degrade(clip, family, 3, mask=mask, seed=7))
        np.testing.assert_array_equal(first, degrade(clip, family, 3, mask=mask, seed=np.random.default_rng(7)))
        assert not np.array_equal(first, degrade(clip, family, 3, mask=mask, seed=8)), family


def test_bad_input_is_a_clear_error(clip, masks):
    with pytest.raises(ValueError, match=r"uint8 with a shape of \(T, H, W, 3\)"):
        degrade(clip.astype(np.float32), "blur", 1)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        degrade(clip[0], "blur", 1)
    for severity in (0, 6, 2.5, True):
        with pytest.raises(ValueError, match="severity must be an integer"):
            degrade(clip, "blur", severity)
    with pytest.raises(ValueError, match="Unknown distortion family 'sharpen'. Known: blur, noise, jpeg"):
        degrade(clip, "sharpen", 1)
    with pytest.raises(ValueError, match="inside a region only"):
        degrade(clip, "hole", 1)
    with pytest.raises(ValueError, match="whole frame only"):
        degrade(clip, "lowres", 1, mask=masks["eyes"])
    with pytest.raises(ValueError, match="mask must have a shape"):
        degrade(clip, "blur", 1, mask=masks["eyes"][0])
    with pytest.raises(ValueError, match=r"mask values must lie in \[0, 1\]"):
        degrade(clip, "blur", 1, mask=2.0 * masks["eyes"])
    with pytest.raises(ValueError, match="used with scopes"):
        expected_category("hole", GLOBAL)


def test_expected_categories():
    assert expected_category("blur", GLOBAL) == "Blurring/Exposure/Grain"
    assert expected_category("flicker", GLOBAL) == "Blurring/Exposure/Grain"
    assert expected_category("warp", GLOBAL) == "Head Structure"
    assert expected_category("warp", "mouth") == "Mouth"
    assert expected_category("hole", "eyes") == "Overlap/Blending"
    assert expected_category("colour", "hair") == "Hair"
    assert expected_category("smear", "cheek") == "Facial Feature"
    assert expected_category("noise", "neck") == "Accessories/Cloth"
    assert expected_category("noise", STRETCH) == "Blurring/Exposure/Grain"
    assert expected_category("face_only", BEYOND_FACE) == "Head Structure"
    assert expected_category("bleed", HEAD) == "Overlap/Blending"
    assert expected_category("stylise", GLOBAL) == "No Distortion"  # clean as an image; authenticity falls
    for family in FAMILIES.values():
        for scope in family.scopes:
            assert expected_category(family.name, scope) in CATEGORIES


# --- region masks ----------------------------------------------------------------------------------------

def test_background_colour_is_the_render_backdrop(clip):
    from face_nerf.export import BACKGROUND

    np.testing.assert_allclose(background_colour(clip), np.array(BACKGROUND) * 255, atol=2)


def test_region_masks_are_soft_placed_and_present_in_the_frontal_view(clip, masks):
    assert set(clip_region_masks(clip[:2])) == {*LADDER_REGIONS, "face"}
    for name in (*LADDER_REGIONS, "face"):
        mask = masks[name]
        assert mask.shape == clip.shape[:3] and mask.dtype == np.float32
        assert 0.0 <= mask.min() and mask.max() <= 1.0
        assert (mask[0] > 0.5).sum() > 50, name  # frame 0 looks at the camera
        assert 0 < ((mask > 0) & (mask < 1)).sum(), name  # soft edges
    rows = np.arange(clip.shape[1], dtype=np.float64)[:, None]

    def mean_y(mask):
        return (mask * rows).sum() / mask.sum()

    for t in range(len(clip)):
        heights = [mean_y(masks[name][t]) for name in ("hair", "eyes", "mouth", "neck")]
        assert rising(heights), t  # top to bottom
    # Eyes, mouth and cheek lie on the face.
    for name in ("eyes", "mouth", "cheek"):
        assert (masks["face"][masks[name] > 0.5] > 0.5).mean() > 0.9, name


def test_frames_without_a_face_take_the_nearest_frames_masks(clip):
    frames = clip[:5].copy()
    frames[3] = background_colour(clip)
    masks = clip_region_masks(frames)
    for mask in masks.values():
        np.testing.assert_array_equal(mask[3], mask[2])
    with pytest.raises(NoFaceError, match="No face found"):
        clip_region_masks(np.repeat(frames[3:4], 2, axis=0))
