"""Provenance of FaceLab 3D's outputs: a signed C2PA manifest in every PNG and MP4 (``c2pa-python``), a
signed JSON sidecar for the files C2PA cannot hold (the GLB mesh), and ``verify_file``, which reads
both and looks for the invisible watermark (``face_nerf.watermark``).

The manifest names the tool and its version, the backends and the edits, carries the creation's id (the
watermark's payload), and marks the output as made by AI (IPTC's ``trainedAlgorithmicMedia``). No
thumbnail is embedded: the output is the only picture of the person it holds.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from face_nerf.errors import FaceLabError
from face_nerf.signing import SigningIdentity, check_sidecar, load_identity, trust_anchors, write_sidecar

TOOL = "FaceLab 3D"
VERSION = "0.20.0"
ASSERTION = "org.facelab.creation"
AI_GENERATED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
C2PA_TYPES = {".png": "image/png", ".mp4": "video/mp4", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".webp": "image/webp"}
MADE_WITH = "made with FaceLab 3D"


@dataclass(frozen=True)
class Creation:
    """What the manifest says about one creation."""

    creation_id: str  # the watermark's payload (12 hex digits)
    backends: dict[str, str]  # what made it: reconstruction, editor, lighting
    edits: list[str] = field(default_factory=list)  # the text edits applied, as the editor read them
    prompt: str = ""  # the prompt as typed


def manifest(creation: Creation, title: str) -> dict:
    """The C2PA manifest definition of one output file."""
    actions = [{"action": "c2pa.created", "digitalSourceType": AI_GENERATED,
                "softwareAgent": {"name": TOOL, "version": VERSION},
                "parameters": {"description": "3D face reconstructed from one photo and rendered"}}]
    actions += [{"action": "c2pa.edited", "digitalSourceType": AI_GENERATED, "softwareAgent": {"name": TOOL},
                 "parameters": {"description": edit}} for edit in creation.edits]
    return {
        "claim_generator_info": [{"name": TOOL, "version": VERSION}],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": actions}},
            {"label": ASSERTION, "data": {"tool": TOOL, "version": VERSION, "ai_generated": True, **asdict(creation)}},
        ],
    }


def sign_output(path: str | Path, creation: Creation, identity: SigningIdentity | None = None) -> str:
    """Sign one output file in place: a C2PA manifest embedded in a PNG, JPEG, WebP or MP4, a signed JSON
    sidecar (``<file>.provenance.json``) for anything else. Returns "c2pa" or "sidecar".

    Raises:
        ProvenanceError: the file cannot be signed (the message says why).
    """
    import c2pa

    path = Path(path)
    identity = identity or load_identity()
    definition = manifest(creation, path.name)
    kind = C2PA_TYPES.get(path.suffix.lower())
    if kind is None:
        write_sidecar(path, definition, identity)
        return "sidecar"
    source = io.BytesIO(path.read_bytes())
    signed = io.BytesIO()
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, identity.chain_pem,
                                                           identity.private_key_pem, None))
        with signer, c2pa.Builder(definition, context=_context()) as builder:
            builder.sign(signer, kind, source, signed)
    except c2pa.C2paError as err:
        raise ProvenanceError(f"Could not sign {path.name} with a C2PA manifest ({err}).") from err
    tmp = path.with_name(f".{path.name}.signing")
    tmp.write_bytes(signed.getvalue())
    tmp.replace(path)
    return "c2pa"


class ProvenanceError(FaceLabError):
    """An output cannot be signed."""


@dataclass(frozen=True)
class Provenance:
    """How ``face_nerf.pipeline.write_outputs`` signs and logs a creation."""

    identity: SigningIdentity | None = None  # None: ``load_identity()`` (the operator's key, else this machine's own)
    audit: object = None  # a ``face_nerf.audit.AuditLog`` the creation is recorded in (None: not logged)
    consent: str = "cli"  # how the right to use the photo was confirmed: ui, api, cli, example
    event: str = "create"  # create | relight


def sign_outputs(folder: Path, names: tuple[str, ...], creation: Creation, identity: SigningIdentity | None) -> dict[str, str]:
    """Sign each named file in ``folder`` (``sign_output``); returns {name: "c2pa" or "sidecar"}."""
    identity = identity or load_identity()
    return {name: sign_output(folder / name, creation, identity) for name in names if (folder / name).is_file()}


def _context(anchors: bytes | None = None):
    """c2pa settings: no thumbnail in what we sign; when reading, trust ``anchors`` (PEM)."""
    import c2pa

    settings: dict = {"builder": {"thumbnail": {"enabled": False}}}
    if anchors:
        settings.update(verify={"verify_trust": True}, trust={"user_anchors": anchors.decode()})
    return c2pa.Context.from_json(json.dumps(settings))


# --- verification ----------------------------------------------------------------------------------


@dataclass
class Verification:
    """What ``verify_file`` found in one file."""

    path: str
    watermark_found: bool
    creation_id: str | None  # the watermark's payload
    watermark_score: float  # the detection statistic (found: >= face_nerf.watermark.THRESHOLD)
    manifest_kind: str | None  # "c2pa", "sidecar" or None
    manifest: dict | None  # FaceLab's assertion (or the whole manifest of another tool)
    signature_valid: bool | None  # None: no manifest
    trusted: bool | None  # the signer's certificate chains to a trust anchor ($FACELAB_TRUST_ANCHORS)
    signer: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def made_with_facelab(self) -> bool:
        return self.watermark_found or (bool(self.signature_valid) and self.manifest is not None
                                        and self.manifest.get("tool") == TOOL)

    def lines(self) -> list[str]:
        """The report ``python -m face_nerf verify`` prints."""
        out = [f"{self.path}:"]
        if self.watermark_found:
            out.append(f"  watermark: found ({MADE_WITH}), creation id {self.creation_id} "
                       f"(score {self.watermark_score:.1f})")
        else:
            out.append(f"  watermark: none found (score {self.watermark_score:.1f})")
        if self.manifest_kind is None:
            out.append("  manifest: none")
        else:
            verdict = "verifies" if self.signature_valid else "does NOT verify"
            trust = "; signer trusted" if self.trusted else "; signer not in the trust anchors ($FACELAB_TRUST_ANCHORS)"
            out.append(f"  manifest: {self.manifest_kind}, signature {verdict}{trust if self.signature_valid else ''}")
            out.append(f"  signed by: {self.signer}")
            out += [f"    {line}" for line in json.dumps(self.manifest, indent=2).splitlines()]
        out += [f"  problem: {p}" for p in self.problems]
        return out


def verify_file(path: str | Path, anchors: bytes | None = None, thorough: bool = True) -> Verification:
    """Look for the watermark and the manifest (embedded C2PA or a signed sidecar) in a file.

    Args:
        anchors: PEM certificates to trust (default: $FACELAB_TRUST_ANCHORS).
        thorough: search every scale for the watermark, not only the likely ones (seconds).

    Raises:
        ProvenanceError: the file is missing or holds no image, video or mesh that can be read.
    """
    from face_nerf.watermark import detect

    path = Path(path)
    if not path.is_file():
        raise ProvenanceError(f"{path} is not a file: give the path of an image, video or mesh.")
    anchors = anchors if anchors is not None else trust_anchors()
    try:
        pictures, unreadable = _pictures(path), None
    except ProvenanceError as err:  # a changed file may still hold a manifest to report
        pictures, unreadable = [], err
    detections = [detect(images, thorough=thorough) for images in pictures]
    best = max(detections, key=lambda d: (d.found, d.score), default=None)
    result = Verification(str(path), bool(best and best.found), best and best.creation_id,
                          round(best.score, 2) if best else 0.0, None, None, None, None, None)
    if unreadable is not None:
        result.problems.append(f"the pixels cannot be read, so no watermark was looked for ({unreadable})")
    elif best is None:
        result.problems.append("the mesh has vertex colours and no texture image, so it carries no watermark")
    sidecar = check_sidecar(path, anchors)
    if sidecar is not None:
        result.manifest_kind, result.signature_valid, result.trusted = "sidecar", sidecar.signature_valid, sidecar.trusted
        result.manifest, result.signer = _ours(sidecar.manifest), sidecar.signer
        result.problems += sidecar.problems
    elif path.suffix.lower() in C2PA_TYPES:
        _read_c2pa(path, anchors, result)
    if unreadable is not None and not result.manifest:  # nothing readable at all: not a picture
        raise unreadable
    if result.manifest and result.creation_id and result.manifest.get("creation_id") not in (None, result.creation_id):
        result.problems.append("the watermark's id and the manifest's differ")
    return result


def _ours(definition: dict) -> dict:
    """FaceLab's assertion of a manifest definition, or the definition itself."""
    for assertion in definition.get("assertions", []):
        if assertion.get("label") == ASSERTION:
            return assertion["data"]
    return definition


