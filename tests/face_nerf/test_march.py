"""The compiled marcher (march.py, march_colour.py) against render.py's torch path, and colour at the band's centroid
against colour at every sample."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from face_nerf.march import march_band
from face_nerf.march_colour import march_views
from face_nerf.render import (Camera, MarchSettings, SdfVolume, look_at, render_rays, render_rays_reference,
                              surface_band)
from face_nerf.sampling import lookup
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
    assert torch.equal(fast.rays, slow.rays) and _same_index(fast.ray_idx, slow.ray_idx)
    # The same steps in another order of float operations: equal to rounding.
    assert torch.allclose(fast.alpha, slow.alpha, atol=1e-5)
    assert torch.allclose(fast.depth, slow.depth, atol=1e-4)
    assert _same_points(fast, slow)


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


def _textured_head_field():
    """The lumpy head with everything ``attributes`` looks up varying: a photo and a fill of random colours,
    visibility that fades round the head, a coloured SH light, and an overlay over part of the face."""
    import dataclasses as dc

    from face_nerf.lighting import PRESETS

    field = _lumpy_head_field()
    generator = torch.Generator().manual_seed(5)
    points = field.voxel_points()
    visibility = (0.5 + 2.0 * points[..., 2]).clamp(0.0, 1.0)  # the front seen, the back not, a ramp between
    field.set_sdf(field.sdf_grid[0, 0], visibility)
    photo = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=generator), size=(64, 64), mode="bilinear")
    fill = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 12, generator=generator), size=(16, 32), mode="bilinear")
    field = dc.replace(field, photo=photo, fill=fill, photo_light=PRESETS["warm"].to_sh() * 0.4)
    overlay = torch.zeros(1, 4, *field.sdf_grid.shape[-3:])
    overlay[:, :3, 20:30, 18:30, 30:] = torch.tensor([0.1, 0.6, 0.9])[None, :, None, None, None]
    overlay[:, 3, 20:30, 18:30, 30:] = 0.8
    field.set_overlay(overlay)
    return field


@pytest.mark.parametrize("colour_at", ["samples", "centroid"])
def test_whole_ray_kernel_gives_the_torch_colour(colour_at):
    """march_surface (band, colour lookups, compositing in one kernel) against surface_band and the field's
    own attributes in torch: the composited albedo (shader None) and normals agree."""
    field = _textured_head_field()
    assert field.overlay_grid is not None
    origins, dirs = _rays(size=48)
    settings = MarchSettings(colour_at=colour_at)
    fast, slow = render_rays(field, origins, dirs, settings), render_rays(field, origins, dirs, replace(settings, kernel=False))
    seen = fast.alpha[:, 0] > 0.5
    assert seen.sum() > 500 and torch.equal(fast.alpha > 0, slow.alpha > 0)
    assert torch.allclose(fast.alpha, slow.alpha, atol=1e-5)
    albedo = fast.rgb / fast.alpha.clamp(min=1e-6)
    assert albedo[seen].std(0).min() > 0.05  # the colour does vary over the head
    assert torch.allclose(fast.rgb, slow.rgb, atol=2e-4)
    unit = torch.nn.functional.normalize
    assert torch.allclose(unit(fast.normal[seen], dim=-1), unit(slow.normal[seen], dim=-1), atol=1e-3)


def test_whole_ray_kernel_shades_each_sample_under_a_lambert_shader():
    """With relight.lambert_shader the kernel shades every kept sample before compositing, as torch's
    path does (what makes the input view reproduce the photo: each sample's photo colour is divided by,
    then shaded with, its own normal's irradiance)."""
    from face_nerf.lighting import PRESETS
    from face_nerf.relight import lambert_shader

    field = _textured_head_field()
    origins, dirs = _rays(size=48)
    shader = lambert_shader(PRESETS["rim"].to_sh())
    fast, slow = render_rays(field, origins, dirs, shader=shader), render_rays(field, origins, dirs, TORCH, shader)
    assert (fast.alpha > 0.5).sum() > 500 and fast.rgb.amax() > 0.1
    assert torch.allclose(fast.rgb, slow.rgb, atol=2e-4)


def test_views_kernel_gives_what_the_rays_kernel_gives():
    """march_views (rays made in the kernel from the cameras, a G-buffer out) against march_surface on
    the cameras' own rays."""
    field = _textured_head_field()
    cameras = [Camera(look_at(torch.tensor(eye), torch.zeros(3)), 40.0, 40.0, 20.0, 18.0, 40, 36)
               for eye in ((0.4, 0.3, 2.6), (2.7, -0.2, 0.3))]
    alpha = torch.empty(2, 36, 40, 1)
    albedo, normal = torch.empty(2, 36, 40, 3, dtype=torch.float16), torch.empty(2, 36, 40, 3, dtype=torch.float16)
    march_views(field.sdf_volume(), field.grid_appearance(), cameras, field.beta, MarchSettings(), alpha, albedo, normal)
    for k, camera in enumerate(cameras):
        out = render_rays(field, *camera.rays()).reshape(36, 40)
        seen = out.alpha[..., 0] > 0
        assert seen.sum() > 300 and torch.equal(alpha[k, ..., 0] > 0, seen)
        assert torch.allclose(alpha[k], out.alpha, atol=1e-5)
        assert torch.allclose(albedo[k][seen].float(), (out.rgb / out.alpha.clamp(min=1e-12))[seen], atol=2e-3)
        assert torch.allclose(normal[k][seen].float(), torch.nn.functional.normalize(out.normal[seen], dim=-1), atol=2e-3)
        assert (albedo[k][~seen] == 0).all() and (normal[k][~seen] == 0).all()


def test_views_kernel_takes_an_odd_pixel_count_and_reports_progress(monkeypatch):
    """Warp's march_views traces pixels two at a time: with an odd count the last is traced alone, and
    every pixel is written; progress counts the views done, up to all of them, as blocks finish. (The
    packet tracer's own: test_march_packets.)"""
    import face_nerf.march_colour as march

    monkeypatch.setenv("FACELAB_CPU_MARCH", "warp")
    monkeypatch.setattr(march, "BLOCK", 64)  # several blocks (of 32 pairs) per view
    field = _textured_head_field()
    cameras = [Camera(look_at(torch.tensor(eye), torch.zeros(3)), 14.0, 14.0, 4.5, 3.5, 9, 7)
               for eye in ((0.4, 0.3, 2.6), (2.7, -0.2, 0.3), (0.0, 2.5, -1.2))]
    alpha = torch.full((3, 7, 9, 1), -1.0)
    albedo, normal = torch.zeros(3, 7, 9, 3, dtype=torch.float16), torch.zeros(3, 7, 9, 3, dtype=torch.float16)
    reported, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)  # blocks finish in order
    try:
        march.march_views(field.sdf_volume(), field.grid_appearance(), cameras, field.beta, MarchSettings(), alpha,
                          albedo, normal, reported.append)
    finally:
        torch.set_num_threads(threads)
    assert len(reported) == 3 and reported == sorted(reported) and reported[-1] == pytest.approx(3.0)  # 32, 32, 31 pairs
    for k, camera in enumerate(cameras):
        out = render_rays(field, *camera.rays()).reshape(7, 9)
        assert torch.allclose(alpha[k], out.alpha, atol=1e-5)  # the last pixel too (189 in all: odd)
    assert (alpha[:, :, :, 0] > 0.5).sum() > 20


