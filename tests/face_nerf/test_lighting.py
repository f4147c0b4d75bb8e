"""Spherical-harmonics lighting: basis, irradiance, rotation, estimation, presets and custom lights."""

from __future__ import annotations

import math

import pytest
import torch

from face_nerf.errors import FaceLabError
from face_nerf.lighting import (PRESETS, CustomLight, Lighting, ambient_light, direction_from_angles,
                                directional_light, estimate_sh_lighting, irradiance, linear_to_srgb, rotate_sh,
                                sh_basis, srgb_to_linear)
from face_nerf.relight import lambert_shader
from face_nerf.render import orbit_camera, render_image
from tests.face_nerf.fields import SphereField


def _sphere_grid(n: int = 400):
    """Midpoint quadrature over the sphere: directions [M, 3] and solid-angle weights [M]."""
    theta = (torch.arange(n, dtype=torch.float64) + 0.5) * math.pi / n
    phi = (torch.arange(2 * n, dtype=torch.float64) + 0.5) * math.pi / n
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    dirs = torch.stack([torch.sin(t) * torch.cos(p), torch.sin(t) * torch.sin(p), torch.cos(t)], -1).reshape(-1, 3)
    return dirs, (torch.sin(t) * (math.pi / n) ** 2).reshape(-1)


