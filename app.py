"""FaceLab 3D web app: create (photo -> edited, lit 3D face), judge any turntable, spot-check.

``python app.py [--help]``. The page is ``webapp.page.build_demo``; what its events call is
``webapp.services``. Settings (``webapp.settings``) are read before anything heavy is imported, so
``--help`` answers at once. Outputs go under $FACELAB_OUTPUTS (default: the system's temporary folder):
Gradio's upload cache and one folder per browser session, removed when the session ends and swept
after $FACELAB_MAX_AGE_S (default 3600 s).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from webapp.settings import parse_settings

    settings = parse_settings(argv)
    # Before torch loads: its OpenMP threads sleep while they wait instead of spinning (a busy 2-vCPU
    # host ran 14x slower with spinning threads); face_nerf sets the same.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Gradio's upload cache is the app's own, inside the outputs, so that the sweep may empty it; session
    # folders lie inside it, so Gradio serves them where they are instead of keeping copies elsewhere.
    os.environ.setdefault("GRADIO_TEMP_DIR", str(settings.outputs / "uploads"))

    from face_nerf.audit import AuditLog
    from face_nerf.errors import FaceLabError
    from face_nerf.pipeline import set_cpu_threads
    from face_nerf.signing import load_identity
    from webapp.judges import Judges
    from webapp.create_tab import EXAMPLES
    from webapp.page import build_demo, launch
    from webapp.services import Services
    from webapp.spotcheck import SpotCheck

    set_cpu_threads()
    uploads = Path(os.environ["GRADIO_TEMP_DIR"])
    try:
        audit = AuditLog()  # $FACELAB_AUDIT_DB, else the data folder's; refuses a bad retention setting
        identity = load_identity()  # $FACELAB_SIGNING_KEY and _CERT, else this machine's own (made once)
    except FaceLabError as err:
        raise SystemExit(f"error: {err}") from err
    services = Services(uploads / "sessions", spot=SpotCheck(settings.ratings), judges=Judges(settings.backend),
                        uploads_root=uploads, max_age_s=settings.max_age_s, audit=audit, identity=identity,
                        examples_root=uploads / "examples")  # inside the cache: served where it lies
    lost = " (on a Space without persistent storage they are lost at restart)"
    print(f"FaceLab 3D: spot-check ratings are kept in {settings.ratings.resolve()}"
          + ("" if settings.ratings.resolve().is_relative_to("/data") else lost), file=sys.stderr)
    print(f"FaceLab 3D: the audit log of creations (hashes, never photos) is kept {audit.retention:g} days in "
          f"{audit.path.resolve()}" + ("" if audit.path.resolve().is_relative_to("/data") else lost), file=sys.stderr)
    print("FaceLab 3D: outputs carry an invisible watermark and are signed with "
          + ("the operator's key ($FACELAB_SIGNING_KEY)" if identity.source == "configured" else
             "this machine's own key (set $FACELAB_SIGNING_KEY and $FACELAB_SIGNING_CERT for one others trust)"),
          file=sys.stderr)
    problem = services.judges.load_offered()  # loaded and compiled now, not in the first request
    if problem and settings.backend == "lmm":  # refused at start (no model, too slow here)
        raise SystemExit(f"error: {problem}")
    if problem:
        print(f"FaceLab 3D: the Judge tab's LMM judge cannot run here: {problem}", file=sys.stderr)
    print(f"FaceLab 3D: CPU rendering by {services.warm_up()}", file=sys.stderr)
    if settings.examples:
        seconds = services.prepare_examples(EXAMPLES)
        print(f"FaceLab 3D: {len(EXAMPLES)} example results ready in {seconds:.0f} s", file=sys.stderr)
    demo = build_demo(services)
    services.start_retention()
    launch(demo, server_name=settings.server_name, server_port=settings.port)


if __name__ == "__main__":
    main()