def _same_index(a, b):
    return (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))


def _same_band(field, origins, dirs, settings=MarchSettings()):
    fast = surface_band(field, origins, dirs, settings)
    slow = surface_band(field, origins, dirs, dataclasses.replace(settings, kernel=False))
    assert torch.equal(fast.rays, slow.rays) and _same_index(fast.ray_idx, slow.ray_idx)
    assert torch.allclose(fast.weights, slow.weights, atol=1e-5) and _same_points(fast, slow)
    assert torch.allclose(fast.alpha, slow.alpha, atol=1e-5) and torch.allclose(fast.depth, slow.depth, atol=1e-4)
    return fast


def _same_points(fast, slow):
    # A ray's colour point is its expected depth over its opacity: a grazing ray's (opacity 0.01) divides
    # the rounding by 0.01, and counts for as little. Points are compared as far as they count.
    return torch.allclose(fast.weights * fast.points, slow.weights * slow.points, atol=1e-5)


def test_the_kernel_itself_gives_the_torch_band():
    """march_band called directly (not through surface_band's choice), against the torch path's samples."""
    field = _lumpy_head_field()
    origins, dirs = _rays()
    rays, t_mid, weights = march_band(field.sdf_volume(), origins, dirs, field.beta, MarchSettings())
    slow = surface_band(field, origins, dirs, dataclasses.replace(TORCH, colour_at="samples"))
    assert torch.equal(rays, slow.rays) and t_mid.shape == weights.shape == (rays.numel(), MarchSettings().band_samples)
    assert torch.allclose(weights.sum(-1, keepdim=True), slow.alpha, atol=1e-5)


