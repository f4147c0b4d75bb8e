"""Renderer math: compositing, density, rays, cameras, and the fast renderer against its slow twin."""

from __future__ import annotations

import math

import pytest
import torch

from face_nerf.render import (Camera, MarchSettings, compositing_weights, look_at, orbit_camera, ray_aabb,
                              render_rays, render_rays_reference, sdf_to_density, segment_centroid, sphere_trace,
                              surface_band)
from tests.face_nerf.fields import SphereField


def test_weights_of_a_three_sample_ray_worked_by_hand():
    sigmas = torch.tensor([1.0, 2.0, 3.0])
    deltas = torch.tensor([0.5, 0.5, 0.5])
    weights, trans = compositing_weights(sigmas, deltas)
    a = [1 - math.exp(-0.5), 1 - math.exp(-1.0), 1 - math.exp(-1.5)]
    t = [1.0, math.exp(-0.5), math.exp(-1.5)]
    assert torch.allclose(trans, torch.tensor(t), atol=1e-6)
    assert torch.allclose(weights, torch.tensor([t[i] * a[i] for i in range(3)]), atol=1e-6)
    # Sum of weights = 1 - final transmittance = 1 - exp(-3).
    assert weights.sum().item() == pytest.approx(1 - math.exp(-3.0), abs=1e-6)


def test_weights_sum_to_at_most_one_and_transmittance_never_rises():
    gen = torch.Generator().manual_seed(0)
    sigmas = torch.rand(64, 32, generator=gen) * 50
    deltas = torch.rand(64, 32, generator=gen) * 0.1
    weights, trans = compositing_weights(sigmas, deltas)
    assert (weights >= 0).all()
    assert (weights.sum(-1) <= 1 + 1e-6).all()
    assert (trans[:, 1:] <= trans[:, :-1] + 1e-7).all()
    assert torch.allclose(trans[:, 0], torch.ones(64))


def test_empty_space_has_zero_weight():
    weights, trans = compositing_weights(torch.zeros(5), torch.full((5,), 0.3))
    assert weights.abs().max() == 0 and torch.allclose(trans, torch.ones(5))


def test_compositing_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        compositing_weights(torch.ones(3), torch.ones(4))


def test_compositing_gradient():
    sigmas = torch.rand(3, 6, dtype=torch.float64, requires_grad=True)
    deltas = torch.rand(3, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda s: compositing_weights(s, deltas)[0], (sigmas,))


def test_volsdf_density_values():
    beta = 0.1
    sdf = torch.tensor([-10.0, 0.0, 10.0])
    density = sdf_to_density(sdf, beta)
    assert density[0].item() == pytest.approx(1 / beta, rel=1e-4)
    assert density[1].item() == pytest.approx(0.5 / beta)
    assert density[2].item() == pytest.approx(0.0, abs=1e-30)
    fine = torch.linspace(-1, 1, 2001)
    assert (sdf_to_density(fine, beta).diff() <= 0).all()  # decreasing with distance


def test_ray_aabb():
    origins = torch.tensor([[0.0, 0.0, 5.0], [3.0, 3.0, 5.0]])
    dirs = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    t_near, t_far, hit = ray_aabb(origins, dirs, torch.tensor([[-1.0, -1, -1], [1.0, 1, 1]]))
    assert hit.tolist() == [True, False]
    assert t_near[0].item() == pytest.approx(4.0) and t_far[0].item() == pytest.approx(6.0)


def test_camera_rays_project_back_to_their_pixels():
    cam = orbit_camera(30.0, 10.0, 3.0, torch.tensor([0.1, 0.2, 0.0]), 1.5, 16)
    origins, dirs = cam.rays()
    points = origins + 2.5 * dirs
    uv, depth = cam.project(points)
    v, u = torch.meshgrid(torch.arange(16) + 0.5, torch.arange(16) + 0.5, indexing="ij")
    assert torch.allclose(uv, torch.stack([u, v], -1).reshape(-1, 2), atol=1e-3)
    assert (depth > 0).all()
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(256), atol=1e-5)


def test_look_at_points_the_camera_at_the_target():
    c2w = look_at(torch.tensor([0.0, 0.0, 4.0]), torch.zeros(3))
    assert torch.allclose(-c2w[:3, 2], torch.tensor([0.0, 0.0, -1.0]))
    assert torch.allclose(c2w[:3, :3] @ c2w[:3, :3].T, torch.eye(3), atol=1e-6)


