"""The landmark-to-template correspondence: mediapipe's 478 landmarks as points on the head template.

One correspondence is built per module (a few seconds: a render and one landmarker run) into a temporary
cache folder; the cache tests replace the builder with a trap or a stub, so they cost no build.
"""

from __future__ import annotations

import numpy as np
import pytest

import face_nerf.head.correspondence as correspondence
from face_nerf.errors import FaceLabError
from face_nerf.head import LandmarkCorrespondence, load_landmark_correspondence
from face_nerf.head.raster import OrthographicCamera, rasterize
from face_nerf.landmarks import CHIN, LEFT_EYE_OUTER, NOSE_TIP, NUM_LANDMARKS, RIGHT_EYE_OUTER, detect_landmarks

MIRROR_PAIRS = ((33, 263), (133, 362), (61, 291), (234, 454))
SILHOUETTE = (234, 454)  # on the face's outline the surface is steep: z follows x closely


@pytest.fixture(scope="module")
def points(corr, head):
    return corr.points(head.vertices)


def _in_group(head, vertices, *names):
    return np.isin(vertices, np.concatenate([head.vertex_groups.get(n, head.regions.get(n)) for n in names]))


# --- shape and validity -----------------------------------------------------------------------------


def test_every_landmark_has_a_triangle_and_barycentrics(corr, head, points):
    assert corr.triangles.shape == (NUM_LANDMARKS,) and corr.triangles.dtype == np.int32
    assert corr.barycentric.shape == (NUM_LANDMARKS, 3) and corr.barycentric.dtype == np.float32
    assert ((corr.triangles >= 0) & (corr.triangles < len(head.faces))).all()
    np.testing.assert_array_equal(corr.corners, head.faces[corr.triangles])
    assert (corr.barycentric >= 0).all()
    np.testing.assert_allclose(corr.barycentric.sum(1), 1, atol=1e-5)
    assert points.shape == (NUM_LANDMARKS, 3) and points.dtype == np.float32


# --- anatomy ----------------------------------------------------------------------------------------


def test_nose_tip_is_on_the_nose_near_the_frontmost_point(corr, head, points):
    assert _in_group(head, corr.corners[NOSE_TIP], "nose").all()
    face = head.regions["face"]
    assert head.vertices[face, 2].max() - points[NOSE_TIP, 2] < 0.006
    assert abs(points[NOSE_TIP, 0]) < 0.003


@pytest.mark.parametrize("index", [13, 14, 0, 17, 61, 291])
def test_lip_landmarks_land_on_the_lips(corr, head, index):
    assert _in_group(head, corr.corners[index], "lips").any()


def test_eye_corners_are_on_the_eyelids_of_the_right_side(corr, head, points):
    # mediapipe's 33/133 are the subject's right eye (-x in the template), 362/263 the left (+x).
    for index, lid, sign in ((RIGHT_EYE_OUTER, "eyelid_right", -1), (133, "eyelid_right", -1),
                             (362, "eyelid_left", 1), (LEFT_EYE_OUTER, "eyelid_left", 1)):
        assert _in_group(head, corr.corners[index], lid).any(), index
        assert np.sign(points[index, 0]) == sign
    assert abs(points[RIGHT_EYE_OUTER, 0]) > abs(points[133, 0])  # outer corner further out than inner


def test_irises_are_on_the_eyeballs(corr, head):
    assert _in_group(head, corr.corners[468:473], "eyeball_right").all()
    assert _in_group(head, corr.corners[473:478], "eyeball_left").all()


def test_chin_is_the_lowest_face_landmark(points):
    assert np.argmin(points[:468, 1]) == CHIN


def test_mirror_pairs_map_to_mirrored_points(points):
    for right, left in MIRROR_PAIRS:
        a, b = points[right], points[left] * np.array([-1, 1, 1])
        assert np.abs(a[:2] - b[:2]).max() < 0.003, (right, left, a, b)
        assert abs(a[2] - b[2]) < (0.008 if (right, left) == SILHOUETTE else 0.003), (right, left, a, b)


