"""Geometry edits on the field's grids: objects added inside a box."""

from __future__ import annotations

import torch

from face_nerf.edit.canvas import add_object
from tests.face_nerf.fields import sphere_head_field

CENTRE, RADIUS = torch.tensor([0.0, 0.0, 0.62]), 0.15  # a ball touching the front of the head sphere


def _ball(points):
    distance = (points - CENTRE).norm(dim=-1) - RADIUS
    return distance, torch.tensor([0.9, 0.1, 0.1]).expand(points.shape[0], 3)


def test_added_object_unions_with_the_head_and_keeps_its_colour():
    field = sphere_head_field(cells=48)
    add_object(field, _ball, torch.stack([CENTRE - RADIUS, CENTRE + RADIUS]))
    tip = torch.tensor([[0.0, 0.0, 0.77]])
    assert abs(float(field.sdf(tip))) < 0.01  # the ball's front is now the surface
    assert abs(float(field.sdf(torch.tensor([[0.0, 0.5, 0.0]])))) < 0.01  # the head is still there
    albedo, normal = field.attributes(tip)
    torch.testing.assert_close(albedo[0], torch.tensor([0.9, 0.1, 0.1]), atol=0.05, rtol=0)
    assert normal[0, 2] > 0.95
    albedo, _ = field.attributes(torch.tensor([[0.0, 0.0, -0.5]]))
    torch.testing.assert_close(albedo[0], torch.full((3,), 0.5))  # far from the ball: the photo/fill albedo


def test_evaluating_only_near_the_box_gives_the_same_grids_as_evaluating_everywhere():
    tight, everywhere = sphere_head_field(cells=48), sphere_head_field(cells=48)
    calls = []

    def counted(points):
        calls.append(points.shape[0])
        return _ball(points)

    add_object(tight, counted, torch.stack([CENTRE - RADIUS, CENTRE + RADIUS]))
    add_object(everywhere, _ball, everywhere.bounds.clone())
    assert calls[0] < 0.2 * 49 ** 3
    torch.testing.assert_close(tight.sdf_grid, everywhere.sdf_grid)
    torch.testing.assert_close(tight.surface_grid, everywhere.surface_grid)
    torch.testing.assert_close(tight.full_overlay()[:, 3], everywhere.full_overlay()[:, 3])
    # Colours differ only at voxels no lookup blends in (coverage 0 in all 8 corners around them).
    points = CENTRE + torch.randn(20000, 3, generator=torch.Generator().manual_seed(0)) * 0.2
    torch.testing.assert_close(tight.attributes(points), everywhere.attributes(points))


def test_a_second_object_keeps_the_first_ones_overlay():
    field = sphere_head_field(cells=48)
    add_object(field, _ball, torch.stack([CENTRE - RADIUS, CENTRE + RADIUS]))
    other = torch.tensor([0.0, 0.62, 0.0])

    def blue_ball(points):
        return (points - other).norm(dim=-1) - RADIUS, torch.tensor([0.1, 0.1, 0.9]).expand(points.shape[0], 3)

    add_object(field, blue_ball, torch.stack([other - RADIUS, other + RADIUS]))
    albedo, _ = field.attributes(torch.tensor([[0.0, 0.0, 0.77], [0.0, 0.77, 0.0]]))
    torch.testing.assert_close(albedo, torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.1, 0.9]]), atol=0.05, rtol=0)
