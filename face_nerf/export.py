"""Outputs of a reconstruction: turntable video, 3-view strip, input view and a GLB mesh (the textured head
model with its hair shell, or marching cubes with vertex colours for a field whose shape was edited)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from face_nerf.lighting import to_display
from face_nerf.relight import LightTransfer, lambert_shader, render_transfer, to_uint8
from face_nerf.render import Camera, MarchSettings, orbit_camera, render_image

FOCAL = 4.2647  # normalised focal length of the turntable camera (~13 degree field of view)
BACKGROUND = (0.93, 0.93, 0.93)  # turntable and strip background, light grey
STRIP_YAWS = (-45.0, 0.0, 45.0)
SKIN_ROUGHNESS = 0.8  # the mesh material's glTF roughness (skin and hair scatter light; they are not glossy)


@dataclass(frozen=True)
class TurntableFrame:
    """Where the camera was for one frame."""

    yaw: float
    pitch: float


FULL_TURN = 180.0  # a max_yaw of 180 degrees is a full turn round the head


def turntable_poses(frames: int, max_yaw: float, pitch: float = 0.0) -> list[TurntableFrame]:
    """A loopable turntable.

    Below ``FULL_TURN`` a sweep, yaw = max_yaw * sin(2 pi i / frames), so the last frame leads back to the
    first; at ``FULL_TURN`` a full turn at constant speed from the front, yaw = 360 i / frames (reported
    in (-180, 180]), which shows the back half-way.
    """
    if frames < 2:
        raise ValueError(f"A turntable needs at least 2 frames. Got {frames}.")
    if max_yaw >= FULL_TURN:
        return [TurntableFrame(_wrapped(360.0 * i / frames), pitch) for i in range(frames)]
    return [TurntableFrame(max_yaw * math.sin(2 * math.pi * i / frames), pitch) for i in range(frames)]


def pose_key(pose: TurntableFrame) -> tuple[float, float]:
    """Poses with equal keys are the same view (rendered once)."""
    return round(pose.yaw, 6), round(pose.pitch, 6)


def _wrapped(yaw: float) -> float:
    """The same direction in (-180, 180] degrees."""
    return yaw - 360.0 if yaw > 180.0 else yaw


def framing(bounds: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Look-at target and orbit radius that fit the head's box in the frame."""
    lo, hi = bounds
    target = torch.tensor([0.0, float(lo[1] + hi[1]) / 2, 0.0])
    extent = 1.02 * float(max(hi[1] - lo[1], hi[0] - lo[0], hi[2] - lo[2]))
    return target, FOCAL * extent


def turntable_axis(field) -> torch.Tensor:
    """[3] the axis a turntable turns about: the fitted head's up direction with its sideways tilt left
    out, so the head turns about its own vertical, seen from the photo's elevation over it, and the
    images keep the photo's upright (the world's y axis for a field without a fitted head)."""
    axes = getattr(field, "head_axes", None)
    if axes is None:
        return torch.tensor([0.0, 1.0, 0.0])
    up = axes[:, 1].detach().float().cpu() * torch.tensor([0.0, 1.0, 1.0])
    if up[1] <= 0 or up.norm() < 1e-6:  # an upside-down fit: keep the world's axis
        return torch.tensor([0.0, 1.0, 0.0])
    return up / up.norm()


def view_camera(field, yaw: float, pitch: float, size: int) -> Camera:
    """The turntable camera at a yaw and pitch (degrees) about ``turntable_axis``."""
    return view_cameras(field, [(yaw, pitch)], size)[0]


def view_cameras(field, poses: list[tuple[float, float]], size: int) -> list[Camera]:
    """``view_camera`` at each of the (yaw, pitch) poses: the framing and the axis worked out once."""
    (target, radius), axis = framing(field.bounds), turntable_axis(field)
    return [orbit_camera(yaw, pitch, radius, target, FOCAL, size, axis) for yaw, pitch in poses]


def render_views(field, poses: list[TurntableFrame], size: int, light: torch.Tensor | None = None, fixed_to: str = "world",
                 settings: MarchSettings = MarchSettings(), progress=None,
                 relightable: bool = True) -> tuple[np.ndarray, LightTransfer | None]:
    """Render views as [N, size, size, 3] uint8 over the background, lit by the SH light [9, 3] (default:
    the photo's own), and the views' opacity, albedo and normals too (``LightTransfer``), for relighting
    without rendering again (``relightable``; else None: nothing is held after the shading).

    Each distinct pose is rendered once: a yaw = max_yaw sin(2 pi i / N) sweep passes every yaw twice,
    so a turntable costs about half its frame count. ``progress(n)`` counts frames."""
    keys = [pose_key(p) for p in poses]
    distinct = list(dict.fromkeys(keys))
    per_view = len(poses) / len(distinct)
    counted = None if progress is None else (lambda n: progress(n * per_view))
    cameras = view_cameras(field, distinct, size)
    order = torch.tensor([distinct.index(k) for k in keys]) if len(distinct) < len(poses) else None
    light = field.photo_light if light is None else light
    transfer = render_transfer(field, cameras, settings, counted)
    transfer.order = order
    return transfer.shade(light, fixed_to, BACKGROUND), (transfer if relightable else None)


