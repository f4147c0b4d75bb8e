"""What the web app's events call: create, relight, compare, judge and ask. No Gradio layout here;
errors a user can act on become ``gr.Error`` messages, everything is written into a per-session folder
that is removed when the session ends."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import OrderedDict
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np

from face_nerf.edit import EmbeddedEditor
from face_nerf.errors import FaceLabError
from face_nerf.lighting import CustomLight, Lighting
from webapp.judges import Judges

OUTPUT_TTL_S = 3600  # session folders untouched this long are removed when a new run starts
KEEP_RESULTS = int(os.environ.get("FACELAB_KEEP_RESULTS", 2))  # results kept in memory for relight / compare / the panel
SIZES = (128, 256, 384, 512)
MAX_FRAMES = 96


@dataclass
class Judged:
    """A judgement kept in the session with the frames it analysed (for the heatmap viewer)."""

    result: object  # judge.result.JudgeResult
    frames: np.ndarray  # [T, H, W, 3] uint8
    json_path: str
    clip: object = None  # judge.frames.Clip of the judged frames at their own size (the LMM judge's questions)


@dataclass
class Result:
    """A finished creation kept in the browser session, so its light can change without reconstructing."""

    recon: object  # face_nerf.pipeline.Reconstruction (edited)
    base: object  # the reconstruction before the edit (for the compare view)
    outputs: object  # face_nerf.pipeline.Outputs
    config: object  # face_nerf.pipeline.ReconstructionConfig
    judged: Judged | None = None
    files: list[str] = field(default_factory=list)


def parse_lighting(preset: str | None, light: str | None = None, fixed_to: str | None = "world") -> Lighting:
    """The lighting of a request: a preset name, or a custom light spec ("azimuth=40,elevation=20,...")
    when ``light`` is given or the preset is "custom"."""
    preset = (preset or "original").strip().lower()
    if preset == "custom" or (light or "").strip():
        if not (light or "").strip():
            raise FaceLabError("Custom lighting needs a light, e.g. azimuth=40,elevation=20,color=#ffd8a8,intensity=1.2,ambient=0.3.")
        return Lighting(custom=CustomLight.parse(light), fixed_to=fixed_to or "world")
    return Lighting(preset, fixed_to=fixed_to or "world")


def status_line(report: dict | None, judged: Judged | None = None) -> str:
    """What produced a result, for the page: backends and the edits applied."""
    if not report:
        return ""
    edit = report.get("edit") or {}
    lighting = report.get("lighting") or {}
    judge = f" · **judge:** {judged.result.backend}" if judged else ""
    return (f"**Backend:** {report.get('backend')} · **editor:** {edit.get('backend') or 'none'} · "
            f"**lighting:** {lighting.get('name')} ({lighting.get('fixed_to')}-fixed){judge}  \n"
            f"**Edits:** {edit.get('summary', 'no edit')}")


class KeptResults:
    """The last ``capacity`` results and judgements, by token (what the browser session holds), so
    memory stays bounded however many sessions come; an evicted token gets a message to generate again."""

    def __init__(self, capacity: int = KEEP_RESULTS):
        self.capacity = max(1, capacity)
        self._items: OrderedDict[str, object] = OrderedDict()

    def put(self, item) -> str:
        token = uuid.uuid4().hex
        self._items[token] = item
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return token

    def get(self, token: str | None, what: str = "result"):
        """The item, or None for no token; a gr.Error when it is no longer kept."""
        if not token:
            return None
        if token not in self._items:
            raise gr.Error(f"This {what} is no longer kept in memory (the server keeps the last {self.capacity}); "
                           "generate or judge again.")
        self._items.move_to_end(token)
        return self._items[token]

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Services:
    """Shared by all sessions: the editor (its sentence-embedding model loads on first need) and the
    judge (its calibration loads on first need)."""

    output_root: Path
    editor: EmbeddedEditor = field(default_factory=EmbeddedEditor)
    kept: KeptResults = field(default_factory=KeptResults)
    spot: object = None  # webapp.spotcheck.SpotCheck; default: a database beside the outputs
    judges: Judges = field(default_factory=Judges)  # the embedded judge and, when configured, the LMM judge

    def __post_init__(self):
        from webapp.spotcheck import SpotCheck

        self.output_root = Path(self.output_root)
        self.output_root.mkdir(parents=True, exist_ok=True)
        if self.spot is None:
            self.spot = SpotCheck(Path(self.output_root) / "annotations.sqlite")

    @property
    def judge(self):
        """The embedded judge."""
        return self.judges.embedded

    def warm_up(self) -> None:
        """Load what the first request would otherwise wait for: the sentence-embedding model of the
        editor and the judge's calibration (local files; nothing is downloaded)."""
        self.editor.parse("undead")
        _ = self.judge

    # --- create ------------------------------------------------------------------------------------

    @property
    def diffusion_model(self) -> str | None:
        """The Stable Diffusion checkpoint configured for the diffusion editor ($FACELAB_SD_MODEL), if any."""
        from face_nerf.edit.diffusion import MODEL_ENV

        return os.environ.get(MODEL_ENV) or None

    def _editor(self, choice: str):
        if (choice or "embedded") == "embedded":
            return self.editor
        from face_nerf.edit.diffusion import DiffusionEditor

        editor = DiffusionEditor(self.diffusion_model)  # refuses without a model or a GPU, with a message
        gr.Info(f"The diffusion editor takes about {editor.estimate_seconds() / 60:.0f} min for this edit.")
        return editor

    def generate(self, photo_path: str | None, prompt: str = "", lighting: str = "original", light: str = "",
                 fixed_to: str = "world", size: int = 256, frames: int = 48, editor: str = "embedded",
                 request: gr.Request | None = None, progress=gr.Progress()) -> tuple[str, str, str, dict, str]:
        """Photo -> edited, lit 3D face -> (turntable.mp4, mesh.glb, views.png, judgement as JSON, a
        token for the result kept for relighting, comparing and the judge panel)."""
        from face_nerf.pipeline import ReconstructionConfig, edit_reconstruction, reconstruct, render_outputs

        if not photo_path:
            raise gr.Error("No photo yet: upload a face photo or click one of the examples.")
        size, frames = self._check_size(size, frames)
        self._remove_old_runs()
        progress(0.02, desc="Reading the prompt")
        try:
            config = ReconstructionConfig(frames=frames, size=size, lighting=parse_lighting(lighting, light, fixed_to))
            chosen = self._editor(editor)
            if chosen is self.editor:
                self.editor.parse(prompt or "")  # an unreadable prompt fails before any work
            progress(0.05, desc="Finding the face")
            base = reconstruct(photo_path, config)
            for warning in base.warnings:
                gr.Warning(warning)
            progress(0.15, desc="Editing")
            recon = edit_reconstruction(base, prompt or "", chosen)
            done = [0]

            def frame_done(n: int) -> None:
                done[0] += n
                progress(0.2 + 0.55 * done[0] / config.frames, desc="Rendering the turntable")

            outputs = render_outputs(recon, config, progress=frame_done)
            progress(0.8, desc="Judging the turntable")
            result = Result(recon, base, outputs, config)
            return self._finish(result, request, progress)
        except FaceLabError as err:
            raise gr.Error(str(err)) from err

    def relight(self, token: str | None, lighting: str = "original", light: str = "", fixed_to: str = "world",
                request: gr.Request | None = None, progress=gr.Progress()) -> tuple[str, str, str, dict, str]:
        """The last result under another light, without reconstructing (judged again)."""
        from face_nerf.pipeline import relight_outputs

        result = self.kept.get(token)
        if result is None:
            raise gr.Error("Nothing to relight yet: generate a face first.")
        try:
            progress(0.1, desc="Relighting")
            outputs = relight_outputs(result.recon, result.outputs, parse_lighting(lighting, light, fixed_to),
                                      result.config.mesh_lighting)
            return self._finish(Result(result.recon, result.base, outputs, result.config), request, progress)
        except FaceLabError as err:
            raise gr.Error(str(err)) from err

    def compare(self, token: str | None, mode: str = "original vs edited", preset: str = "studio") -> np.ndarray:
        """Two 3-view strips one above the other: before and after the edit, or the current light and
        ``preset``; each labelled."""
        from face_nerf.export import STRIP_YAWS, TurntableFrame, render_views
        from face_nerf.pipeline import relight_outputs

        result = self.kept.get(token)
        if result is None:
            raise gr.Error("Nothing to compare yet: generate a face first.")
        current = result.outputs.strip
        try:
            if mode == "original vs edited":
                light = result.config.lighting.to_sh(result.base.field.photo_light)
                views, _ = render_views(result.base.field, [TurntableFrame(y, 0.0) for y in STRIP_YAWS],
                                        result.config.size, light, result.config.lighting.fixed_to)
                other, labels = np.concatenate(list(views), 1), ("original", "edited: " + (result.recon.edit.summary()
                                                                                          if result.recon.edit else "no edit"))
                return _stack_labelled([other, current], labels)
            relit = relight_outputs(result.recon, result.outputs, parse_lighting(preset), result.config.mesh_lighting)
            return _stack_labelled([current, relit.strip], (f"lighting: {result.outputs.lighting.name}", f"lighting: {preset}"))
        except FaceLabError as err:
            raise gr.Error(str(err)) from err

    # --- judge -------------------------------------------------------------------------------------

    def judge_video(self, path: str | None, backend: str | None = None, request: gr.Request | None = None,
                    progress=gr.Progress()) -> tuple[dict, str]:
        """Any turntable video (or image) -> (judgement as JSON, a token for the judgement kept for the
        panel). ``backend``: "embedded" or "lmm" (default: the app's)."""
        from judge.frames import load_clip

        if not path:
            raise gr.Error("No video yet: upload a turntable video (mp4, webm, gif) or an image.")
        judge = self.judges.get(backend)
        progress(0.1, desc="Reading the video")
        try:
            clip = load_clip(path)
            progress(0.3, desc="Judging")
            result = judge.judge(clip)
        except FaceLabError as err:
            raise gr.Error(str(err)) from err
        if not result.face_found:
            gr.Warning(result.summary)
        folder = self._new_folder(request)
        judged = self._keep_judgement(result, clip, folder)
        if result.face_found and clip.kind == "video":
            kept = folder / Path(path).name  # the upload's own copy may be cleaned up by gradio
            shutil.copyfile(path, kept)
            self.spot.add(str(kept), result, "upload")
        token = self.kept.put(judged)
        release_memory()
        return result.to_dict(), token

    @staticmethod
    def ask(judgement: dict | str | None, question: str) -> str:
        """Answer a question about a judgement (its JSON)."""
        from judge.ask import ask
        from judge.result import JudgeResult

        if not judgement:
            raise gr.Error("Nothing judged yet: generate a face or judge a video first.")
        try:
            data = json.loads(judgement) if isinstance(judgement, str) else judgement
            result = JudgeResult.from_dict(data)
        except (ValueError, TypeError, KeyError) as err:
            raise gr.Error(f"That is not a judgement from this app ({err}); pass the JSON /judge or /generate returned.") from err
        return ask(result, question or "").text

    def ask_kept(self, token: str | None, judgement: dict | str | None, question: str) -> str:
        """Answer a question in a judge panel: by generation when the kept judgement is the LMM judge's,
        else from the judgement (``ask``)."""
        judged = self.judged(token)
        if judged is None or judged.clip is None or self.judges.lmm is None:
            return self.ask(judgement, question)
        try:
            return self.judges.lmm.ask(judged.clip, question or "").text
        except FaceLabError as err:
            raise gr.Error(str(err)) from err

    def result(self, token: str | None) -> Result | None:
        """A kept creation (None for no token)."""
        return self.kept.get(token)

    def judged(self, token: str | None) -> Judged | None:
        """The judgement of a kept creation or judged upload (None for no token)."""
        item = self.kept.get(token, "judgement")
        return item.judged if isinstance(item, Result) else item

    # --- sessions ----------------------------------------------------------------------------------

    def end_session(self, request: gr.Request) -> None:
        """Remove the session's folder (called when the browser tab closes)."""
        if request is not None and request.session_hash:
            shutil.rmtree(self.output_root / _safe(request.session_hash), ignore_errors=True)

    def _finish(self, result: Result, request, progress) -> tuple[str, str, str, dict, Result]:
        from face_nerf.pipeline import write_outputs

        progress(0.85, desc="Judging the turntable")
        from judge.frames import load_clip

        clip = load_clip(result.outputs.frames)
        judgement = self.judges.get().judge(clip)
        progress(0.95, desc="Writing video, mesh and judgement")
        folder = self._new_folder(request)
        out = write_outputs(result.recon, result.outputs, folder / "result", result.config.fps)
        result.judged = self._keep_judgement(judgement, clip, out)
        if judgement.face_found:  # queued for the annotators' spot-checks
            self.spot.add(str(out / "turntable.mp4"), judgement, "app")
        result.files = [str(out / n) for n in ("turntable.mp4", "mesh.glb", "views.png", "report.json")] + \
            [result.judged.json_path]
        token = self.kept.put(result)
        release_memory()
        return str(out / "turntable.mp4"), str(out / "mesh.glb"), str(out / "views.png"), judgement.to_dict(), token

    def _keep_judgement(self, result, clip, folder: Path) -> Judged:
        """Write the judgement's JSON and keep it with the frames it analysed, at the panel's size (at
        most 256 px; heatmaps of another size, e.g. the LMM judge's, are resized to them). For the LMM
        judge, the judged frames are also kept at their own size, for its questions."""
        from judge.analytic import analysis_frames
        from judge.frames import Clip
        from judge.heatmap import resize_heatmaps

        path = folder / "judge.json"
        path.write_text(result.to_json())
        positions = {index: k for k, index in enumerate(clip.indices)}
        judged_frames = clip.frames[[positions[i] for i in result.frame_indices]]
        frames = analysis_frames(judged_frames)
        if result.frame_heatmaps is not None and result.frame_heatmaps.shape[1:] != frames.shape[1:3]:
            result.frame_heatmaps = resize_heatmaps(result.frame_heatmaps, frames.shape[1:3])
        lmm_clip = None
        if result.backend.startswith("lmm-judge"):
            lmm_clip = Clip(judged_frames, list(result.frame_indices), clip.source_frames, clip.fps, clip.kind, clip.name)
        return Judged(result, frames, str(path), lmm_clip)

    def _new_folder(self, request) -> Path:
        session = _safe(request.session_hash) if request is not None and request.session_hash else "no-session"
        root = self.output_root / session
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=root))

    @staticmethod
    def _check_size(size, frames) -> tuple[int, int]:
        try:
            size, frames = int(size), int(frames)
        except (TypeError, ValueError) as err:
            raise gr.Error(f"Size and frames must be whole numbers ({err}).") from err
        if size not in SIZES:
            raise gr.Error(f"Output size must be one of {', '.join(map(str, SIZES))} pixels. Got {size}.")
        if not 8 <= frames <= MAX_FRAMES:
            raise gr.Error(f"Frames must be between 8 and {MAX_FRAMES}. Got {frames}.")
        return size, frames

    def _remove_old_runs(self) -> None:
        cutoff = time.time() - OUTPUT_TTL_S
        for run in self.output_root.iterdir():
            if run.is_dir() and run.stat().st_mtime < cutoff:
                shutil.rmtree(run, ignore_errors=True)


def release_memory() -> None:
    """Hand freed heap back to the system after a heavy request: glibc keeps it otherwise (measured:
    ~700 MB of a 2-core server's RSS after twenty requests)."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass


def _safe(name: str) -> str:
    return "".join(c for c in name if c.isalnum() or c in "-_")[:64] or "session"


def _stack_labelled(strips: list[np.ndarray], labels: tuple[str, str]) -> np.ndarray:
    """Strips one above the other, each under a label bar."""
    from PIL import Image, ImageDraw, ImageFont

    width = max(s.shape[1] for s in strips)
    rows = []
    for strip, label in zip(strips, labels):
        bar = Image.new("RGB", (width, 36), (30, 30, 30))
        try:
            font = ImageFont.load_default(size=22)
        except TypeError:
            font = ImageFont.load_default()
        ImageDraw.Draw(bar).text((10, 5), label[:120], fill=(255, 255, 255), font=font)
        rows += [np.asarray(bar), np.pad(strip, ((0, 0), (0, width - strip.shape[1]), (0, 0)), constant_values=255)]
    return np.concatenate(rows, 0)