# --- round trip -------------------------------------------------------------------------------------


def test_points_project_onto_the_landmarks_of_another_render(corr, head, points):
    camera = OrthographicCamera((0.005, 0.0), 1500.0, (512, 512))  # another scale and framing
    render = correspondence.render_template(head, camera=camera)
    found = detect_landmarks((render.image * 255).round().astype(np.uint8))
    assert found, "the landmarker finds the face on the template's render"
    error = np.linalg.norm(camera.project(points)[:, :2] - found[0][:, :2], axis=1)
    assert error.mean() < 2.0 and np.percentile(error, 95) < 3.0 and error.max() < 6.0, error


def test_points_follow_a_deformation(corr, head, points):
    moved = corr.points(head.deformed({"nose-trans-forward": 1.0}))
    assert np.linalg.norm(moved[NOSE_TIP] - points[NOSE_TIP]) > 0.001
    np.testing.assert_allclose(moved[CHIN], points[CHIN], atol=1e-6)


# --- errors -----------------------------------------------------------------------------------------


def test_points_rejects_wrong_vertices(corr):
    with pytest.raises(ValueError, match=r"\(V, 3\)"):
        corr.points(np.zeros((10, 3)))
    with pytest.raises(ValueError, match=r"\(V, 3\)"):
        corr.points(np.zeros((5000, 2)))


def test_correspondence_rejects_bad_arrays(corr):
    with pytest.raises(ValueError, match="shape"):
        LandmarkCorrespondence(corr.triangles[:10], corr.corners, corr.barycentric)
    with pytest.raises(ValueError, match="sum to 1"):
        LandmarkCorrespondence(corr.triangles.copy(), corr.corners.copy(), corr.barycentric * 2)


def test_no_face_on_the_render_is_a_clear_error(head, monkeypatch):
    calls = []
    monkeypatch.setattr(correspondence.face_landmarks, "detect_landmarks", lambda rgb, max_faces: calls.append(1) or [])
    monkeypatch.setattr(correspondence, "render_template", lambda template, setup: _tiny_render())
    with pytest.raises(FaceLabError, match="found no face"):
        correspondence.build_landmark_correspondence(head)
    assert len(calls) == len(correspondence.RENDER_SETUPS)  # every variation was tried


def _tiny_render():
    tri = np.array([[-1, -1, 0], [1, -1, 0], [0, 1, 0]], np.float32)
    return rasterize(tri, np.array([[0, 1, 2]]), np.ones((3, 3)), OrthographicCamera((0, 0), 4, (8, 8)))


# --- cache ------------------------------------------------------------------------------------------


def test_second_call_reads_the_cache(cache_dir, corr, monkeypatch):
    def trap(template):
        raise AssertionError("the correspondence was rebuilt instead of read from the cache")

    monkeypatch.setattr(correspondence, "build_landmark_correspondence", trap)
    again = load_landmark_correspondence(cache_dir)
    np.testing.assert_array_equal(again.triangles, corr.triangles)
    np.testing.assert_array_equal(again.barycentric, corr.barycentric)


def test_new_key_rebuilds(cache_dir, corr, monkeypatch):
    built = []
    monkeypatch.setattr(correspondence, "build_landmark_correspondence", lambda template: built.append(1) or corr)
    monkeypatch.setattr(correspondence, "FORMAT_VERSION", correspondence.FORMAT_VERSION + 1)
    load_landmark_correspondence(cache_dir)
    monkeypatch.setattr(correspondence, "mediapipe_version", lambda: "9.9.9")
    load_landmark_correspondence(cache_dir)
    load_landmark_correspondence(cache_dir)  # now cached under that key
    assert len(built) == 2


def test_raster_barycentrics_reproduce_the_pixel_centre():
    render = _tiny_render()
    row, col = 4, 4
    corners = render.screen[[0, 1, 2], :2]
    np.testing.assert_allclose(render.barycentric[row, col] @ corners, [col + 0.5, row + 0.5], atol=1e-5)
    assert (render.triangle == -1).any() and np.isinf(render.depth[render.triangle == -1]).all()
