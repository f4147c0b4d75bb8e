"""Photo in, radiance field and its outputs out: the stages, their timings, and atomic writing."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from PIL import Image

from face_nerf.audit import AuditEntry
from face_nerf.delight import Delighting
from face_nerf.edit import EditResult, Editor, EmbeddedEditor
from face_nerf.errors import FaceLabError
from face_nerf.export import (BACKGROUND, STRIP_YAWS, TurntableFrame, extract_mesh, mesh_size, pose_key,
                              render_input_view, render_views, textured_head_mesh, turntable_poses, write_glb, write_video)
from face_nerf.field import AppearanceConfig, HeadField, build_field
from face_nerf.appearance.hair import HairConfig, HairLayer, estimate_hair
from face_nerf.geometry import GeometryConfig, build_head
from face_nerf.head import FitConfig, fit_head, load_head_template, load_landmark_correspondence
from face_nerf.head.place import PlacedHead, place_fitted_head
from face_nerf.landmarks import FaceAnalysis, analyse_face
from face_nerf.lighting import Lighting
from face_nerf.output_folder import staged_folder
from face_nerf.photo import Photo, load_photo
from face_nerf.provenance import Creation, Provenance, sign_outputs
from face_nerf.relight import LightTransfer
from face_nerf.signing import file_sha256
from face_nerf.watermark import embed, new_creation_id

BACKEND = "embedded-head-model"  # the offline reconstruction: MakeHuman head fitted to the landmarks, hair layer, photo albedo
MAX_FRAMES, MAX_SIZE, MAX_YAW = 240, 1024, 180.0


@dataclass(frozen=True)
class ReconstructionConfig:
    """Options of a reconstruction run.

    Attributes:
        frames: turntable frames.
        size: turntable and strip view size in pixels (square).
        yaw: turntable sweeps between -yaw and +yaw degrees; 180 is a full turn (``export.FULL_TURN``).
        fps: turntable frame rate.
        fit: how the head model is fitted to the landmarks.
        hair: how the hair layer is read from the photo.
        geometry: head SDF grid options.
        appearance: albedo options.
        lighting: how the outputs are lit (default: the photo's own light).
        mesh_lighting: bake the lighting into the mesh's vertex colours (default: albedo, for viewers
            that light the mesh themselves).
        relightable: keep the rendered views' albedo and normals (``LightTransfer``), so ``relight_outputs``
            can change the light without rendering again (the app); off, nothing is kept once they are
            shaded (a one-off command line run).
        device: where the turntable, strip and input view are rendered ("cpu", or "cuda" / "cuda:N": the
            same kernels on a GPU); face analysis, fitting and the mesh stay on the CPU.
    """

    frames: int = 48
    size: int = 256
    yaw: float = 45.0
    fps: int = 24
    fit: FitConfig = field(default_factory=FitConfig)
    hair: HairConfig = field(default_factory=HairConfig)
    geometry: GeometryConfig = field(default_factory=GeometryConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    lighting: Lighting = field(default_factory=Lighting)
    mesh_lighting: bool = False
    relightable: bool = True
    device: str = "cpu"

    def __post_init__(self):
        check_render_device(self.device)
        if not 2 <= self.frames <= MAX_FRAMES:
            raise FaceLabError(f"frames must be between 2 and {MAX_FRAMES}. Got {self.frames}.")
        if not 32 <= self.size <= MAX_SIZE:
            raise FaceLabError(f"size must be between 32 and {MAX_SIZE} pixels. Got {self.size}.")
        if not 0.0 <= self.yaw <= MAX_YAW:
            raise FaceLabError(f"yaw must be between 0 and {MAX_YAW:.0f} degrees. Got {self.yaw}.")
        if not 1 <= self.fps <= 60:
            raise FaceLabError(f"fps must be between 1 and 60. Got {self.fps}.")


def check_render_device(device: str) -> None:
    """Raise FaceLabError unless ``device`` is the CPU or a CUDA GPU torch can use here."""
    try:
        kind = torch.device(device).type
    except RuntimeError as err:
        raise FaceLabError(f"{device!r} is not a device: use cpu, cuda or cuda:N.") from err
    if kind not in ("cpu", "cuda"):
        raise FaceLabError(f"The renderer runs on cpu or cuda. Got {device!r}.")
    if kind == "cuda" and not torch.cuda.is_available():
        raise FaceLabError(f"{device!r} was asked for, but torch sees no CUDA GPU here: run on a GPU machine "
                           f"with a CUDA build of torch, or leave the device at cpu.")


def _render_field(recon: "Reconstruction", config: ReconstructionConfig) -> HeadField:
    """The field on the device the config renders on."""
    return recon.field if config.device == "cpu" else recon.field.to(config.device)


@dataclass
class Reconstruction:
    """A photo turned into a head radiance field.

    Attributes:
        field: the radiance field.
        photo: the photo it came from.
        analysis: landmarks and person mask.
        head: the head model fitted to the photo and placed in the field's world.
        hair: the hair layer read from the photo.
        delighting: the photo's estimated light (None when delighting is off).
        timings: seconds per stage, in order.
        warnings: messages for the user.
        edit: the text edit applied to ``field`` (None: the field as reconstructed).
        fitted_sdf: the SDF grid as reconstructed: while ``field`` still has it, the head model's mesh is
            the field's shape and is what is exported.
        creation_id: the id every image rendered from it carries as an invisible watermark (kept through
            edits and relighting: one photo's creation).
    """

    field: HeadField
    photo: Photo
    analysis: FaceAnalysis
    head: PlacedHead
    hair: HairLayer
    delighting: Delighting | None
    timings: dict[str, float]
    warnings: list[str]
    edit: EditResult | None = None
    fitted_sdf: torch.Tensor | None = None
    creation_id: str = field(default_factory=new_creation_id)


@dataclass
class Outputs:
    """What a run produced: the rendered arrays, the mesh and the report (written by ``write_outputs``),
    plus the light transfer of the turntable and strip, so ``relight_outputs`` can change the light."""

    frames: np.ndarray  # [N, S, S, 3] uint8 turntable
    poses: list  # [N] TurntableFrame
    strip: np.ndarray  # [S, 3S, 3] uint8
    input_view: np.ndarray  # [H, W, 4] uint8
    mesh: object  # trimesh.Trimesh
    report: dict
    lighting: Lighting
    turntable_transfer: LightTransfer | None  # None unless the run was ``relightable``
    strip_transfer: LightTransfer | None


@contextmanager
def _stage(timings: dict[str, float], name: str):
    start = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - start, 4)


def reconstruct(source, config: ReconstructionConfig = ReconstructionConfig()) -> Reconstruction:
    """Turn one face photo into a head radiance field.

    Args:
        source: path, bytes, PIL image or array (see ``load_photo``).
        config: options.

    Raises:
        PhotoError: the file is not a usable photo.
        NoFaceError: no face in it.
    """
    timings: dict[str, float] = {}
    with _stage(timings, "load"):
        photo = load_photo(source)
    with _stage(timings, "landmarks"):
        analysis = analyse_face(photo.rgb)
    with _stage(timings, "fit"):
        template, correspondence = load_head_template(), load_landmark_correspondence()
        fit = fit_head(analysis.landmarks, template, correspondence, config.fit)
        head = place_fitted_head(fit, correspondence, analysis.image_size, analysis.landmarks)
    with _stage(timings, "hair"):
        hair = estimate_hair(photo.rgb, analysis.person_mask, head, config.hair)
    with _stage(timings, "geometry"):
        geometry = build_head(head, hair, config.geometry)
    with _stage(timings, "field"):
        radiance, delighting = build_field(photo.rgb, analysis.person_mask, head, hair, geometry, config.appearance)
    return Reconstruction(radiance, photo, analysis, head, hair, delighting, timings, list(analysis.warnings),
                          fitted_sdf=radiance.sdf_grid)


def edit_reconstruction(recon: Reconstruction, prompt: str, editor: Editor | None = None, seed: int = 0) -> Reconstruction:
    """The reconstruction with its field edited by a text prompt (the same one for an empty prompt).

    Raises:
        PromptError: the prompt cannot be read (the message names the words and suggests edits).
    """
    editor = editor or EmbeddedEditor()
    start = time.perf_counter()
    result = dataclasses.replace(editor.edit(recon.field, prompt, seed), prompt=prompt)
    timings = dict(recon.timings, edit=round(time.perf_counter() - start, 4))
    return dataclasses.replace(recon, field=result.field, timings=timings, edit=result)


@dataclass
class Turntable:
    """The first stage of ``render_outputs``: the turntable alone (what a streaming caller shows first)."""

    frames: np.ndarray  # [N, S, S, 3] uint8
    poses: list  # [N] TurntableFrame
    light: torch.Tensor  # [9, 3] the SH light it is lit by
    transfer: LightTransfer | None  # None unless ``relightable``


def render_outputs(recon: Reconstruction, config: ReconstructionConfig = ReconstructionConfig(),
                   progress: Callable[[int], None] | None = None) -> Outputs:
    """Render the turntable, strip and input view under ``config.lighting`` and extract the mesh;
    ``progress(n)`` is called as frames finish."""
    return finish_outputs(recon, config, render_turntable(recon, config, progress))


def render_turntable(recon: Reconstruction, config: ReconstructionConfig = ReconstructionConfig(),
                     progress: Callable[[int], None] | None = None) -> Turntable:
    """The turntable under ``config.lighting``; ``progress(n)`` is called as frames finish."""
    poses = turntable_poses(config.frames, config.yaw)
    light = config.lighting.to_sh(recon.field.photo_light)
    with _stage(recon.timings, "turntable"):
        frames, transfer = render_views(_render_field(recon, config), poses, config.size, light,
                                        config.lighting.fixed_to, progress=progress, relightable=config.relightable)
    with _stage(recon.timings, "watermark"):
        frames = embed(frames, recon.creation_id)
    return Turntable(frames, poses, light, transfer)


def finish_outputs(recon: Reconstruction, config: ReconstructionConfig, turntable: Turntable) -> Outputs:
    """The rest of ``render_outputs`` after its turntable: the strip, the input view, the mesh and the report."""
    timings, light, fixed_to, poses = recon.timings, turntable.light, config.lighting.fixed_to, turntable.poses
    with _stage(timings, "strip"):
        frames = strip_frames(poses)
        if frames is None:
            views, strip_transfer = render_views(_render_field(recon, config), _strip_poses(), config.size, light,
                                                 fixed_to, relightable=config.relightable)
            views = embed(views, recon.creation_id)
        else:  # the turntable has these views already (watermarked): the same pixels, not rendered again
            strip_transfer = None
            if turntable.transfer is not None:
                order = turntable.transfer.order
                strip_transfer = turntable.transfer.views([int(order[i]) if order is not None else i for i in frames])
            views = turntable.frames[frames]
        strip = np.concatenate(list(views), axis=1)
    with _stage(timings, "input_view"):
        input_view = embed(render_input_view(_render_field(recon, config), light), recon.creation_id)
    with _stage(timings, "mesh"):
        mesh = _mesh(recon, light if config.mesh_lighting else None)
    report = {
        "backend": BACKEND,
        "creation_id": recon.creation_id,  # the invisible watermark's payload in every image (face_nerf.watermark)
        "photo": {"source": recon.photo.source, "width": recon.photo.size[0], "height": recon.photo.size[1]},
        "landmark_count": int(recon.analysis.landmarks.shape[0]),
        "faces_found": recon.analysis.num_faces,
        "frames": [{"index": i, "yaw": round(p.yaw, 4), "pitch": round(p.pitch, 4)} for i, p in enumerate(poses)],
        "strip_yaws": list(STRIP_YAWS),
        "config": {"frames": config.frames, "size": config.size, "yaw": config.yaw, "fps": config.fps},
        "lighting": _lighting_report(recon, config.lighting, light, config.mesh_lighting),
        "edit": _edit_report(recon.edit),
        "mesh": _mesh_report(mesh),
        "warnings": recon.warnings,
        "timings_s": timings,
    }
    return Outputs(turntable.frames, poses, strip, input_view, mesh, report, config.lighting, turntable.transfer,
                   strip_transfer)


def relight_outputs(recon: Reconstruction, outputs: Outputs, lighting: Lighting, mesh_lighting: bool = False) -> Outputs:
    """The same outputs under another light, from the kept light transfer: nothing is reconstructed or
    ray-marched again except the input view (one image). The mesh is re-coloured only with
    ``mesh_lighting``."""
    if outputs.turntable_transfer is None or outputs.strip_transfer is None:
        raise FaceLabError("These outputs kept no light transfer (made with relightable=False): render them "
                           "again with the new light, or keep the transfer to relight.")
    timings: dict[str, float] = {}
    light = lighting.to_sh(recon.field.photo_light)
    with _stage(timings, "relight_turntable"):
        frames = embed(outputs.turntable_transfer.shade(light, lighting.fixed_to, BACKGROUND), recon.creation_id)
    with _stage(timings, "relight_strip"):
        views = embed(outputs.strip_transfer.shade(light, lighting.fixed_to, BACKGROUND), recon.creation_id)
        strip = np.concatenate(list(views), axis=1)
    with _stage(timings, "relight_input_view"):
        input_view = embed(render_input_view(recon.field, light), recon.creation_id)
    mesh = _mesh(recon, light) if mesh_lighting else outputs.mesh
    report = dict(outputs.report, lighting=_lighting_report(recon, lighting, light, mesh_lighting),
                  timings_s={**outputs.report["timings_s"], **timings})
    return Outputs(frames, outputs.poses, strip, input_view, mesh, report, lighting, outputs.turntable_transfer,
                   outputs.strip_transfer)


def _mesh(recon: Reconstruction, light: torch.Tensor | None):
    """The textured head model while the field has its reconstructed shape; marching cubes with vertex
    colours once an edit has changed the shape (a smile, glasses), so the mesh always matches the renders."""
    if recon.fitted_sdf is not None and recon.field.sdf_grid is recon.fitted_sdf:
        return mark_textures(textured_head_mesh(recon.field, recon.head, recon.hair, light=light), recon.creation_id)
    return extract_mesh(recon.field, light=light)  # vertex colours: no image to carry a watermark


def mark_textures(scene, creation_id: str):
    """The scene with the watermark in each texture image (in place; returned)."""
    for geometry in scene.geometry.values():
        material = getattr(geometry.visual, "material", None)
        for slot in ("image", "baseColorTexture"):  # trimesh's SimpleMaterial, PBRMaterial
            texture = getattr(material, slot, None)
            if texture is not None:
                mode = "RGBA" if texture.mode == "RGBA" else "RGB"
                setattr(material, slot, Image.fromarray(embed(np.asarray(texture.convert(mode)), creation_id), mode))
    return scene


def _mesh_report(mesh) -> dict:
    vertices, faces = mesh_size(mesh)
    kind = "head model with UV texture and hair shell" if hasattr(mesh, "geometry") else "marching cubes, vertex colours"
    return {"vertices": vertices, "faces": faces, "kind": kind}


def _edit_report(edit: EditResult | None) -> dict:
    if edit is None:
        return {"backend": None, "applied": [], "summary": "no edit"}
    return {"backend": edit.backend, "summary": edit.summary(),
            "applied": [{"target": a.target, "change": a.change, "strength": a.strength, "level": a.level,
                         "phrase": a.phrase, "matched": a.matched} for a in edit.applied]}


def strip_frames(poses: list[TurntableFrame]) -> list[int] | None:
    """The turntable frames that show the strip's views (``STRIP_YAWS`` at pitch 0), or None when it
    lacks one (e.g. 42 frames of a ±45° sweep never reach ±45° exactly)."""
    keys = [pose_key(p) for p in poses]
    wanted = [pose_key(p) for p in _strip_poses()]
    return [keys.index(k) for k in wanted] if all(k in keys for k in wanted) else None


def _strip_poses() -> list[TurntableFrame]:
    return [TurntableFrame(yaw, 0.0) for yaw in STRIP_YAWS]


def _lighting_report(recon: Reconstruction, lighting: Lighting, light, mesh_lighting: bool) -> dict:
    report = {"name": lighting.name, "fixed_to": lighting.fixed_to, "mesh_colours": "lit" if mesh_lighting else "albedo",
              "sh": [[round(v, 5) for v in row] for row in light.tolist()]}
    if lighting.custom is not None:
        report["custom"] = {k: getattr(lighting.custom, k) for k in ("azimuth", "elevation", "color", "intensity", "ambient")}
    if recon.delighting is not None:
        estimate = recon.delighting.estimate
        report["photo_light"] = {
            "sh": [[round(v, 5) for v in row] for row in estimate.light.tolist()],
            "skin_albedo": [round(v, 4) for v in estimate.skin_albedo.tolist()],
            "inlier_share": round(float((estimate.inliers > 0).float().mean()), 4),
            "relative_rms": round(estimate.rms, 4),
        }
    return report


TOOL = "face_nerf reconstruct"  # the writer named in the output folder's marker
SIGNED = ("turntable.mp4", "views.png", "input_view.png", "mesh.glb")  # what carries a manifest or a signed sidecar


def write_outputs(recon: Reconstruction, outputs: Outputs, out_dir: str | Path, fps: int = 24,
                  inputs: Iterable[str | os.PathLike] = (), video: str | Path | None = None,
                  provenance: Provenance = Provenance()) -> Path:
    """Write every output into ``out_dir`` atomically: all files are written to a temporary folder
    beside it, which then replaces ``out_dir``; if anything fails, ``out_dir`` is left as it was. The
    images, the video and the mesh are signed (a C2PA manifest, a signed sidecar for the mesh), and the
    creation is recorded in ``provenance.audit`` when one is given.

    Args:
        inputs: paths the run read (the photo); ``out_dir`` may not be or contain them.
        video: the turntable already encoded from ``outputs.frames`` (a streaming caller showed it first):
            copied instead of encoded again.
        provenance: the signing key, the audit log and how consent was given.

    Raises:
        OutputError: ``out_dir`` holds files this tool did not write, contains an input, or cannot be
            written (see ``face_nerf.output_folder``); nothing is written then.
    """
    with staged_folder(out_dir, TOOL, inputs) as staging:
        start = time.perf_counter()
        if video is None:
            write_video(outputs.frames, staging / "turntable.mp4", fps)
        else:
            shutil.copyfile(video, staging / "turntable.mp4")
        Image.fromarray(outputs.strip).save(staging / "views.png")
        Image.fromarray(outputs.input_view, mode="RGBA").save(staging / "input_view.png")
        write_glb(outputs.mesh, staging / "mesh.glb")
        recon.field.save(staging / "field.safetensors")
        creation = creation_record(recon, outputs)
        sign_outputs(staging, SIGNED, creation, provenance.identity)
        outputs.report["timings_s"]["write"] = round(time.perf_counter() - start, 4)
        (staging / "report.json").write_text(json.dumps(outputs.report, indent=2))
    if provenance.audit is not None:
        provenance.audit.record(AuditEntry(time.time(), provenance.event, creation.creation_id, recon.photo.sha256,
                                           creation.prompt, creation.backends, provenance.consent,
                                           {name: file_sha256(Path(out_dir) / name) for name in (*SIGNED, "field.safetensors")}))
    return Path(out_dir)


def creation_record(recon: Reconstruction, outputs: Outputs) -> Creation:
    """What the provenance manifest and the audit log say about a creation."""
    edit = recon.edit
    backends = {"reconstruction": BACKEND, "editor": edit.backend if edit else None, "lighting": outputs.lighting.name}
    return Creation(recon.creation_id, backends, [a.describe() for a in edit.applied] if edit else [],
                    edit.prompt if edit else "")


def set_cpu_threads(threads: int | None = None) -> None:
    """Use ``threads`` torch threads (default: all cores the process may use)."""
    torch.set_num_threads(threads or len(os.sched_getaffinity(0)))

