"""Signed provenance: C2PA manifests in PNG and MP4, signed sidecars for the mesh, ``verify_file`` and
``python -m face_nerf verify``, and the signing key's set-up."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from face_nerf.provenance import ASSERTION, TOOL, Creation, manifest, sign_output, verify_file
from face_nerf.signing import SigningError, load_identity, make_identity, sidecar_path
from face_nerf.watermark import embed
from tests.conftest import EXAMPLES, shared_realworld

CREATION = Creation("3fa9c01b22de", {"reconstruction": "embedded-head-model", "editor": "embedded-editor",
                                     "lighting": "studio"}, ["eyes -> blue (normal)"], "blue eyes")


@pytest.fixture(scope="module")
def identity():
    return make_identity("FaceLab test operator")


@pytest.fixture(scope="module")
def anchor(identity) -> bytes:
    """The test authority's certificate (the chain's last)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return x509.load_pem_x509_certificates(identity.chain_pem)[-1].public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def signed(example_run, identity, tmp_path_factory):
    """Copies of a run's outputs, signed with the test key: {name: path}."""
    _, _, out, recon, _ = example_run
    folder = tmp_path_factory.mktemp("signed")
    paths = {}
    for name in ("turntable.mp4", "views.png", "mesh.glb"):
        shutil.copyfile(out / name, folder / name)
        sign_output(folder / name, replace(CREATION, creation_id=recon.creation_id), identity)
        paths[name] = folder / name
    return paths


def test_manifest_names_the_tool_the_backends_and_the_edits_and_says_ai():
    definition = manifest(CREATION, "views.png")
    actions = definition["assertions"][0]["data"]["actions"]
    assert actions[0]["action"] == "c2pa.created" and actions[0]["digitalSourceType"].endswith("trainedAlgorithmicMedia")
    assert [a["parameters"]["description"] for a in actions[1:]] == ["eyes -> blue (normal)"]
    ours = definition["assertions"][1]
    assert ours["label"] == ASSERTION and ours["data"]["tool"] == TOOL and ours["data"]["ai_generated"] is True
    assert ours["data"]["creation_id"] == CREATION.creation_id and ours["data"]["backends"]["lighting"] == "studio"


@pytest.mark.parametrize("name, kind", [("turntable.mp4", "c2pa"), ("views.png", "c2pa"), ("mesh.glb", "sidecar")])
def test_our_outputs_verify_with_their_manifest(signed, anchor, name, kind):
    found = verify_file(signed[name], anchor, thorough=False)
    assert found.manifest_kind == kind and found.signature_valid is True and found.trusted is True
    assert found.manifest["tool"] == TOOL and found.manifest["creation_id"] == found.creation_id
    assert found.manifest["prompt"] == "blue eyes" and "FaceLab test operator" in found.signer
    assert found.made_with_facelab and not found.problems
    untrusted = verify_file(signed[name], b"", thorough=False)  # no anchors: it verifies, but is not trusted
    assert untrusted.signature_valid is True and untrusted.trusted is False


def test_the_watermark_is_found_beside_the_manifest(signed, example_run):
    _, _, _, recon, _ = example_run
    for name in ("turntable.mp4", "views.png", "mesh.glb"):  # the mesh: in its texture
        found = verify_file(signed[name], thorough=False)
        if name == "mesh.glb" and found.problems:  # an edited shape is a vertex-coloured mesh, with no texture
            continue
        assert found.watermark_found and found.creation_id == recon.creation_id, name


def test_a_tampered_manifest_fails(signed, anchor, tmp_path):
    data = signed["views.png"].read_bytes()
    at = data.find(b"blue eyes")
    assert at > 0
    changed = tmp_path / "views.png"
    changed.write_bytes(data[:at] + b"BLUE EYES" + data[at + 9:])  # a changed word in the manifest
    found = verify_file(changed, anchor, thorough=False)
    assert found.signature_valid is False and any("mismatch" in p for p in found.problems)


