"""Edits through the head model: facial actions and shape targets move the surface where the model says,
facial hair is a layer over the jaw, the grammar reads the new edits, and old fields are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from face_nerf.edit.prompt import read_clause


@pytest.fixture(scope="module")
def astronaut():
    from face_nerf.pipeline import reconstruct
    from tests.conftest import EXAMPLES

    return reconstruct(EXAMPLES["astronaut"])


@pytest.fixture(scope="module")
def editor():
    from face_nerf.edit import EmbeddedEditor

    return EmbeddedEditor()


def _vertex(recon, group: str) -> np.ndarray:
    return recon.head.fit.template.vertex_groups[group]


def test_smile_lifts_the_mouth_corners_and_leaves_the_forehead(astronaut, editor):
    from face_nerf.edit.anatomy import ANATOMY, model_offsets

    field = astronaut.field
    offsets = model_offsets(field, *ANATOMY["smile"])
    lips = _vertex(astronaut, "lip_upper")
    corners = lips[np.argsort(np.abs(field.head_vertices[lips, 0].numpy()))[-4:]]  # the widest lip vertices
    assert (offsets[corners, 1] > 0).all()  # up (world +y) ...
    edited = editor.edit(field, "smile").field
    moved = edited.head_vertices - field.head_vertices
    assert float(moved[corners, 1].mean()) > 0.005
    forehead = _vertex(astronaut, "forehead")
    top = forehead[field.head_vertices[forehead, 1].numpy() > np.median(field.head_vertices[forehead, 1].numpy())]
    assert float(moved[top].abs().max()) < 1e-3  # (corners: > 5e-3)


def test_bigger_nose_grows_the_surface_in_front_of_the_nose(astronaut, editor):
    field = astronaut.field
    nose = _vertex(astronaut, "nose")
    tip = nose[np.argmax(field.head_vertices[nose, 2].numpy())]
    probe = field.head_vertices[tip][None] + torch.tensor([[0.0, 0.0, 0.01]])
    edited = editor.edit(field, "bigger nose").field
    assert float(field.sdf(probe)) > 0 > float(edited.sdf(probe))


def test_beard_is_a_layer_over_the_jaw_not_the_forehead(astronaut, editor):
    field = astronaut.field
    chin = _vertex(astronaut, "chin")
    normals = torch.from_numpy(astronaut.head.normals)
    lowest = chin[np.argmin(field.head_vertices[chin, 1].numpy())]
    in_front = field.head_vertices[lowest] + 0.02 * normals[lowest]
    forehead = _vertex(astronaut, "forehead")[0]
    above_forehead = field.head_vertices[forehead] + 0.02 * normals[forehead]
    edited = editor.edit(field, "black beard").field
    probes = torch.stack([in_front, above_forehead])
    before, after = field.sdf(probes), edited.sdf(probes)
    assert before[0] > 0 > after[0]  # the beard stands off the chin
    assert after[1] == pytest.approx(float(before[1]), abs=1e-4)  # the forehead is bare
    assert edited.overlay_grid is not None


@pytest.mark.parametrize("clause, target", [("pointy ears", "pointed ears"), ("a big nose", "bigger nose"),
                                            ("strong chin", "strong chin"), ("wide face", "wider face"),
                                            ("winking", "wink")])
def test_grammar_reads_the_anatomical_edits(clause, target):
    requests, unknown = read_clause(clause)
    assert [r.target for r in requests] == [target] and not unknown


def test_field_without_the_head_model_is_refused_with_the_fix(editor):
    from face_nerf.errors import FaceLabError
    from tests.face_nerf.fields import sphere_head_field

    field = sphere_head_field()
    field.landmarks = torch.zeros(478, 3)
    field.photo_labels = torch.zeros(64, 64, dtype=torch.uint8)
    field.region_grid = torch.zeros(field.sdf_grid.shape[-3:], dtype=torch.uint8)
    with pytest.raises(FaceLabError, match="reconstruct the photo again"):
        editor.edit(field, "pointed ears")
