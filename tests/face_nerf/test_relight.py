"""Relighting through light transfer: equal to shading inside the renderer, for world- and camera-fixed lights."""

from __future__ import annotations

import pytest
import torch

from face_nerf.lighting import PRESETS, rotate_sh
from face_nerf.relight import lambert_shader, render_transfer, to_uint8
from face_nerf.render import MarchSettings, orbit_camera, render_image, render_rays, render_rays_reference
from tests.face_nerf.fields import SphereField


def _cameras(yaws, size=48):
    return [orbit_camera(yaw, 0.0, 4.0, torch.zeros(3), 2.0, size) for yaw in yaws]


@pytest.mark.parametrize("colour_at, tolerance", [("centroid", 2e-3), ("samples", 0.015)])
def test_relighting_the_kept_views_is_shading_in_the_renderer(colour_at, tolerance):
    """Deferred shading of the composited albedo and normal: exact (to float16) for one colour lookup
    per ray; close for a lookup at every sample, whose albedo (here a function of position) and normal
    vary across the band."""
    field = SphereField()
    light = PRESETS["dramatic"].to_sh()
    cameras = _cameras([-40.0, 0.0, 25.0])
    settings = MarchSettings(colour_at=colour_at)
    transfer = render_transfer(field, cameras, settings)
    assert transfer.alpha.shape == (3, 48, 48, 1) and transfer.albedo.shape == transfer.normal.shape == (3, 48, 48, 3)
    assert transfer.albedo.dtype == transfer.normal.dtype == torch.float16
    relit = transfer.radiance(light)
    for i, camera in enumerate(cameras):
        direct = render_image(field, camera, settings, shader=lambert_shader(light))
        assert (direct.alpha > 0.99).sum() > 300
        assert torch.allclose(relit[i], direct.rgb.clamp(min=0.0), atol=tolerance)


def test_camera_fixed_light_turns_with_the_view():
    field = SphereField()
    light = PRESETS["left"].to_sh()
    camera = _cameras([30.0])[0]
    transfer = render_transfer(field, [camera])
    turned = rotate_sh(light, camera.c2w[:3, :3])
    assert torch.allclose(transfer.radiance(light, "camera"), transfer.radiance(turned, "world"), atol=1e-5)
    # Facing the camera, a camera-fixed key from the left lights the image's left half at any yaw.
    image = transfer.radiance(light, "camera")[0].sum(-1)
    assert image[:, :24].sum() > 2 * image[:, 24:].sum()
    with pytest.raises(ValueError, match="world' or 'camera"):
        transfer.radiance(light, "head")


def test_shade_composites_over_the_background_in_linear_light():
    field = SphereField()
    transfer = render_transfer(field, _cameras([0.0]))
    frames = transfer.shade(PRESETS["studio"].to_sh(), background=(0.5, 0.5, 0.5))
    assert frames.shape == (1, 48, 48, 3) and frames.dtype.name == "uint8"
    assert (frames[0, 0, 0] == to_uint8(torch.tensor(0.5))).all()  # empty corner shows the background


def test_shaders_in_the_fast_renderer_match_the_reference_twin():
    field = SphereField()
    camera = _cameras([10.0], size=24)[0]
    origins, dirs = camera.rays()
    shader = lambert_shader(PRESETS["rim"].to_sh())
    fast = render_rays(field, origins, dirs, shader=shader)
    slow = render_rays_reference(field, origins, dirs, samples=2048, shader=shader)
    assert fast.rgb.shape == slow.rgb.shape == (24 * 24, 3)
    assert torch.allclose(fast.rgb, slow.rgb, atol=0.03)


def test_lambert_shader_gradient_reaches_the_light():
    light = PRESETS["studio"].to_sh().double().requires_grad_()
    albedo = torch.rand(5, 3, dtype=torch.float64)
    normal = torch.nn.functional.normalize(torch.randn(5, 3, dtype=torch.float64), dim=-1)
    assert torch.autograd.gradcheck(lambda l: lambert_shader(l)(albedo, normal), (light,))


def test_transfer_rejects_mixed_image_sizes():
    with pytest.raises(ValueError, match="same image size"):
        render_transfer(SphereField(), [_cameras([0.0], 32)[0], _cameras([0.0], 48)[0]])


def test_views_shaded_as_rendered_match_the_relightable_ones(example_run):
    """``relightable=False`` shades each sample as it is rendered instead of keeping the light transfer:
    the same views within one level of 255 (the transfer is kept in float16), for either light frame."""
    import numpy as np

    from face_nerf.export import render_views, turntable_poses
    from face_nerf.lighting import Lighting

    _, _, _, recon, _ = example_run
    light = Lighting("left").to_sh(recon.field.photo_light)
    poses = turntable_poses(8, 45.0)
    for fixed_to in ("world", "camera"):
        kept, transfer = render_views(recon.field, poses, 96, light, fixed_to)
        lit, none = render_views(recon.field, poses, 96, light, fixed_to, relightable=False)
        assert none is None and transfer is not None and lit.shape == kept.shape == (8, 96, 96, 3)
        diff = np.abs(lit.astype(int) - kept.astype(int))
        assert diff.max() <= 1 and diff.mean() < 0.05


def test_outputs_without_transfer_cannot_be_relit(example_run):
    import pytest

    from face_nerf.errors import FaceLabError
    from face_nerf.lighting import Lighting
    from face_nerf.pipeline import ReconstructionConfig, render_outputs, relight_outputs

    _, _, _, recon, _ = example_run
    config = ReconstructionConfig(frames=4, size=64, relightable=False)
    outputs = render_outputs(recon, config)
    assert outputs.turntable_transfer is None and outputs.strip.shape == (64, 192, 3)
    with pytest.raises(FaceLabError, match="kept no light transfer"):
        relight_outputs(recon, outputs, Lighting("left"))