def test_changed_pixels_fail_the_manifest(signed, anchor, tmp_path):
    image = np.asarray(Image.open(signed["views.png"]))
    changed = tmp_path / "views.png"
    data = bytearray(signed["views.png"].read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte of the image data
    changed.write_bytes(bytes(data))
    assert image.size  # the original reads
    assert verify_file(changed, anchor, thorough=False).signature_valid is False


def test_a_tampered_sidecar_or_mesh_fails(signed, anchor, tmp_path):
    mesh = tmp_path / "mesh.glb"
    shutil.copyfile(signed["mesh.glb"], mesh)
    side = json.loads(sidecar_path(signed["mesh.glb"]).read_text())
    side["manifest"]["prompt"] = "someone else"
    sidecar_path(mesh).write_text(json.dumps(side))
    found = verify_file(mesh, anchor, thorough=False)
    assert found.signature_valid is False and any("changed after signing" in p for p in found.problems)
    sidecar_path(mesh).write_text(sidecar_path(signed["mesh.glb"]).read_text())
    mesh.write_bytes(mesh.read_bytes() + b"\0")
    found = verify_file(mesh, anchor, thorough=False)
    assert found.signature_valid is False and any("SHA-256 differs" in p for p in found.problems)


def test_a_picture_nobody_signed_has_no_manifest(tmp_path):
    plain = tmp_path / "plain.png"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(plain)
    found = verify_file(plain, thorough=False)
    assert found.manifest_kind is None and found.signature_valid is None and not found.made_with_facelab


def test_verify_refuses_what_is_not_a_picture(tmp_path):
    from face_nerf.provenance import ProvenanceError

    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ProvenanceError, match="notes.png holds no image"):
        verify_file(text)
    with pytest.raises(ProvenanceError, match="is not a file"):
        verify_file(tmp_path / "missing.png")


def test_verify_command_exit_status(signed, tmp_path, capsys):
    from face_nerf.__main__ import main

    assert main(["verify", "--quick", str(signed["views.png"])]) == 0
    printed = capsys.readouterr().out
    assert "watermark: found (made with FaceLab 3D)" in printed and "signature verifies" in printed
    data = signed["views.png"].read_bytes()
    at = data.find(b"blue eyes")
    tampered = tmp_path / "tampered.png"
    tampered.write_bytes(data[:at] + b"BLUE EYES" + data[at + 9:])
    assert main(["verify", "--quick", str(tampered)]) == 3
    plain = tmp_path / "plain.png"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(plain)
    assert main(["verify", "--quick", "--json", str(plain)]) == 1
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["manifest_kind"] is None


def test_verify_command_on_real_photos_finds_nothing(capsys):
    from face_nerf.__main__ import main

    photos = sorted((shared_realworld() / "photos").iterdir())[:3]
    assert main(["verify", "--quick", *map(str, photos)]) == 1
    assert capsys.readouterr().out.count("watermark: none found") == 3


def test_marked_image_without_manifest_still_says_made_with_facelab(tmp_path):
    picture = np.asarray(Image.open(EXAMPLES["grace_hopper"]).convert("RGB"))
    path = tmp_path / "copied.jpg"  # a screenshot or re-save drops the manifest; the watermark stays
    Image.fromarray(embed(picture, CREATION.creation_id)).save(path, quality=90)
    found = verify_file(path, thorough=False)
    assert found.manifest_kind is None and found.watermark_found and found.made_with_facelab


def test_machine_key_is_made_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("FACELAB_SIGNING_KEY", raising=False)
    monkeypatch.delenv("FACELAB_SIGNING_CERT", raising=False)
    first = load_identity(tmp_path / "signing")
    again = load_identity(tmp_path / "signing")
    assert first == again and first.source == "generated"
    assert (tmp_path / "signing" / "key.pem").stat().st_mode & 0o077 == 0  # the private key is the owner's alone


def test_configured_key_is_used_and_half_a_configuration_refused(identity, tmp_path, monkeypatch):
    (tmp_path / "key.pem").write_bytes(identity.private_key_pem)
    (tmp_path / "chain.pem").write_bytes(identity.chain_pem)
    monkeypatch.setenv("FACELAB_SIGNING_KEY", str(tmp_path / "key.pem"))
    monkeypatch.setenv("FACELAB_SIGNING_CERT", str(tmp_path / "chain.pem"))
    assert load_identity().private_key_pem == identity.private_key_pem and load_identity().source == "configured"
    monkeypatch.delenv("FACELAB_SIGNING_CERT")
    with pytest.raises(SigningError, match="Set both"):
        load_identity()