def _read_c2pa(path: Path, anchors: bytes | None, result: Verification) -> None:
    import c2pa

    try:
        with c2pa.Reader(C2PA_TYPES[path.suffix.lower()], io.BytesIO(path.read_bytes()), context=_context(anchors)) as reader:
            store = json.loads(reader.json())
    except c2pa.C2paError as err:
        if "ManifestNotFound" in type(err).__name__ or "no JUMBF" in str(err):
            return
        result.manifest_kind, result.signature_valid = "c2pa", False
        result.problems.append(f"the C2PA manifest cannot be read ({err})")
        return
    active = store.get("manifests", {}).get(store.get("active_manifest"), {})
    failures = [f for f in store.get("validation_results", {}).get("activeManifest", {}).get("failure", [])
                if f.get("code") != "signingCredential.untrusted"]
    result.manifest_kind = "c2pa"
    result.signature_valid = store.get("validation_state") in ("Valid", "Trusted") and not failures
    result.trusted = store.get("validation_state") == "Trusted"
    info = active.get("signature_info", {})
    result.signer = ", ".join(v for v in (info.get("common_name"), info.get("issuer")) if v) or None
    ours = [a["data"] for a in active.get("assertions", []) if a.get("label") == ASSERTION]
    result.manifest = ours[0] if ours else {"claim_generator": active.get("claim_generator_info"),
                                           "title": active.get("title")}
    result.problems += [f"{f.get('code')}: {f.get('explanation')}" for f in failures]