def test_the_reference_with_one_lookup_a_ray_colours_it_where_its_opacity_is_on_average():
    field = SphereField()
    cam = Camera(look_at(torch.tensor([0.3, 0.2, 3.0]), torch.zeros(3)), 40.0, 40.0, 16.0, 16.0, 32, 32)
    origins, dirs = cam.rays()
    every = render_rays_reference(field, origins, dirs, samples=4096)
    once = render_rays_reference(field, origins, dirs, samples=4096, colour_at="centroid")
    # The same density: the same opacity and depth, whichever the colour rule.
    assert torch.equal(once.alpha, every.alpha) and torch.equal(once.depth, every.depth)
    hit = once.alpha[:, 0] > 0.99
    # The sphere's albedo encodes position: one lookup a ray gives the colour at its expected depth.
    surface = origins[hit] + once.depth[hit] / once.alpha[hit] * dirs[hit]
    assert torch.allclose(once.rgb[hit], once.alpha[hit] * (surface * 0.5 + 0.5), atol=1e-5)
    # Seen head on, the surface is thin: both rules agree to a fraction of a level there.
    assert (once.rgb[hit] - every.rgb[hit]).abs().mean() < 1e-3
    # And the fast path's one lookup a ray matches its slow twin.
    fast = render_rays(field, origins, dirs, MarchSettings(colour_at="centroid"))
    assert (fast.rgb - once.rgb).abs().mean() < 2e-3
    with pytest.raises(ValueError, match="colour_at must be"):
        render_rays_reference(field, origins, dirs, colour_at="middle")


@pytest.mark.parametrize("tau", [0.0, 1e-4, 0.02, 0.1999, 0.2001, 0.5, 1.0, 4.0, 40.0])
def test_a_segment_stands_where_its_weight_lies(tau):
    """segment_centroid against the weighted mean position of a segment of optical depth tau, integrated
    densely: the light fades along it as exp(-tau x); continuous where the series hands over (0.2)."""
    x = (torch.arange(200_000, dtype=torch.float64) + 0.5) / 200_000
    weight = torch.exp(-tau * x)
    expected = (weight * x).sum() / weight.sum()
    got = segment_centroid(torch.tensor([tau], dtype=torch.float32))
    assert got.item() == pytest.approx(expected.item(), abs=2e-6)
    assert 0.0 < got.item() <= 0.5


def test_the_band_starts_where_the_distance_crosses_its_level():
    """A ray straight at a sphere's centre (its distance falls linearly): the band starts where the
    distance is enter_sdf * beta, not at whichever sphere-tracing step first fell below that."""
    field, settings = SphereField(radius=0.5, beta=0.01), MarchSettings()
    origins = torch.tensor([[0.0, 0.0, 3.0], [0.3, -0.2, 3.0]])
    dirs = torch.nn.functional.normalize(-origins, dim=-1)
    t_near, t_far, _ = ray_aabb(origins, dirs, field.bounds)
    t_enter, t_surface, found, hit = sphere_trace(field.sdf, origins, dirs, t_near, t_far, field.beta, settings)
    assert found.all() and hit.all()
    level = field.sdf(origins + t_enter[:, None] * dirs)
    assert torch.allclose(level, torch.full_like(level, settings.enter_sdf * field.beta), atol=1e-5)
    assert torch.allclose(t_surface, origins.norm(dim=-1) - 0.5, atol=1e-4)


def test_a_ray_that_reaches_the_surface_is_opaque_and_a_grazing_one_is_not():
    """The light left at the band's end is absorbed there (the reference absorbs it a few beta further
    into the closed surface): opacity 1 through the sphere; a ray passing 4 beta outside keeps its
    partial opacity, as the reference gives it."""
    field = SphereField(radius=0.5, beta=0.01)
    origins = torch.tensor([[0.0, 0.1, 3.0], [0.0, 0.5 + 4 * 0.01, 3.0]])
    dirs = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    band = surface_band(field, origins, dirs, MarchSettings(kernel=False))
    slow = render_rays_reference(field, origins, dirs, samples=16384)
    assert band.rays.tolist() == [0, 1]
    assert band.alpha[0].item() == pytest.approx(1.0, abs=1e-6) and slow.alpha[0].item() > 0.9999
    assert 0.01 < band.alpha[1].item() < 0.5
    assert band.alpha[1].item() == pytest.approx(slow.alpha[1].item(), rel=0.05)


