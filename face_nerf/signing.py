"""The key that signs FaceLab 3D's provenance manifests, and signed JSON sidecars for files C2PA cannot
hold (GLB).

The operator configures the key: $FACELAB_SIGNING_KEY (a PEM EC P-256 private key) and
$FACELAB_SIGNING_CERT (PEM: the signing certificate, then its issuers). Without them, a key and a
certificate chain of this machine's own are made once and kept in the data folder; what they sign
verifies, but nobody else trusts them. `verify` trusts the certificates in $FACELAB_TRUST_ANCHORS (PEM).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from face_nerf.data_folder import data_folder
from face_nerf.errors import FaceLabError

KEY_ENV = "FACELAB_SIGNING_KEY"
CERT_ENV = "FACELAB_SIGNING_CERT"
TRUST_ENV = "FACELAB_TRUST_ANCHORS"
SIDECAR_SUFFIX = ".provenance.json"
SIDECAR_FORMAT = "facelab-signed-sidecar/1"


class SigningError(FaceLabError):
    """The signing key or certificate cannot be used."""


@dataclass(frozen=True)
class SigningIdentity:
    """A private key and the certificate chain that vouches for it."""

    private_key_pem: bytes
    chain_pem: bytes  # the signing certificate first, then its issuers
    source: str  # "configured" ($FACELAB_SIGNING_KEY) or "generated" (this machine's own)


def load_identity(folder: Path | None = None) -> SigningIdentity:
    """The operator's key ($FACELAB_SIGNING_KEY and $FACELAB_SIGNING_CERT); else this machine's own,
    made on first use under ``folder`` (default: the data folder's ``signing``).

    Raises:
        SigningError: only one of the two variables is set, or a file cannot be read.
    """
    key, cert = os.environ.get(KEY_ENV), os.environ.get(CERT_ENV)
    if key or cert:
        if not (key and cert):
            raise SigningError(f"Set both ${KEY_ENV} (the private key) and ${CERT_ENV} (its certificate chain), "
                               "or neither (this machine's own key is then used).")
        try:
            return SigningIdentity(Path(key).read_bytes(), Path(cert).read_bytes(), "configured")
        except OSError as err:
            raise SigningError(f"Cannot read the signing key or certificate ({err}).") from err
    folder = folder or data_folder() / "signing"
    key_path, chain_path = folder / "key.pem", folder / "chain.pem"
    if not (key_path.is_file() and chain_path.is_file()):
        made = make_identity("FaceLab 3D on " + os.uname().nodename, days=3650)
        folder.mkdir(parents=True, exist_ok=True)
        _write_private(key_path, made.private_key_pem)
        chain_path.write_bytes(made.chain_pem)
    return SigningIdentity(key_path.read_bytes(), chain_path.read_bytes(), "generated")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def make_identity(common_name: str, days: int = 30) -> SigningIdentity:
    """A new P-256 key with a certificate issued by a new certificate authority of its own (C2PA refuses
    a self-signed signing certificate). The chain ends with the authority, which ``verify`` can be told
    to trust. Used for this machine's own key and by the tests."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=days)

    def name(cn: str):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "FaceLab 3D")])

    def usage(**allowed) -> x509.KeyUsage:
        flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                               "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
        return x509.KeyUsage(**{**flags, **allowed})

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name(common_name + " CA")).issuer_name(name(common_name + " CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name(common_name)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return SigningIdentity(private, leaf.public_bytes(pem) + ca.public_bytes(pem), "generated")


def trust_anchors() -> bytes | None:
    """The PEM certificates in $FACELAB_TRUST_ANCHORS, if set."""
    path = os.environ.get(TRUST_ENV)
    return Path(path).read_bytes() if path else None


# --- signed JSON sidecars --------------------------------------------------------------------------


def sidecar_path(path: str | Path) -> Path:
    return Path(f"{path}{SIDECAR_SUFFIX}")


def write_sidecar(path: str | Path, manifest: dict, identity: SigningIdentity) -> Path:
    """Write ``<path>.provenance.json``: the manifest and the file's SHA-256, signed (ECDSA P-256, SHA-256)
    over their canonical JSON, with the certificate chain."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    claim = {"format": SIDECAR_FORMAT, "file": Path(path).name, "sha256": file_sha256(path), "manifest": manifest}
    key = serialization.load_pem_private_key(identity.private_key_pem, None)
    signature = key.sign(_canonical(claim), ec.ECDSA(hashes.SHA256()))
    document = {**claim, "signature": base64.b64encode(signature).decode(), "certificate_chain": identity.chain_pem.decode()}
    out = sidecar_path(path)
    out.write_text(json.dumps(document, indent=2))
    return out


@dataclass(frozen=True)
class SidecarCheck:
    """What ``check_sidecar`` found."""

    manifest: dict
    signature_valid: bool  # the signature verifies with the chain's certificate and the file is unchanged
    trusted: bool  # the chain ends in one of the trust anchors
    signer: str  # the signing certificate's subject
    problems: list[str]


def check_sidecar(path: str | Path, anchors: bytes | None = None) -> SidecarCheck | None:
    """Verify ``<path>.provenance.json`` against the file (None when there is no sidecar)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    side = sidecar_path(path)
    if not side.is_file():
        return None
    problems: list[str] = []
    try:
        document = json.loads(side.read_text())
        claim = {k: document[k] for k in ("format", "file", "sha256", "manifest")}
        chain = x509.load_pem_x509_certificates(document["certificate_chain"].encode())
        signature = base64.b64decode(document["signature"])
    except (ValueError, KeyError, TypeError) as err:
        return SidecarCheck({}, False, False, "", [f"the sidecar {side.name} cannot be read ({err})"])
    try:
        chain[0].public_key().verify(signature, _canonical(claim), ec.ECDSA(hashes.SHA256()))
        valid = True
    except (InvalidSignature, TypeError, ValueError):
        valid = False
        problems.append("the sidecar's signature does not match its contents (it was changed after signing)")
    if claim["sha256"] != file_sha256(path):
        valid = False
        problems.append(f"{Path(path).name} was changed after it was signed (its SHA-256 differs)")
    valid = valid and _chain_holds(chain, problems)
    trusted = valid and bool(anchors) and _ends_in(chain, x509.load_pem_x509_certificates(anchors))
    return SidecarCheck(claim["manifest"], valid, trusted, chain[0].subject.rfc4514_string(), problems)


def _chain_holds(chain: list, problems: list[str]) -> bool:
    """Each certificate is signed by the next and every one is within its dates."""
    from cryptography.exceptions import InvalidSignature

    now = datetime.datetime.now(datetime.timezone.utc)
    for cert, issuer in zip(chain, chain[1:]):
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as err:
            problems.append(f"the certificate chain is broken ({type(err).__name__})")
            return False
    for cert in chain:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            problems.append(f"the certificate {cert.subject.rfc4514_string()} is outside its validity dates")
            return False
    return True


def _ends_in(chain: list, anchors: list) -> bool:
    from cryptography.hazmat.primitives import hashes

    fingerprints = {a.fingerprint(hashes.SHA256()) for a in anchors}
    return any(c.fingerprint(hashes.SHA256()) in fingerprints for c in chain)


def _canonical(claim: dict) -> bytes:
    return json.dumps(claim, sort_keys=True, separators=(",", ":")).encode()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