def _random_normals(count: int, seed: int = 0):
    return torch.nn.functional.normalize(torch.randn(count, 3, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_sh_basis_is_orthonormal_over_the_sphere():
    dirs, weights = _sphere_grid()
    basis = sh_basis(dirs)
    gram = basis.T @ (basis * weights[:, None])
    assert torch.allclose(gram, torch.eye(9, dtype=gram.dtype), atol=1e-4)


def test_sh_basis_shape_and_bad_input():
    assert sh_basis(torch.zeros(4, 5, 3)).shape == (4, 5, 9)
    with pytest.raises(ValueError, match=r"\(\*, 3\)"):
        sh_basis(torch.zeros(4, 2))


def test_constant_environment_gives_pi_times_radiance():
    radiance = torch.tensor([0.2, 0.5, 1.3])
    light = torch.zeros(9, 3)
    light[0] = radiance * math.sqrt(4 * math.pi)  # the constant function R projected on Y_00
    assert torch.allclose(irradiance(_random_normals(100), light), math.pi * radiance.expand(100, 3), atol=1e-5)


def test_irradiance_matches_the_nine_term_shading_formula():
    """REFERENCE.md section 3: S = c1 L1 + c2 (L2 z + L3 x + L4 y) + c3 L5 (2z^2 - x^2 - y^2)
    + c4 (L6 xz + L7 yz + L9 xy) + c5 L8 (x^2 - y^2), with our coefficient order mapped onto L1..L9."""
    c1, c2, c3, c4, c5 = 0.886227, 1.023327, 0.247708, 0.858086, 0.429043
    light = torch.randn(9, 1, generator=torch.Generator().manual_seed(1)).expand(9, 3)
    n = _random_normals(50)
    x, y, z = n.unbind(-1)
    # ours: 0 Y00, 1 y, 2 z, 3 x, 4 xy, 5 yz, 6 (3z^2-1), 7 xz, 8 (x^2-y^2)
    L = light[:, 0]
    expected = (c1 * L[0] + c2 * (L[2] * z + L[3] * x + L[1] * y) + c3 * L[6] * (2 * z * z - x * x - y * y)
                + c4 * (L[7] * x * z + L[5] * y * z + L[4] * x * y) + c5 * L[8] * (x * x - y * y))
    assert torch.allclose(irradiance(n, light)[:, 0], expected, atol=1e-5)


def test_directional_light_approximates_clamped_cosine():
    d = direction_from_angles(30.0, 20.0)
    light = directional_light(d, torch.ones(3), 1.0)
    n = _random_normals(2000)
    e = irradiance(n, light)[:, 0]
    exact = (n @ d).clamp(min=0.0)
    assert (e - exact).abs().max() < 0.1  # band-2 truncation of max(0, cos)
    # Facing the light, bands 0-2 give pi Y00^2 + 2pi/3 * 3/(4pi) + pi/4 * 5/(4pi) = 1.0625 exactly.
    assert irradiance(d[None], light)[0, 0].item() == pytest.approx(1.0625, abs=1e-5)


def test_ambient_light_is_uniform():
    e = irradiance(_random_normals(20), ambient_light(torch.tensor([1.0, 0.5, 0.25]), 0.4))
    assert torch.allclose(e, torch.tensor([0.4, 0.2, 0.1]).expand(20, 3), atol=1e-6)


def test_irradiance_gradients():
    n = _random_normals(6).double().requires_grad_()
    light = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(irradiance, (n, light))


def test_rotating_a_light_moves_its_direction():
    d = direction_from_angles(-60.0, 10.0)
    angle = math.radians(35.0)
    rot = torch.tensor([[math.cos(angle), 0.0, math.sin(angle)], [0.0, 1.0, 0.0], [-math.sin(angle), 0.0, math.cos(angle)]])
    turned = rotate_sh(directional_light(d, torch.ones(3)), rot)
    assert torch.allclose(turned, directional_light(rot @ d, torch.ones(3)), atol=1e-5)
    assert torch.allclose(rotate_sh(PRESETS["studio"].to_sh(), torch.eye(3)), PRESETS["studio"].to_sh(), atol=1e-5)


def test_estimation_recovers_the_light_of_a_rendered_sphere():
    """A grey-ish sphere rendered by the volume renderer under a known light, with 8% of its pixels
    turned into specular highlights: the robust fit gives back the light's shading (up to the
    albedo/light scale the photo cannot tell) and ignores the highlights."""
    albedo = torch.tensor([0.7, 0.5, 0.4])
    truth = PRESETS["dramatic"].to_sh() + ambient_light(torch.ones(3), 0.3)
    field = SphereField(radius=0.5, beta=0.005, albedo=tuple(albedo.tolist()))
    camera = orbit_camera(0.0, 0.0, 4.0, torch.zeros(3), 2.0, 96)
    out = render_image(field, camera, shader=lambert_shader(truth))
    inside = out.alpha[..., 0] > 0.99
    normals = torch.nn.functional.normalize(out.normal[inside], dim=-1)
    colours = out.rgb[inside].clone()
    spots = torch.rand(colours.shape[0], generator=torch.Generator().manual_seed(0)) < 0.08
    colours[spots] = colours[spots] * 2.5 + 0.3
    clean = ~spots
    for ridge, tolerance in ((0.0, 0.012), (1e-3, 0.03)):  # the default ridge trades a little bias for stability
        estimate = estimate_sh_lighting(colours, normals, ridge=ridge)
        fitted = irradiance(normals, estimate.light) * estimate.skin_albedo
        assert (fitted[clean] - out.rgb[inside][clean]).abs().max() < tolerance
        assert (estimate.inliers[spots] < 0.05).float().mean() > 0.9
    # The shading's direction: irradiance is highest toward the dramatic key light (azimuth 45, elevation 35).
    brightest = normals[irradiance(normals, estimate.light).sum(-1).argmax()]
    key = direction_from_angles(45.0, 35.0)
    assert math.degrees(math.acos(float(brightest @ key))) < 15.0


def test_estimation_rejects_too_few_samples():
    with pytest.raises(ValueError, match="at least 50"):
        estimate_sh_lighting(torch.rand(10, 3), _random_normals(10))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        estimate_sh_lighting(torch.rand(100, 3), _random_normals(99))


def test_left_and_right_presets_are_mirror_images():
    left, right = PRESETS["left"].to_sh(), PRESETS["right"].to_sh()
    n = _random_normals(200)
    mirrored = n * torch.tensor([-1.0, 1.0, 1.0])
    assert torch.allclose(irradiance(n, left), irradiance(mirrored, right), atol=1e-6)
    assert irradiance(torch.tensor([[-1.0, 0.0, 0.0]]), left)[0, 0] > 3 * irradiance(torch.tensor([[1.0, 0.0, 0.0]]), left)[0, 0]


def test_warm_is_redder_than_cool_and_every_preset_is_finite():
    front = torch.tensor([[0.0, 0.0, 1.0]])
    warm, cool = irradiance(front, PRESETS["warm"].to_sh())[0], irradiance(front, PRESETS["cool"].to_sh())[0]
    assert warm[0] / warm[2] > 1.5 > cool[0] / cool[2]
    estimated = ambient_light(torch.ones(3), 1.0)
    for name in PRESETS:
        light = Lighting(name).to_sh(estimated)
        assert light.shape == (9, 3) and torch.isfinite(light).all()
    assert torch.equal(Lighting("original").to_sh(estimated), estimated)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(FaceLabError, match="Choose one of: original, flat, studio"):
        Lighting("candle")
    with pytest.raises(FaceLabError, match="world.*camera"):
        Lighting("studio", fixed_to="head")


def test_custom_light_parses_and_converts():
    light = CustomLight.parse("azimuth=40, elevation=20,color=#ffd8a8,intensity=1.2,ambient=0.3")
    assert (light.azimuth, light.elevation, light.color, light.intensity, light.ambient) == (40.0, 20.0, "#ffd8a8", 1.2, 0.3)
    sh = light.to_sh()
    toward = direction_from_angles(40.0, 20.0)
    assert irradiance(toward[None], sh)[0, 0] > irradiance(-toward[None], sh)[0, 0] + 1.0
    assert CustomLight.parse("") == CustomLight()


@pytest.mark.parametrize("spec, message", [
    ("azimuth=400", "azimuth must be between -180 and 180"),
    ("intensity=-1", "intensity must be between 0 and 4"),
    ("color=orange", "hex colour"),
    ("brightness=2", "names from azimuth, elevation, color, intensity, ambient"),
    ("elevation=high", "must be a number"),
])
def test_custom_light_errors_say_what_is_allowed(spec, message):
    with pytest.raises(FaceLabError, match=message):
        CustomLight.parse(spec)


def test_srgb_round_trip():
    values = torch.linspace(0, 1, 101)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(values)), values, atol=1e-5)
    assert srgb_to_linear(torch.tensor(0.5)).item() == pytest.approx(0.21404, abs=1e-4)