def test_render_rays_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(R, 3\)"):
        render_rays(SphereField(), torch.zeros(4, 2), torch.zeros(4, 2))


def test_fast_renderer_matches_slow_reference():
    field = SphereField()
    cam = Camera(look_at(torch.tensor([0.3, 0.2, 3.0]), torch.zeros(3)), 40.0, 40.0, 16.0, 16.0, 32, 32)
    origins, dirs = cam.rays()
    fast = render_rays(field, origins, dirs, MarchSettings(weight_floor=0.0))
    slow = render_rays_reference(field, origins, dirs, samples=8192)
    assert (fast.alpha > 0.99).sum() > 100  # the sphere covers a good part of the image
    # Silhouette rays passing further than enter_sdf * beta from the surface are skipped: each such
    # ray loses at most a few percent of opacity; everywhere else the two agree closely.
    assert torch.allclose(fast.alpha, slow.alpha, atol=0.03)
    assert torch.allclose(fast.rgb, slow.rgb, atol=0.03)
    assert (fast.alpha - slow.alpha).abs().mean() < 2e-3
    hit = slow.alpha[:, 0] > 0.99
    assert torch.allclose(fast.depth[hit], slow.depth[hit], atol=0.01)
    # Normals from the density's surface point outwards, towards the camera.
    assert ((fast.normal[hit] * -dirs[hit]).sum(-1) > 0).all()


def test_fast_renderer_colour_skipping_is_close_to_full_shading():
    field = SphereField()
    cam = Camera(look_at(torch.tensor([0.0, 0.0, 3.0]), torch.zeros(3)), 40.0, 40.0, 16.0, 16.0, 32, 32)
    origins, dirs = cam.rays()
    full = render_rays(field, origins, dirs, MarchSettings(weight_floor=0.0))
    skipped = render_rays(field, origins, dirs)
    assert torch.allclose(full.rgb, skipped.rgb, atol=0.01)
    assert torch.equal(full.alpha, skipped.alpha)


def test_rendered_sphere_silhouette_has_the_right_size():
    field = SphereField(radius=0.5)
    f = 64.0
    cam = Camera(look_at(torch.tensor([0.0, 0.0, 4.0]), torch.zeros(3)), f, f, 32.0, 32.0, 64, 64)
    out = render_rays(field, *cam.rays())
    radius_px = math.sqrt((out.alpha > 0.5).sum().item() / math.pi)
    # Projected radius of a sphere: f * r / sqrt(d^2 - r^2); pixel counting is good to ~half a pixel.
    assert radius_px == pytest.approx(f * 0.5 / math.sqrt(16 - 0.25), abs=0.5)


def test_orbit_about_a_tilted_axis_keeps_the_front_camera_and_its_elevation():
    target = torch.tensor([0.0, 0.1, 0.0])
    tilt = math.radians(14.0)
    axis = torch.tensor([0.0, math.cos(tilt), math.sin(tilt)])  # the head's up, leaning towards the camera
    default = orbit_camera(30.0, 5.0, 4.0, target, 4.0, 32)
    assert torch.allclose(orbit_camera(30.0, 5.0, 4.0, target, 4.0, 32, torch.tensor([0.0, 1.0, 0.0])).c2w, default.c2w)
    front = orbit_camera(0.0, 0.0, 4.0, target, 4.0, 32, axis)
    assert torch.allclose(front.c2w[:3, 3], target + torch.tensor([0.0, 0.0, 4.0]), atol=1e-5)
    for yaw in (45.0, 90.0, 180.0, -90.0):
        cam = orbit_camera(yaw, 0.0, 4.0, target, 4.0, 32, axis)
        offset = (cam.c2w[:3, 3] - target) / 4.0
        # Every camera keeps the front camera's angle to the axis, and sees the axis as its image's up.
        assert torch.dot(offset, axis).item() == pytest.approx(math.sin(tilt), abs=1e-5)
        assert torch.dot(cam.c2w[:3, 0], axis).item() == pytest.approx(0.0, abs=1e-5)
    side = orbit_camera(90.0, 0.0, 4.0, target, 4.0, 32, axis).c2w[:3, 3] - target
    assert side[0].item() == pytest.approx(4.0 * math.cos(tilt), abs=1e-4)  # at the subject's left
