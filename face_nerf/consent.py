"""Consent: a photo is processed only once the person confirms they have the right to use it. The
example photos (public domain, shipped in assets/examples) need no confirmation."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from face_nerf.errors import FaceLabError

CONSENT_ENV = "FACELAB_I_HAVE_CONSENT"  # "1": the batch and command line runs of this operator have consent
EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
LABEL = "I have the right to use this photo"
WHY = "It shows me, or its people agreed: a 3D face from one photo could impersonate them."

REFUSED = ("A 3D face made from one photo could impersonate the person in it, so FaceLab 3D only works on photos "
           "you have the right to use (the example photos are public domain).")


class ConsentError(FaceLabError):
    """A photo was sent without the confirmation that it may be used."""


def consent_from_environment() -> bool:
    """$FACELAB_I_HAVE_CONSENT is 1, yes or true (a config entry for batch use)."""
    return os.environ.get(CONSENT_ENV, "").strip().lower() in ("1", "yes", "true")


def check_consent(photo: str | os.PathLike | bytes, given: bool, how: str) -> str:
    """How the right to use ``photo`` was confirmed: "example" for the shipped example photos, else
    ``how`` (ui, api, cli) when ``given``.

    Raises:
        ConsentError: not given and not an example photo (the message says what to do, for ``how``).
    """
    if is_example_photo(photo):
        return "example"
    if given:
        return how
    fix = {"ui": "Tick the box that you have the right to use this photo, then press Generate again.",
           "api": "Pass consent=True to confirm that you have the right to use this photo.",
           "cli": f"Add --i-have-consent (or set {CONSENT_ENV}=1) to confirm that you have the right to use the photos."}
    raise ConsentError(f"{REFUSED} {fix.get(how, fix['api'])}")


def is_example_photo(photo: str | os.PathLike | bytes) -> bool:
    """The photo's bytes are one of the shipped example photos'."""
    try:
        data = photo if isinstance(photo, bytes) else Path(photo).read_bytes()
    except OSError:
        return False
    return hashlib.sha256(data).hexdigest() in _example_hashes()


@lru_cache(maxsize=1)
def _example_hashes() -> frozenset[str]:
    return frozenset(hashlib.sha256(p.read_bytes()).hexdigest() for p in EXAMPLES.iterdir() if p.is_file())
