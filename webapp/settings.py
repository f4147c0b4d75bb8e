"""The app's settings from the command line and the environment, read before anything heavy is
imported (``python app.py --help`` answers at once).

Environment: $PORT or $GRADIO_SERVER_PORT (default 7860), $GRADIO_SERVER_NAME (default 0.0.0.0),
$FACELAB_OUTPUTS, $FACELAB_MAX_AGE_S, $FACELAB_JUDGE_BACKEND, $FACELAB_ANNOTATIONS, $FACELAB_ANNOTATOR_KEY,
$FACELAB_EXAMPLES (0: do not prepare the example results at start).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

BACKENDS = ("embedded", "lmm")
BACKEND_ENV = "FACELAB_JUDGE_BACKEND"  # the judge of creations and the Judge tab's default
MAX_AGE_ENV = "FACELAB_MAX_AGE_S"
MAX_AGE_S = 3600.0  # nothing a visitor uploads or makes is kept longer (seconds)
ANNOTATIONS_ENV = "FACELAB_ANNOTATIONS"
PERSISTENT = Path("/data")  # a Hugging Face Space's persistent storage, when the Space has it (face_nerf.data_folder's)


@dataclass(frozen=True)
class Settings:
    """What ``main`` runs with."""

    backend: str  # judge of creations: "embedded" or "lmm"
    max_age_s: float  # retention of everything a visitor uploads or makes
    outputs: Path  # Gradio's upload cache, session folders and the example results live under it
    ratings: Path  # the spot-check ratings database (its media beside it)
    server_name: str
    port: int
    examples: bool  # prepare the example results at start


def ratings_path(persistent: Path = PERSISTENT) -> Path:
    """Where ratings live: $FACELAB_ANNOTATIONS; else ``annotations.sqlite`` in the data folder
    (``face_nerf.data_folder``: $FACELAB_DATA, a Space's persistent /data/facelab, else ./data)."""
    from face_nerf.data_folder import data_folder

    if os.environ.get(ANNOTATIONS_ENV):
        return Path(os.environ[ANNOTATIONS_ENV])
    return data_folder(persistent) / "annotations.sqlite"


def parse_settings(argv: list[str] | None = None) -> Settings:
    """Read the command line and the environment; a bad value exits with a message (status 2)."""
    parser = argparse.ArgumentParser(description="FaceLab 3D web app: one face photo in, a 3D face out; "
                                                 "and a judge of 3D face turntables.",
                                     epilog=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--backend", choices=BACKENDS, default=os.environ.get(BACKEND_ENV, "embedded"),
                        help=f"judge of creations and the Judge tab's default (lmm: $FACELAB_LMM_MODEL, "
                             f"$FACELAB_LMM_ADAPTER; default ${BACKEND_ENV} or embedded)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", os.environ.get("GRADIO_SERVER_PORT", 7860))),
                        help="port (default $PORT, $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--no-examples", action="store_true",
                        help="do not prepare the example photos' results at start (~10 s each)")
    args = parser.parse_args(argv)
    if args.backend not in BACKENDS:  # a default from the environment is not checked by argparse
        parser.error(f"${BACKEND_ENV} must be one of {BACKENDS}. Got {args.backend!r}.")
    try:
        max_age = float(os.environ.get(MAX_AGE_ENV, MAX_AGE_S))
    except ValueError:
        max_age = -1.0
    if not max_age > 0:
        parser.error(f"${MAX_AGE_ENV} must be a positive number of seconds. Got {os.environ.get(MAX_AGE_ENV)!r}.")
    outputs = Path(os.environ.get("FACELAB_OUTPUTS", Path(tempfile.gettempdir()) / "facelab-outputs"))
    examples = not args.no_examples and os.environ.get("FACELAB_EXAMPLES", "1") != "0"
    return Settings(args.backend, max_age, outputs, ratings_path(), os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
                    args.port, examples)