def test_a_floored_light_never_lights_a_normal_below_the_floor_and_leaves_a_bright_one_alone():
    from face_nerf.lighting import ambient_light, directional_light, irradiance, with_floor

    side = directional_light(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, 0.8, 0.6]), 2.0)
    normals = torch.nn.functional.normalize(torch.randn(4000, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    assert irradiance(normals, side).min() < 0.0  # a 9-coefficient sun swings below zero behind
    floored = with_floor(side, 0.2)
    assert irradiance(normals, floored).min() >= 0.2 - 1e-3
    # Only a uniform light is added: the difference is the same for every normal.
    added = irradiance(normals, floored) - irradiance(normals, side)
    assert torch.allclose(added, added[:1].expand_as(added), atol=1e-5)
    bright = ambient_light(torch.ones(3), 1.0)
    assert torch.equal(with_floor(bright, 0.2), bright)


def test_display_rolls_overexposed_colours_off_towards_white_keeping_their_hue():
    from face_nerf.lighting import linear_to_srgb, to_display

    within = torch.tensor([[0.8, 0.5, 0.2], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    assert torch.equal(to_display(within), linear_to_srgb(within))  # nothing over white: plain sRGB
    sunlit = torch.tensor([1.3, 1.0, 0.6])
    shown = to_display(sunlit)
    assert shown[0].item() == pytest.approx(1.0) and shown[1] < 0.95  # not clipped to yellow (1, 1, 0.6)
    assert shown[0] > shown[1] > shown[2] > linear_to_srgb(torch.tensor(0.6 / 1.3))  # warm, paler than its hue alone
    assert torch.allclose(to_display(torch.tensor([50.0, 10.0, 5.0])), torch.ones(3), atol=0.02)  # far over: white
