"""Grid operations of the head field: normals from the SDF grid, and the cropped overlay of added objects."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from face_nerf.field import HeadField, surface_grid
from tests.face_nerf.fields import sphere_head_field


def test_surface_grid_normals_match_normalised_gradient():
    sdf = torch.randn(9, 10, 11, generator=torch.Generator().manual_seed(0))
    vis = torch.rand(9, 10, 11, generator=torch.Generator().manual_seed(1))
    grid = surface_grid(sdf, vis, 0.1)
    gz, gy, gx = torch.gradient(sdf, spacing=0.1)
    assert grid.shape == (1, 4, 9, 10, 11)
    torch.testing.assert_close(grid[0, :3], F.normalize(torch.stack([gx, gy, gz]), dim=0))
    torch.testing.assert_close(grid[0, 3], vis)


def test_surface_grid_normals_of_a_sphere_point_outwards():
    field = sphere_head_field(cells=40)
    points = F.normalize(torch.randn(100, 3, generator=torch.Generator().manual_seed(2)), dim=-1) * 0.5
    normal, _ = field.surface(points)
    assert (normal * F.normalize(points, dim=-1)).sum(-1).min() > 0.99


def _overlay_layer(field: HeadField) -> torch.Tensor:
    """A full-grid overlay covering a small ball at (0.3, 0.1, 0.5), coloured by position."""
    points = field.voxel_points()
    coverage = (0.15 - (points - torch.tensor([0.3, 0.1, 0.5])).norm(dim=-1)).clamp(0, 0.05) / 0.05
    colour = (points * 0.5 + 0.5).permute(3, 0, 1, 2)
    return torch.cat([colour, coverage[None]])[None]


def test_overlay_is_cropped_to_its_coverage_and_looks_up_like_the_full_grid():
    field = sphere_head_field(cells=40)
    layer = _overlay_layer(field)
    field.set_overlay(layer)
    assert field.overlay_grid.numel() < layer.numel() / 20
    lo, hi = field.overlay_bounds
    assert (lo >= torch.tensor([0.1, -0.1, 0.3]) - 0.1).all() and (hi <= torch.tensor([0.5, 0.3, 0.7]) + 0.1).all()
    covered = layer[0, 3] > 0
    torch.testing.assert_close(field.full_overlay()[0][:, covered], layer[0][:, covered])

    points = torch.rand(5000, 3, generator=torch.Generator().manual_seed(3)) * 2 - 1
    points[:2500] = points[:2500] * 0.2 + torch.tensor([0.3, 0.1, 0.5])  # half of them near the ball
    albedo = torch.rand(5000, 3, generator=torch.Generator().manual_seed(4))
    over = F.grid_sample(layer, field._grid_coords(points), align_corners=True).reshape(4, -1).T
    expected = albedo + over[:, 3:] * (over[:, :3] - albedo)
    torch.testing.assert_close(field._overlay(points, albedo), expected)
    assert (field._overlay(points, albedo) != albedo).any()


def test_an_overlay_without_coverage_is_dropped():
    field = sphere_head_field(cells=20)
    field.set_overlay(torch.zeros(1, 4, 21, 21, 21))
    assert field.overlay_grid is None and field.overlay_bounds is None and field.full_overlay() is None


def test_save_and_load_keep_the_overlay(tmp_path):
    field = sphere_head_field(cells=40)
    field.set_overlay(_overlay_layer(field))
    field.save(tmp_path / "field.safetensors")
    loaded = HeadField.load(tmp_path / "field.safetensors")
    torch.testing.assert_close(loaded.overlay_grid, field.overlay_grid)
    torch.testing.assert_close(loaded.overlay_bounds, field.overlay_bounds)


def test_load_rejects_other_files(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a FaceLab head field"):
        HeadField.load(tmp_path / "other.safetensors")


def test_the_photo_is_trusted_in_its_own_view_and_not_where_a_view_would_stretch_it():
    field = sphere_head_field(radius=0.5, cells=40)  # its camera is on +z at distance 3
    eye = field.camera.c2w[:3, 3]
    front, slanted = torch.tensor([[0.0, 0.0, 0.5]]), torch.tensor([[0.5 * 0.96, 0.0, 0.5 * 0.28]])
    normal_front, _ = field.surface(front)
    normal_slanted, _ = field.surface(slanted)
    from_photo = lambda p: torch.nn.functional.normalize(p - eye, dim=-1)
    assert field.photo_trust(front, normal_front, from_photo(front)).item() == pytest.approx(1.0)
    assert field.photo_trust(slanted, normal_slanted, from_photo(slanted)).item() == pytest.approx(1.0)
    # Seen squarely from the side, the slanted point's few photo pixels would be stretched ~4x.
    assert field.photo_trust(slanted, normal_slanted, -normal_slanted).item() < 0.2
    assert field.photo_trust(front, normal_front, -normal_front).item() == pytest.approx(1.0)
