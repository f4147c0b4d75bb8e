"""Turntable poses (sweeps and the full turn) and the textured GLB of the head model."""

from __future__ import annotations

import numpy as np
import pytest

from face_nerf.export import FULL_TURN, turntable_poses


def test_full_turn_goes_round_once_from_the_front():
    poses = turntable_poses(8, FULL_TURN)
    assert [p.yaw for p in poses] == [0.0, 45.0, 90.0, 135.0, 180.0, -135.0, -90.0, -45.0]


def test_sweep_stays_within_its_yaw_and_loops():
    poses = turntable_poses(48, 60.0)
    yaws = np.array([p.yaw for p in poses])
    assert yaws.max() == pytest.approx(60.0) and yaws.min() == pytest.approx(-60.0) and yaws[0] == 0.0


def test_too_few_frames_are_refused():
    with pytest.raises(ValueError, match="at least 2 frames"):
        turntable_poses(1, FULL_TURN)


def test_glb_is_the_textured_head_with_a_hair_shell(example_run):
    import trimesh

    _, _, out, recon, outputs = example_run
    scene = trimesh.load(out / "mesh.glb")
    assert set(scene.geometry) == {"head", "hair"}
    head = scene.geometry["head"]
    texture = np.asarray(head.visual.material.baseColorTexture.convert("RGB"))
    assert texture.shape == (1024, 1024, 3) and texture.std() > 10  # an image, not one colour
    assert head.visual.uv.shape == (len(head.vertices), 2)
    assert outputs.report["mesh"]["kind"].startswith("head model")
    hair = scene.geometry["hair"]
    assert hair.vertices[:, 1].max() > head.vertices[:, 1].max()  # the shell stands off the scalp


def test_glb_material_is_rough_skin_at_the_textures_own_colour(example_run):
    """As a glTF viewer reads it: not metal (glTF's default metallicFactor is 1) and the texture not
    darkened by a base colour factor (trimesh's default diffuse is 0.4 grey)."""
    import json
    import struct

    data = (example_run[2] / "mesh.glb").read_bytes()
    length = struct.unpack("<I", data[12:16])[0]
    materials = json.loads(data[20:20 + length])["materials"]
    assert len(materials) == 2  # the head and the hair shell
    for material in materials:
        pbr = material["pbrMetallicRoughness"]
        assert pbr["metallicFactor"] == 0.0
        assert pbr.get("baseColorFactor", [1.0] * 4) == [1.0] * 4
        assert 0.5 <= pbr["roughnessFactor"] <= 1.0
        assert "baseColorTexture" in pbr


def test_the_turntable_turns_about_the_heads_own_vertical_without_its_sideways_tilt():
    import math

    import torch

    from face_nerf.export import turntable_axis
    from tests.face_nerf.fields import sphere_head_field

    field = sphere_head_field()
    assert torch.equal(turntable_axis(field), torch.tensor([0.0, 1.0, 0.0]))  # no fitted head
    pitch, roll = math.radians(12.0), math.radians(20.0)
    rx = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(pitch), -math.sin(pitch)], [0.0, math.sin(pitch), math.cos(pitch)]])
    rz = torch.tensor([[math.cos(roll), -math.sin(roll), 0.0], [math.sin(roll), math.cos(roll), 0.0], [0.0, 0.0, 1.0]])
    field.head_axes = 3.0 * rx @ rz  # scaled: head_axes map model metres to world units
    axis = turntable_axis(field)
    assert axis[0].item() == 0.0 and axis.norm().item() == pytest.approx(1.0)
    assert math.degrees(math.atan2(axis[2].item(), axis[1].item())) == pytest.approx(12.0, abs=0.01)


def test_a_vertex_coloured_glb_gets_a_non_metal_material_and_keeps_its_colours(tmp_path):
    import json
    import struct

    import trimesh

    from face_nerf.export import glb_vertex_colours, write_glb

    mesh = trimesh.creation.icosphere(subdivisions=1)
    colours = np.random.default_rng(0).integers(0, 256, (len(mesh.vertices), 4)).astype(np.uint8)
    colours[:, 3] = 255
    mesh.visual.vertex_colors = colours
    write_glb(mesh, tmp_path / "m.glb")
    data = (tmp_path / "m.glb").read_bytes()
    assert struct.unpack("<I", data[8:12])[0] == len(data)  # the header's length is the file's
    length = struct.unpack("<I", data[12:16])[0]
    assert length % 4 == 0
    document = json.loads(data[20:20 + length])
    primitive = document["meshes"][0]["primitives"][0]
    assert document["materials"][primitive["material"]]["pbrMetallicRoughness"]["metallicFactor"] == 0.0
    np.testing.assert_array_equal(glb_vertex_colours(tmp_path / "m.glb"), colours)
    back = trimesh.load(tmp_path / "m.glb", force="mesh")
    np.testing.assert_allclose(back.vertices, mesh.vertices, atol=1e-6)