def render_input_view(field, light: torch.Tensor | None = None) -> np.ndarray:
    """The field from the photo's own camera, at the photo's resolution, lit by the SH light [9, 3]
    (default: the photo's own, which reproduces the photo): [H, W, 4] uint8 straight-alpha RGBA.
    The input camera has the world's orientation, so world- and camera-fixed lights agree here."""
    out = render_image(field, field.camera, shader=lambert_shader(field.photo_light if light is None else light))
    alpha = out.alpha.clamp(0.0, 1.0)
    rgb = to_display(out.rgb / alpha.clamp(min=1e-6))  # un-premultiply for straight-alpha PNG
    return to_uint8(torch.cat([rgb, alpha], -1))


def write_video(frames: np.ndarray, path: str | Path, fps: int = 24) -> None:
    """Write [N, H, W, 3] uint8 frames as browser-playable H.264 MP4 (yuv420p, faststart)."""
    import imageio.v2 as imageio

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"Frames must be uint8 with a shape of (N, H, W, 3). Got {frames.dtype} {frames.shape}.")
    h, w = frames.shape[1:3]
    frames = frames[:, : h - h % 2, : w - w % 2]  # yuv420p needs even sizes
    with imageio.get_writer(
        str(path), format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
        macro_block_size=1, ffmpeg_log_level="error", output_params=["-movflags", "+faststart", "-crf", "18"],
    ) as writer:
        for frame in frames:
            writer.append_data(frame)


def extract_mesh(field, max_faces: int = 200_000, light: torch.Tensor | None = None):
    """Marching cubes on the SDF grid, coloured with the field's albedo, or with the albedo shaded by
    the SH light [9, 3] when one is given: a ``trimesh.Trimesh`` with sRGB vertex colours.

    The grid is padded with empty space so the mesh is closed where the head meets the box (the neck).
    """
    import trimesh
    from skimage.measure import marching_cubes

    sdf = field.sdf_grid[0, 0].numpy()
    padded = np.pad(sdf, 1, mode="constant", constant_values=float(np.abs(sdf).max()))
    step = field.voxel_size
    level_step = 1
    while True:
        verts, faces, _, _ = marching_cubes(padded, level=0.0, spacing=(step, step, step), step_size=level_step)
        if len(faces) <= max_faces:
            break
        level_step += 1
    # marching_cubes works in (z, y, x) index space; move to world (x, y, z).
    verts = verts[:, ::-1] - step + field.bounds[0].numpy()
    faces = faces[:, ::-1]  # keep outward winding after the axis swap
    points = torch.from_numpy(np.ascontiguousarray(verts, dtype=np.float32))
    albedo, normals = field.attributes(points, -field.surface(points)[0])  # seen squarely, as in a viewer
    colour = albedo if light is None else lambert_shader(light)(albedo, normals)
    colours = to_uint8(to_display(colour))
    rgba = np.concatenate([colours, np.full((len(colours), 1), 255, np.uint8)], 1)
    return trimesh.Trimesh(vertices=verts, faces=faces, vertex_normals=normals.numpy(), vertex_colors=rgba, process=False)


HEAD_MESH_REGIONS = ("scalp", "face", "ears", "lips", "eyes", "neck")  # the outside of the head (no mouth lining)


def textured_head_mesh(field, head, hair, size: int = 1024, light: torch.Tensor | None = None):
    """The fitted head model as a ``trimesh.Scene``: the head with a UV texture image of the field's albedo
    (or the albedo shaded by the SH light [9, 3]), and the hair layer as a textured shell over the scalp.

    Args:
        field: the radiance field (its albedo is baked into the textures).
        head: ``face_nerf.head.place.PlacedHead`` (the mesh, in the field's world).
        hair: ``face_nerf.appearance.hair.HairLayer`` (the shell's thickness per vertex).
        size: texture side in texels.
        light: shade the textures with this light (default: albedo, for viewers that light the mesh).
    """
    import trimesh

    template = head.fit.template
    keep = np.isin(np.arange(len(head.vertices)), np.concatenate([template.regions[r] for r in HEAD_MESH_REGIONS]))
    parts = {"head": (head.vertices, keep[template.faces].all(1))}
    if hair.present and hair.thickness.max() > 0:
        shell = head.vertices + head.normals * hair.thickness[:, None]
        parts["hair"] = (shell, head.region_mask("scalp")[template.faces].all(1))
    scene = trimesh.Scene()
    for name, (vertices, chosen) in parts.items():
        scene.add_geometry(_textured(field, vertices, template.faces[chosen], template.uv_faces[chosen], template.uvs,
                                     size, light), geom_name=name, node_name=name)
    return scene