def _pictures(path: Path) -> list[np.ndarray]:
    """The images a file holds, as uint8 arrays: an image's pixels, up to 16 frames of a video, a mesh's
    texture images (none for a mesh with vertex colours).

    Raises:
        ProvenanceError: the file cannot be read as any of them.
    """
    suffix = path.suffix.lower()
    try:
        if suffix in (".glb", ".gltf"):
            return _textures(path)
        if suffix in (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v"):
            return [_video_frames(path)]
        from PIL import Image

        with Image.open(path) as image:
            return [np.asarray(image.convert("RGB"))]
    except (OSError, ValueError, RuntimeError) as err:
        raise ProvenanceError(f"{path.name} holds no image, video or mesh that can be read ({err}).") from err


def _video_frames(path: Path, limit: int = 16) -> np.ndarray:
    import imageio.v2 as imageio

    with imageio.get_reader(str(path), format="FFMPEG") as reader:
        total = reader.count_frames()
        wanted = set(np.linspace(0, max(total - 1, 0), min(limit, max(total, 1))).round().astype(int).tolist())
        frames = [frame for i, frame in enumerate(reader) if i in wanted]
    if not frames:
        raise ValueError("no frames")
    return np.stack(frames)


def _textures(path: Path) -> list[np.ndarray]:
    import trimesh

    scene = trimesh.load(path, force="scene")
    images = []
    for geometry in scene.geometry.values():
        texture = getattr(getattr(geometry.visual, "material", None), "baseColorTexture", None)
        if texture is not None:
            images.append(np.asarray(texture.convert("RGB")))
    return images  # none: a marching-cubes mesh with vertex colours
