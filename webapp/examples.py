"""The example photos' results, made once at start and shown at once.

The example photos ship with the app and are in the public domain, so unlike a visitor's photo their
results may be shown to everyone: they are made once (``ExampleResults.prepare``, at start), written
to their own folder and never swept. A visitor who clicks an example gets a reference in their session
(``ExampleRef``) instead of a copy, so showing one costs no rendering, judging or copying; relighting
and comparing read the example's result back from disk.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

EXAMPLE_SIZE, EXAMPLE_FRAMES = 256, 48  # what Generate makes by default


@dataclass(frozen=True)
class ExampleRef:
    """What a visitor's session keeps for an example it showed: its name."""

    name: str


@dataclass
class Example:
    """One example photo's default result (no edit, the photo's own light)."""

    name: str  # the photo's file name
    video: str
    mesh: str
    strip: str
    judgement: dict
    judged: object  # webapp.services.Judged
    files: list[str]  # the downloads
    overlays: tuple[str | None, str | None]  # the judge panel's two distortion-map images, drawn once
    report: dict
    result_path: Path  # the whole webapp.services.Result, for relighting and comparing


class ExampleResults:
    """Example results under ``folder``, by photo file name.

    Args:
        folder: where they are written (outside every swept folder).
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.examples: dict[str, Example] = {}
        self._loaded: tuple[str, object] | None = None  # the one Result read back last (~150 MB)
        self._lock = threading.Lock()

    def prepare(self, photos: list[str], services) -> float:
        """Make each photo's result (~5 s each on 2 cores); returns the seconds it took."""
        import torch

        from face_nerf.pipeline import ReconstructionConfig, reconstruct, render_outputs, write_outputs
        from judge.frames import load_clip
        from webapp.panel import panel
        from webapp.retention import remove_tree
        from webapp.services import DOWNLOADS, Result

        start = time.perf_counter()
        config = ReconstructionConfig(frames=EXAMPLE_FRAMES, size=EXAMPLE_SIZE)
        for photo in photos:
            name = Path(photo).name
            out = self.folder / Path(photo).stem
            remove_tree(out)  # an earlier start's, with files write_outputs did not write
            recon = reconstruct(photo, config)
            outputs = render_outputs(recon, config)
            clip = load_clip(outputs.frames)
            judgement = services.judges.embedded.judge(clip)
            write_outputs(recon, outputs, out, config.fps)
            judged = services.keep_judgement(judgement, clip, out)
            judged.video = str(out / "turntable.mp4")
            result = Result(recon, recon, outputs, config, judged, consent="example")  # public domain
            result.files = [str(out / n) for n in DOWNLOADS] + [judged.json_path]
            torch.save(result, out / "result.pt")
            overlays = tuple(_png(image, out / f"panel-{i}.png") for i, image in enumerate(panel(judged)[3:5]))
            self.examples[name] = Example(name, str(out / "turntable.mp4"), str(out / "mesh.glb"), str(out / "views.png"),
                                          judgement.to_dict(), judged, result.files, overlays, outputs.report,
                                          out / "result.pt")
        return time.perf_counter() - start

    def get(self, photo: str | None) -> Example | None:
        """The example whose photo has this file name (None when it was not prepared)."""
        return self.examples.get(Path(photo).name) if photo else None

    def result(self, name: str):
        """The example's whole result (``webapp.services.Result``), read back from disk; shared by the
        sessions that showed it, so callers must not change it."""
        import torch

        with self._lock:
            if self._loaded is None or self._loaded[0] != name:
                self._loaded = (name, torch.load(self.examples[name].result_path, weights_only=False))  # our own file
            return self._loaded[1]

    def files(self) -> frozenset[str]:
        """Every file of the prepared examples (never removed by the sweep)."""
        return frozenset(str(p.resolve()) for p in self.folder.rglob("*") if p.is_file())


def _png(image, path: Path) -> str | None:
    from PIL import Image

    if image is None:
        return None
    Image.fromarray(image).save(path)
    return str(path)
