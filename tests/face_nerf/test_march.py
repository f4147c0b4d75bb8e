"""The compiled marcher (march.py) against render.py's torch path, and colour at the band's centroid
against colour at every sample."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from face_nerf.render import Camera, MarchSettings, look_at, render_rays, render_rays_reference, surface_band
from tests.face_nerf.fields import SphereField, sphere_head_field

TORCH = MarchSettings(kernel=False)


def _rays(eye=(0.4, 0.3, 2.6), size=40, focal=52.0):
    camera = Camera(look_at(torch.tensor(eye), torch.zeros(3)), focal, focal, size / 2, size / 2, size, size)
    return camera.rays()


def _lumpy_head_field():
    """A grid field whose surface is not a sphere: bumps the torch path and the kernel must both find."""
    field = sphere_head_field(radius=0.55, cells=48)
    points = field.voxel_points()
    bumps = 0.06 * torch.sin(9 * points[..., 0]) * torch.cos(7 * points[..., 1]) * torch.sin(5 * points[..., 2])
    field.set_sdf(field.sdf_grid[0, 0] + bumps, torch.ones_like(bumps))
    return field


@pytest.mark.parametrize("eye", [(0.4, 0.3, 2.6), (2.7, -0.2, 0.3), (0.0, 2.5, -1.2)])
def test_kernel_band_matches_the_torch_band(eye):
    field = _lumpy_head_field()
    origins, dirs = _rays(eye)
    fast, slow = surface_band(field, origins, dirs), surface_band(field, origins, dirs, TORCH)
    assert fast.rays.numel() > 400  # the head covers a good part of the image
    assert torch.equal(fast.rays, slow.rays) and torch.equal(fast.ray_idx, slow.ray_idx)
    # The same steps in another order of float operations: equal to rounding.
    assert torch.allclose(fast.alpha, slow.alpha, atol=1e-5)
    assert torch.allclose(fast.depth, slow.depth, atol=1e-4)
    assert torch.allclose(fast.points, slow.points, atol=1e-4)


def test_kernel_and_torch_render_the_same_image():
    field = _lumpy_head_field()
    origins, dirs = _rays(size=48)
    fast, slow = render_rays(field, origins, dirs), render_rays(field, origins, dirs, TORCH)
    assert (fast.alpha > 0.99).sum() > 300
    assert (fast.alpha - slow.alpha).abs().mean() < 1e-3
    assert (fast.rgb - slow.rgb).abs().mean() < 1e-3 and (fast.rgb - slow.rgb).abs().max() < 0.1


def test_kernel_render_matches_the_slow_reference():
    field = sphere_head_field(radius=0.5, cells=48)
    field = dataclasses.replace(field, beta=field.voxel_size / 2)  # as the pipeline builds them
    origins, dirs = _rays(size=32)
    fast = render_rays(field, origins, dirs)
    slow = render_rays_reference(field, origins, dirs, samples=4096)
    assert (slow.alpha > 0.99).sum() > 200
    # Rays passing further than enter_sdf * beta from the surface are skipped and lose a few percent of
    # opacity (render.py's shortcut 2); everywhere else the two agree closely.
    assert torch.allclose(fast.alpha, slow.alpha, atol=0.04) and (fast.alpha - slow.alpha).abs().mean() < 5e-3
    assert torch.allclose(fast.rgb, slow.rgb, atol=0.04)
    hit = slow.alpha[:, 0] > 0.99
    assert torch.allclose(fast.depth[hit], slow.depth[hit], atol=0.01)


def test_kernel_splits_rays_across_threads_without_changing_them():
    field = _lumpy_head_field()
    origins, dirs = _rays(size=128)  # 16384 rays: two launches on two threads
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = surface_band(field, origins, dirs)
        torch.set_num_threads(2)
        two = surface_band(field, origins, dirs)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one.rays, two.rays) and torch.equal(one.weights, two.weights)
    assert torch.equal(one.points, two.points)


def test_rays_that_miss_the_box_or_the_head_get_no_band():
    field = sphere_head_field(radius=0.3, cells=32)
    origins = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 3.0], [0.0, 0.9, 3.0]])
    dirs = torch.nn.functional.normalize(torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]]), dim=-1)
    band = surface_band(field, origins, dirs)
    assert band.rays.tolist() == [0]  # the second leaves the box's way, the third passes 0.6 above the head
    assert 2.7 < band.depth[0, 0].item() < 2.7 + field.beta  # the expected depth is just past the surface
    assert band.alpha[0, 0].item() > 0.99


def test_colour_at_the_centroid_is_close_to_colour_at_every_sample():
    field = SphereField()  # albedo encodes position: colour changes across the band
    origins, dirs = _rays(size=32)
    centroid = render_rays(field, origins, dirs)
    samples = render_rays(field, origins, dirs, dataclasses.replace(MarchSettings(), colour_at="samples"))
    assert torch.equal(centroid.alpha, samples.alpha) and torch.equal(centroid.depth, samples.depth)
    assert (centroid.alpha > 0.99).sum() > 200
    assert (centroid.rgb - samples.rgb).abs().max() < 0.02
