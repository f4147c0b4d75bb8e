"""The hair layer: hair wraps the back, a bald head stays bald, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from face_nerf.appearance.hair import HairConfig, estimate_hair


def test_examples_have_hair_that_wraps_the_back(example_run):
    _, _, _, recon, _ = example_run
    hair, head = recon.hair, recon.head
    scalp = head.region_mask("scalp")
    assert hair.present
    assert (hair.thickness[scalp] > 0).all() and (hair.thickness[~scalp] == 0).all()
    back = scalp & (head.vertices[:, 2] < np.percentile(head.vertices[:, 2], 10))
    assert np.median(hair.thickness[back]) >= HairConfig().short_hair  # (it tapers to the nape's edge)


def test_back_of_the_head_shows_hair_not_background(example_run):
    from face_nerf.export import BACKGROUND, TurntableFrame, render_views

    _, _, _, recon, _ = example_run
    frames, _ = render_views(recon.field, [TurntableFrame(180.0, 0.0)], 128)
    head = np.abs(frames[0].astype(int) - np.array(BACKGROUND) * 255).max(-1) > 8
    mask = recon.analysis.person_mask
    photo = recon.photo.rgb.reshape(-1, 3).astype(float)
    background = photo[mask.ravel() < 0.2].mean(0)
    hair_srgb = 255 * np.clip(hair_colour_srgb(recon.hair.colour), 0, 1)
    rows = np.nonzero(head.any(1))[0]
    head[(rows[0] + rows[-1]) // 2:] = False  # the upper half: the neck below is skin
    pixels = frames[0][head].astype(float)
    nearer_hair = np.linalg.norm(pixels - hair_srgb, axis=1) < np.linalg.norm(pixels - background, axis=1)
    assert head.mean() > 0.1 and nearer_hair.mean() > 0.8  # (the anti-aliased rim is neither)


def hair_colour_srgb(linear: np.ndarray) -> np.ndarray:
    from face_nerf.lighting import linear_to_srgb

    return linear_to_srgb(torch.from_numpy(linear)).numpy()


def test_bald_template_render_has_no_hair(head, corr):
    """The template rendered in skin colour is bald: nothing outside its silhouette, skin on the scalp."""
    from face_nerf.head import fit_head
    from face_nerf.head.correspondence import render_template
    from face_nerf.head.place import place_fitted_head
    from face_nerf.landmarks import detect_landmarks

    render = render_template(head)
    rgb = (render.image * 255).astype(np.uint8)
    landmarks = detect_landmarks(rgb)[0]
    fit = fit_head(landmarks, head, corr)
    placed = place_fitted_head(fit, corr, (rgb.shape[1], rgb.shape[0]), landmarks)
    silhouette = (render.triangle >= 0).astype(np.float32)
    hair = estimate_hair(rgb, silhouette, placed)
    assert not hair.present
    assert hair.thickness.max() == 0.0


def test_mismatched_mask_is_refused(example_run):
    _, _, _, recon, _ = example_run
    with pytest.raises(ValueError, match="same size"):
        estimate_hair(recon.photo.rgb, recon.analysis.person_mask[:-1], recon.head)