def _textured(field, vertices: np.ndarray, faces: np.ndarray, uv_faces: np.ndarray, uvs: np.ndarray, size: int, light):
    """One ``trimesh.Trimesh`` with a texture of the field's albedo at its surface (vertices split at UV seams)."""
    import trimesh
    from PIL import Image
    from scipy.ndimage import distance_transform_edt

    from face_nerf.head.texture import texel_map

    texels, points = texel_map(uvs, uv_faces, size).points(vertices, faces)
    points = torch.from_numpy(points.astype(np.float32))
    # A mesh viewer looks from any side, squarely too: each texel as seen along its normal (the photo
    # only where that would not stretch it, as in the fill texture).
    albedo, normals = field.attributes(points, -field.surface(points)[0])
    colour = albedo if light is None else lambert_shader(light)(albedo, normals)
    image = np.zeros((size, size, 3), np.uint8)
    image[texels[:, 0], texels[:, 1]] = to_uint8(to_display(colour))
    empty = np.ones((size, size), bool)
    empty[texels[:, 0], texels[:, 1]] = False
    nearest = distance_transform_edt(empty, return_distances=False, return_indices=True)
    image = image[nearest[0], nearest[1]]  # bleed colours past the islands' edges: no dark seams when mipmapped
    pairs, corner = np.unique(np.stack([faces.ravel(), uv_faces.ravel()], -1), axis=0, return_inverse=True)
    # Skin and hair are dielectric and rough. Left to trimesh's default, the glTF material would be metal
    # (glTF's default metallicFactor is 1) with its colour scaled by 0.4: dark and mirror-like in viewers.
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(image), metallicFactor=0.0,
                                                   roughnessFactor=SKIN_ROUGHNESS)
    visual = trimesh.visual.TextureVisuals(uv=uvs[pairs[:, 1]], material=material)
    return trimesh.Trimesh(vertices=vertices[pairs[:, 0]], faces=corner.reshape(-1, 3), visual=visual, process=False)


def mesh_size(mesh) -> tuple[int, int]:
    """(vertices, faces) of a ``trimesh.Trimesh`` or all the meshes of a ``trimesh.Scene``."""
    meshes = list(mesh.geometry.values()) if hasattr(mesh, "geometry") else [mesh]
    return sum(len(m.vertices) for m in meshes), sum(len(m.faces) for m in meshes)


def write_glb(mesh, path: str | Path) -> None:
    """Export a mesh or scene (vertex colours or texture images) as binary glTF."""
    Path(path).write_bytes(with_skin_material(mesh.export(file_type="glb")))


def glb_vertex_colours(path: str | Path) -> np.ndarray | None:
    """[N, 4] uint8 vertex colours of a GLB written by ``write_glb`` (None for a textured mesh). trimesh
    keeps them beside the material only when it loads the file as a scene (``force="mesh"`` drops them)."""
    import trimesh

    geometry = list(trimesh.load(path, force="scene").geometry.values())
    colours = [g.visual.vertex_attributes.get("color") for g in geometry if hasattr(g.visual, "vertex_attributes")]
    return None if not colours or any(c is None for c in colours) else np.concatenate(colours)


def with_skin_material(glb: bytes) -> bytes:
    """A GLB whose primitives without a material (trimesh writes none for vertex colours) get a rough,
    non-metal one. glTF's default material is metal (metallicFactor 1), which viewers draw dark and
    mirror-like."""
    import json
    import struct

    magic, version, _ = struct.unpack_from("<4sII", glb)
    length, kind = struct.unpack_from("<I4s", glb, 12)
    if magic != b"glTF" or kind != b"JSON":
        raise ValueError("not a binary glTF file with its JSON chunk first")
    document = json.loads(glb[20:20 + length])
    bare = [p for m in document.get("meshes", []) for p in m.get("primitives", []) if "material" not in p]
    if not bare:
        return glb
    materials = document.setdefault("materials", [])
    materials.append({"name": "skin", "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": SKIN_ROUGHNESS}})
    for primitive in bare:
        primitive["material"] = len(materials) - 1
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned; JSON pads with spaces
    rest = glb[20 + length:]
    return struct.pack("<4sII", magic, version, 12 + 8 + len(text) + len(rest)) + struct.pack("<I4s", len(text), b"JSON") \
        + text + rest