def test_every_kept_sample_matches_with_colour_at_every_sample():
    _same_band(_lumpy_head_field(), *_rays(), MarchSettings(colour_at="samples"))


@pytest.mark.parametrize("steps", [2, 3, 5])
def test_rays_that_run_out_of_steps_keep_what_they_found(steps):
    generator = torch.Generator().manual_seed(steps)
    origins = torch.randn(3000, 3, generator=generator) * 0.2 + torch.tensor([0.0, 0.0, 3.0])
    dirs = torch.nn.functional.normalize(torch.tensor([0.0, 0.0, -1.0]) + 0.3 * torch.randn(3000, 3, generator=generator), dim=-1)
    band = _same_band(sphere_head_field(radius=0.5, cells=40), origins, dirs, MarchSettings(max_steps=steps))
    assert band.rays.numel() > 0


def test_rays_starting_inside_the_box_or_the_head_and_along_its_faces():
    generator = torch.Generator().manual_seed(0)
    inside = torch.rand(3000, 3, generator=generator) * 1.8 - 0.9
    random_dirs = torch.nn.functional.normalize(torch.randn(3000, 3, generator=generator), dim=-1)
    field = sphere_head_field(radius=0.5, cells=40)
    assert _same_band(field, inside, random_dirs).rays.numel() > 1000
    on_faces = torch.tensor([[0.0, 0.0, 3.0], [1.0, 0.0, 3.0], [0.0, 1.0, 3.0], [-1.0, -1.0, 3.0], [0.0, 0.0, -3.0]])
    axis_dirs = torch.tensor([[0.0, 0.0, -1.0]] * 4 + [[0.0, 0.0, 1.0]])
    assert _same_band(field, on_faces, axis_dirs).rays.tolist() == [0, 4]
    assert _same_band(field, torch.zeros(0, 3), torch.zeros(0, 3)).rays.numel() == 0


def test_a_grid_too_small_to_interpolate_is_refused():
    volume = SdfVolume(torch.zeros(1, 4, 4), torch.tensor([[-1.0] * 3, [1.0] * 3]), 0.1)
    rays = torch.zeros(1, 3), torch.tensor([[0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="at least 2 points"):
        march_band(volume, *rays, 0.01, MarchSettings())


def test_colour_at_must_be_one_of_its_two_ways():
    with pytest.raises(ValueError, match="centroid"):
        MarchSettings(colour_at="centre")


@pytest.mark.parametrize("points", [0, 1, 13, 8192 * 2 + 7])
@pytest.mark.parametrize("dims", [2, 3])
def test_threaded_lookup_is_grid_sample(points, dims):
    generator = torch.Generator().manual_seed(points)
    grid = torch.randn((1, 3) + (9,) * dims, generator=generator, requires_grad=True)
    coords = torch.rand(points, dims, generator=generator) * 2.2 - 1.1
    shape = (1, 1, points, dims) if dims == 2 else (1, 1, 1, points, dims)
    expected = torch.nn.functional.grid_sample(grid, coords.reshape(shape), align_corners=True).reshape(3, points)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        got = lookup(grid, coords, align_corners=True)
    finally:
        torch.set_num_threads(threads)
    assert got.shape == (3, points) and torch.allclose(got, expected, atol=1e-6)
    if points:
        (g_got,) = torch.autograd.grad(got.sum(), grid)
        (g_expected,) = torch.autograd.grad(expected.sum(), grid)
        assert torch.allclose(g_got, g_expected, atol=1e-5)


def test_lookup_takes_one_grid():
    with pytest.raises(ValueError, match="batch of 1"):
        lookup(torch.zeros(2, 1, 4, 4), torch.zeros(5, 2))


def test_without_warp_grid_fields_are_marched_by_torch():
    """A host without Warp (the GPU machine has none) renders the same band with torch operations."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['warp'] = None\n"
            "import torch\n"
            "from face_nerf.render import surface_band, orbit_camera\n"
            "from tests.face_nerf.fields import sphere_head_field\n"
            "camera = orbit_camera(20.0, 10.0, 3.0, torch.zeros(3), 1.0, 24)\n"
            "band = surface_band(sphere_head_field(), *camera.rays())\n"
            "print(band.rays.numel(), 'face_nerf.march' in sys.modules)\n")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    count, imported = done.stdout.split()
    assert int(count) > 50 and imported == "False"
