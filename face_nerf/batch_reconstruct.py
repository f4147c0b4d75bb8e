"""Reconstruct many photos: ``python -m face_nerf batch PHOTOS... --out DIR`` (``face_nerf.batch`` runs it).

Each photo's outputs (those of ``python -m face_nerf reconstruct``) go to ``DIR/outputs/<name>-<hash>/``;
``reconstructions.jsonl`` and ``.parquet`` hold one row per photo (faces found, warnings, the edit, the
mesh's size, timings, error) and ``report.html`` shows every photo's views.
"""

from __future__ import annotations

import html
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
TABLE = "reconstructions"


@dataclass
class ReconstructTask:
    """Reconstruct one photo with these settings (``face_nerf.batch.Task``)."""

    frames: int = 48
    size: int = 256
    yaw: float = 45.0
    prompt: str = ""
    lighting: str = "original"
    consent: bool = False  # the operator confirmed the right to use every photo (--i-have-consent)
    _editor: object = field(default=None, init=False, repr=False, compare=False)

    table = TABLE
    fields = (("output", "string"), ("creation_id", "string"), ("faces_found", "int"), ("warnings", "list<string>"), ("edit", "string"),
              ("mesh_vertices", "int"), ("mesh_faces", "int"), ("timings_s", "map<string,float>"))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_editor": None}  # a task travels to its workers unloaded

    def load(self, threads: int = 1) -> None:
        from face_nerf.edit import EmbeddedEditor

        self._editor = EmbeddedEditor()
        self._editor.parse(self.prompt)

    def config(self):
        from face_nerf.lighting import Lighting
        from face_nerf.pipeline import ReconstructionConfig

        return ReconstructionConfig(frames=self.frames, size=self.size, yaw=self.yaw, lighting=Lighting(self.lighting),
                                    relightable=False)

    def run(self, path: str, key: str) -> tuple[dict, dict[str, bytes]]:
        from face_nerf.audit import AuditLog
        from face_nerf.consent import check_consent
        from face_nerf.pipeline import edit_reconstruction, reconstruct, render_outputs, write_outputs
        from face_nerf.provenance import Provenance

        provenance = Provenance(audit=AuditLog(), consent=check_consent(path, self.consent, "cli"))
        config = self.config()
        recon = edit_reconstruction(reconstruct(path, config), self.prompt, self._editor)
        outputs = render_outputs(recon, config)
        folder = f"outputs/{Path(path).stem}-{key[:10]}"
        with tempfile.TemporaryDirectory(prefix="facelab-batch-") as tmp:
            written = write_outputs(recon, outputs, Path(tmp) / "run", config.fps, provenance=provenance)
            files = {f"{folder}/{p.name}": p.read_bytes() for p in sorted(written.iterdir()) if p.is_file()}
        report = outputs.report
        return {"output": folder, "creation_id": recon.creation_id, "faces_found": report["faces_found"], "warnings": list(recon.warnings),
                "edit": report["edit"].get("summary") or "", "mesh_vertices": report["mesh"].get("vertices"),
                "mesh_faces": report["mesh"].get("faces"),
                "timings_s": {k: float(v) for k, v in report["timings_s"].items()}}, files


def write_report(rows_path: Path) -> Path:
    """``report.html`` beside the rows: each photo's three views, or its error, and its warnings."""
    out = rows_path.parent
    cells = []
    for line in rows_path.read_text().splitlines():
        row = json.loads(line)
        name = html.escape(Path(row["path"]).name)
        if row.get("error"):
            cells.append(f"<tr><td>{name}</td><td class=error>{html.escape(row['error'])}</td></tr>")
            continue
        views = f"{row['output']}/views.png"
        notes = "".join(f"<br><small>{html.escape(w)}</small>" for w in row.get("warnings") or [])
        cells.append(f"<tr><td>{name}<br><small>{row['seconds']:.1f} s; {html.escape(row.get('edit') or 'no edit')}"
                     f"</small>{notes}</td><td><a href='{html.escape(row['output'])}/'><img src='{html.escape(views)}' "
                     "height=160></a></td></tr>")
    path = out / "report.html"
    tmp = out / ".report.html.tmp"
    tmp.write_text("<!doctype html><meta charset='utf-8'><title>FaceLab 3D: reconstructions</title><style>body{"
                   "font-family:sans-serif}td{padding:4px 10px;vertical-align:top}.error{color:#b3261e}</style>"
                   f"<h1>Reconstructions</h1><table>{''.join(cells)}</table>")
    tmp.replace(path)
    return path
