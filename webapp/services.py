"""What the web app's events call: create, relight, compare, judge, ask and queue for spot-checks. No
Gradio layout here; errors a user can act on become ``gr.Error`` messages. What a visitor makes is
kept for their browser session only (``webapp.kept``, ``webapp.sessions``) and removed when it ends or
after the maximum age (``webapp.retention``)."""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import gradio as gr
import numpy as np

from face_nerf.edit import EmbeddedEditor
from face_nerf.errors import FaceLabError
from face_nerf.lighting import CustomLight, Lighting
from webapp.compare import side_by_side
from webapp.examples import ExampleRef, ExampleResults
from webapp.judgement_json import parse_judgement
from webapp.judges import Judges
from webapp.kept import KeptResults, NotKept
from webapp.retention import MAX_AGE_S, Sweeper, remove_tree, sweep_interval
from webapp.sessions import SessionFiles, session_name
from webapp.text import markdown_text

SIZES = (128, 256, 384, 512)
MAX_FRAMES = 96
DOWNLOADS = ("turntable.mp4", "mesh.glb", "views.png", "report.json")  # of write_outputs; judge.json follows
SESSION_ENDED = "The browser session ended before the result was ready; it was not kept."
TURNTABLES = {"±45°": 45.0, "full turn": 180.0}  # the app's turntable choices -> ReconstructionConfig.yaw


@dataclass
class Judged:
    """A judgement kept in the session with the frames it analysed (for the heatmap viewer)."""

    result: object  # judge.result.JudgeResult
    frames: np.ndarray  # [T, H, W, 3] uint8
    json_path: str
    clip: object = None  # judge.frames.Clip of the judged frames at their own size (the LMM judge's questions)
    video: str | None = None  # the judged video in the session's folder (what "Add to the spot-check queue" sends)


@dataclass
class Result:
    """A finished creation kept in the browser session, so its light can change without reconstructing."""

    recon: object  # face_nerf.pipeline.Reconstruction (edited)
    base: object  # the reconstruction before the edit (for the compare view)
    outputs: object  # face_nerf.pipeline.Outputs
    config: object  # face_nerf.pipeline.ReconstructionConfig
    judged: Judged | None = None
    files: list[str] = field(default_factory=list)
    consent: str = "ui"  # how the right to use the photo was confirmed (the audit log's)
    event: str = "create"  # or relight (the audit log's)


def parse_lighting(preset: str | None, light: str | None = None, fixed_to: str | None = "world") -> Lighting:
    """The lighting of a request: a preset name, or a custom light spec ("azimuth=40,elevation=20,...")
    when ``light`` is given or the preset is "custom"."""
    preset = (preset or "original").strip().lower()
    if preset == "custom" or (light or "").strip():
        if not (light or "").strip():
            raise FaceLabError("Custom lighting needs a light, e.g. azimuth=40,elevation=20,color=#ffd8a8,intensity=1.2,ambient=0.3.")
        return Lighting(custom=CustomLight.parse(light), fixed_to=fixed_to or "world")
    return Lighting(preset, fixed_to=fixed_to or "world")


@dataclass
class Services:
    """Shared by all sessions: the editor (its sentence-embedding model loads on first need), the
    judges, and the spot-check store. What a visitor makes belongs to their browser session: kept
    results (``kept``) and files (``files``) are looked up by session and removed when it ends or
    after ``max_age_s``."""

    output_root: Path
    editor: EmbeddedEditor = field(default_factory=EmbeddedEditor)
    kept: KeptResults = field(default_factory=KeptResults)
    spot: object = None  # webapp.spotcheck.SpotCheck; default: a database beside the outputs
    judges: Judges = field(default_factory=Judges)  # the embedded judge and, when configured, the LMM judge
    uploads_root: Path = field(default_factory=lambda: Path(gr.utils.get_upload_folder()))  # Gradio's upload cache
    max_age_s: float = MAX_AGE_S  # nothing a visitor uploads or makes is kept longer (seconds)
    examples_root: Path | None = None  # the example photos' results (default: beside output_root); never swept
    audit: object = None  # face_nerf.audit.AuditLog of every creation; default: the data folder's (never swept)
    identity: object = None  # face_nerf.signing.SigningIdentity that signs the outputs; default: load_identity()

    def __post_init__(self):
        from webapp.spotcheck import SpotCheck

        self.output_root = Path(self.output_root)
        self.files = SessionFiles(self.output_root, Path(self.uploads_root), self.max_age_s)
        if self.spot is None:
            self.spot = SpotCheck(self.output_root.with_name(f"{self.output_root.name}-ratings") / "annotations.sqlite")
        if self.audit is None:
            from face_nerf.audit import AuditLog

            self.audit = AuditLog()
        self._sweeper: Sweeper | None = None
        self.examples = ExampleResults(self.examples_root or self.output_root.with_name(f"{self.output_root.name}-examples"))

    def prepare_examples(self, photos: list[str]) -> float:
        """Make the example photos' results once, so that clicking one shows it at once (the seconds it took)."""
        seconds = self.examples.prepare(photos, self)
        self.files.keep = self.files.keep | self.examples.files()
        return seconds

    def show_example(self, photo: str | None, request: gr.Request | None = None) -> tuple | None:
        """An example's prepared result as ``generate`` returns it, its token kept in the request's
        session; None when the photo is not a prepared example."""
        example = self.examples.get(photo)
        if example is None:
            return None
        session = session_name(request)
        token = self.kept.put(session, ExampleRef(example.name), self.files.folder(session))
        return example.video, example.mesh, example.strip, example.judgement, token

    @property
    def judge(self):
        """The embedded judge."""
        return self.judges.embedded

    def warm_up(self) -> str:
        """Load what the first request would otherwise wait for: the sentence-embedding model of the
        editor, the judge's calibration (local files; nothing is downloaded) and the CPU renderer (built
        once per machine, seconds). Returns which CPU renderer draws the views."""
        from face_nerf import march_packets

        self.editor.parse("undead")
        _ = self.judge
        return march_packets.describe()

    # --- retention ---------------------------------------------------------------------------------

    def sweep(self) -> int:
        """Remove files older than the maximum age and forget sessions idle that long; returns how many
        files went."""
        self.kept.drop_idle(self.max_age_s)
        return self.files.sweep()

    def start_retention(self) -> Sweeper:
        """Sweep on a timer (every ``sweep_interval(max_age_s)``), whatever the traffic."""
        if self._sweeper is None:
            self._sweeper = Sweeper(self.sweep, sweep_interval(self.max_age_s)).start()
        return self._sweeper

    def stop_retention(self) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None

    def end_session(self, request: gr.Request) -> None:
        """Forget the session's results and remove its files (called when the browser tab closes)."""
        self._forget(session_name(request))

    def _forget(self, session: str) -> None:
        self.kept.end(session)
        self.files.end(session)

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

    def generate(self, *args, **kwargs) -> tuple[str, str, str, dict, str]:
        """The finished result of ``generate_steps`` (for callers that do not stream)."""
        return _last(self.generate_steps(*args, **kwargs))

    def generate_steps(self, photo_path: str | None, prompt: str = "", lighting: str = "original", light: str = "",
                       fixed_to: str = "world", size: int = 256, frames: int = 48, editor: str = "embedded",
                       turntable: str = "±45°", consent: bool = False, how: str = "api",
                       request: gr.Request | None = None, progress=gr.Progress()) -> Iterator[tuple]:
        """Photo -> edited, lit 3D face, streamed as it is made (``_stream``): (turntable.mp4, mesh.glb,
        views.png, judgement as JSON, a token for the result kept for relighting, comparing and the judge
        panel). ``turntable`` is one of ``TURNTABLES``. ``consent``: the caller has the right to use the
        photo (required but for the example photos); ``how``: "ui" (the page's checkbox) or "api"."""
        from face_nerf.consent import check_consent
        from face_nerf.pipeline import ReconstructionConfig, edit_reconstruction, reconstruct, render_turntable

        session = session_name(request)
        self.files.received(session, photo_path)
        if not photo_path:
            raise gr.Error("No photo yet: upload a face photo or click one of the examples.")
        with user_errors():
            confirmed = check_consent(photo_path, bool(consent), how)  # before the photo is read
        size, frames = self._check_size(size, frames)
        prompt = (prompt or "").strip()
        progress(0.02, desc="Reading the prompt")
        with user_errors():
            if turntable not in TURNTABLES:
                raise gr.Error(f"Unknown turntable {turntable!r}: choose one of {', '.join(TURNTABLES)}.")
            config = ReconstructionConfig(frames=frames, size=size, yaw=TURNTABLES[turntable],
                                          lighting=parse_lighting(lighting, light, fixed_to))
            chosen = self._editor(editor)
            if chosen is self.editor:
                self.editor.parse(prompt)  # an unreadable prompt fails before any work
            progress(0.05, desc="Finding the face")
            base = reconstruct(photo_path, config)
            for warning in base.warnings:
                gr.Warning(warning)
            progress(0.15, desc="Editing")
            recon = edit_reconstruction(base, prompt, chosen)
            done = [0]

            def frame_done(n: int) -> None:
                done[0] += n
                progress(0.2 + 0.55 * done[0] / config.frames, desc="Rendering the turntable")

            rendered = render_turntable(recon, config, progress=frame_done)
            yield from self._stream(Result(recon, base, None, config, consent=confirmed), rendered, session, progress)

    def relight(self, *args, **kwargs) -> tuple[str, str, str, dict, str]:
        """The finished result of ``relight_steps``."""
        return _last(self.relight_steps(*args, **kwargs))

    def relight_steps(self, token: str | None, lighting: str = "original", light: str = "", fixed_to: str = "world",
                      request: gr.Request | None = None, progress=gr.Progress()) -> Iterator[tuple]:
        """The last result under another light, without reconstructing (judged again), streamed like
        ``generate_steps``."""
        from face_nerf.pipeline import relight_outputs

        result = self.result(token, request)
        if result is None:
            raise gr.Error("Nothing to relight yet: generate a face first.")
        with user_errors():
            progress(0.1, desc="Relighting")
            outputs = relight_outputs(result.recon, result.outputs, parse_lighting(lighting, light, fixed_to),
                                      result.config.mesh_lighting)
            yield from self._stream(Result(result.recon, result.base, outputs, result.config, consent=result.consent,
                                           event="relight"), None, session_name(request), progress)

    def compare(self, token: str | None, mode: str = "original vs edited", preset: str = "studio",
                request: gr.Request | None = None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Two 3-view strips: before and after the edit, or the current light and ``preset``. Returns
        (both side by side under their captions, (before, after) for a slider)."""
        from face_nerf.export import STRIP_YAWS, TurntableFrame, render_views
        from face_nerf.pipeline import relight_outputs
        from face_nerf.watermark import embed

        result = self.result(token, request)
        if result is None:
            raise gr.Error("Nothing to compare yet: generate a face first.")
        current = result.outputs.strip
        with user_errors():
            if mode == "original vs edited":
                light = result.config.lighting.to_sh(result.base.field.photo_light)
                views, _ = render_views(result.base.field, [TurntableFrame(y, 0.0) for y in STRIP_YAWS],
                                        result.config.size, light, result.config.lighting.fixed_to)
                views = embed(views, result.recon.creation_id)  # every image we render carries it
                other, labels = np.concatenate(list(views), 1), ("original", "edited: " + (result.recon.edit.summary()
                                                                                          if result.recon.edit else "no edit"))
                return side_by_side([other, current], labels), (other, current)
            relit = relight_outputs(result.recon, result.outputs, parse_lighting(preset), result.config.mesh_lighting)
            captions = (f"lighting: {result.outputs.lighting.name}", f"lighting: {preset}")
            return side_by_side([current, relit.strip], captions), (current, relit.strip)

    # --- judge -------------------------------------------------------------------------------------

    def judge_video(self, path: str | None, backend: str | None = None, request: gr.Request | None = None,
                    progress=gr.Progress()) -> tuple[dict, str]:
        """Any turntable video (or image) -> (judgement as JSON, a token for the judgement kept for the
        panel). ``backend``: "embedded" or "lmm" (default: the app's)."""
        from judge.frames import load_clip

        session = session_name(request)
        self.files.received(session, path)
        if not path:
            raise gr.Error("No video yet: upload a turntable video (mp4, webm, gif) or an image.")
        judge = self.judges.get(backend)
        progress(0.1, desc="Reading the video")
        with user_errors():
            folder = self.files.new_folder(session)
            # The session's own copy (what "Add to the spot-check queue" sends); judged from here, so
            # the upload may be removed meanwhile.
            own = folder / Path(path).name
            shutil.copyfile(path, own)
            clip = load_clip(own)
            progress(0.3, desc="Judging")
            result = judge.judge(clip)
            if not result.face_found:
                gr.Warning(result.summary)
            judged = self.keep_judgement(result, clip, folder)
            judged.video = str(own) if clip.kind == "video" else None
            token = self.kept.put(session, judged, self.files.folder(session))
            self._drop_if_ended(session)
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
            data = parse_judgement(judgement)
            result = JudgeResult.from_dict(data)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
            reason = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
            raise gr.Error(f"That is not a judgement from this app ({reason[:200]}); pass the JSON /judge or "
                           "/generate returned.") from err
        return ask(result, question or "").text

    def ask_kept(self, token: str | None, judgement: dict | str | None, question: str,
                 request: gr.Request | None = None) -> str:
        """Answer a question in a judge panel, as Markdown-safe text: by generation when the kept
        judgement is the LMM judge's, else from the judgement (``ask``)."""
        judged = self.judged(token, request)
        if judged is None or judged.clip is None or self.judges.lmm is None:
            return markdown_text(self.ask(judgement, question))
        with user_errors():
            return markdown_text(self.judges.lmm.ask(judged.clip, question or "").text)

    def result(self, token: str | None, request: gr.Request | None = None) -> Result | None:
        """A creation kept for the request's session (None for no token)."""
        with user_errors():
            item = self.kept.get(session_name(request), token)
        return self.examples.result(item.name) if isinstance(item, ExampleRef) else item

    def judged(self, token: str | None, request: gr.Request | None = None) -> Judged | None:
        """The judgement of a creation or judged upload kept for the request's session (None for no token)."""
        with user_errors():
            item = self.kept.get(session_name(request), token, "judgement")
        if isinstance(item, ExampleRef):
            return self.examples.examples[item.name].judged
        return item.judged if isinstance(item, Result) else item

    # --- spot-check --------------------------------------------------------------------------------

    def queue_for_spotcheck(self, token: str | None, request: gr.Request | None = None) -> str:
        """Add the visitor's kept creation or judged upload to the annotators' queue, on their explicit
        request; returns a line for the page. Its turntable and strip are copied into the ratings store."""
        if not self.spot.enabled:
            return markdown_text(self.spot.disabled_reason)
        with user_errors():
            item = self.kept.get(session_name(request), token)
        if item is None:
            return "Nothing to add yet: generate a face or judge a video first."
        if isinstance(item, ExampleRef):  # its judgement is in memory; the whole result need not be read back
            judged, source = self.examples.examples[item.name].judged, "app"
        else:
            judged, source = (item.judged, "app") if isinstance(item, Result) else (item, "upload")
        if judged.video is None or not judged.result.face_found:
            return "Only a turntable video with a face can be rated; this one cannot be added."
        return markdown_text(self.spot.add(judged.video, judged.result, source))

    # --- helpers -----------------------------------------------------------------------------------

    def _stream(self, result: Result, rendered, session: str, progress) -> Iterator[tuple]:
        """Show a creation as it is finished: the turntable as soon as it is encoded, then the mesh and
        strip, then the judgement with the token of the kept result. ``rendered``: the turntable alone
        (``render_turntable``) when ``result.outputs`` is still to be finished. Yields (video, mesh, strip,
        judgement, token), None for what is not ready. If a step fails, nothing of it stays on disk."""
        from face_nerf.export import write_glb, write_video
        from face_nerf.pipeline import finish_outputs, write_outputs
        from face_nerf.provenance import Provenance
        from judge.frames import load_clip
        from PIL import Image

        folder = self.files.new_folder(session)
        try:
            frames = rendered.frames if result.outputs is None else result.outputs.frames
            video, mesh, strip = folder / "turntable.mp4", folder / "mesh.glb", folder / "views.png"
            write_video(frames, video, result.config.fps)
            yield str(video), None, None, None, None
            progress(0.78, desc="Making the mesh")
            if result.outputs is None:
                result.outputs = finish_outputs(result.recon, result.config, rendered)
            write_glb(result.outputs.mesh, mesh)
            Image.fromarray(result.outputs.strip).save(strip)
            yield str(video), str(mesh), str(strip), None, None
            # One after the other. The judge started beside the mesh gives the judgement 1 s sooner
            # through the API (2.3 s after the video against 3.3 s), but in a browser on the same 2 cores
            # the panel came later (4.1 s after the video against 3.5 s): the mesh, later, loads into the
            # 3D viewer while the judge runs.
            progress(0.85, desc="Judging the turntable")
            clip = load_clip(frames)
            judgement = self.judges.get().judge(clip)
            self._drop_if_ended(session)  # the browser left while it was judged
            result.judged = self.keep_judgement(judgement, clip, folder)
            result.judged.video = str(video)
            token = self.kept.put(session, result, self.files.folder(session), fit=False)
            self._drop_if_ended(session)
            yield str(video), str(mesh), str(strip), judgement.to_dict(), token
            # Shown; now the downloads, and memory back within its budget.
            out = write_outputs(result.recon, result.outputs, folder / "result", result.config.fps, video=video,
                                provenance=Provenance(self.identity, self.audit, result.consent, result.event))
        except BaseException as err:
            remove_tree(folder)
            if self.files.ended(session) and not isinstance(err, gr.Error):  # its folder went with the session
                raise gr.Error(SESSION_ENDED) from err
            raise
        result.files = [str(out / n) for n in DOWNLOADS] + [result.judged.json_path]
        self.kept.fit(session)
        release_memory()

    def _drop_if_ended(self, session: str) -> None:
        """The browser left while the request ran: remove what it made instead of keeping it."""
        if self.files.ended(session):
            self._forget(session)
            raise gr.Error(SESSION_ENDED)

    def keep_judgement(self, result, clip, folder: Path) -> Judged:
        """Write the judgement's JSON and keep it with the frames it analysed, at the panel's size (at
        most 256 px; heatmaps of another size, e.g. the LMM judge's, are resized to them). For the LMM
        judge, the judged frames are also kept at their own size, for its questions."""
        from judge.analytic import analysis_frames
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
            lmm_clip = replace(clip, frames=judged_frames, indices=list(result.frame_indices))  # warnings kept
        return Judged(result, frames, str(path), lmm_clip)

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


def _last(steps: Iterator[tuple]) -> tuple:
    """The last of a handler's streamed steps (the finished result)."""
    last = None
    for last in steps:
        pass
    return last


@contextmanager
def user_errors():
    """Errors a visitor can act on, as messages in the page: FaceLab's own, a result no longer kept, and a
    server that cannot write (a full disk). No server path is named."""
    try:
        yield
    except FaceLabError as err:
        raise gr.Error(str(err)) from err
    except NotKept as err:
        raise gr.Error(str(err)) from err
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise gr.Error("The server's disk is full, so the result could not be written. Try again in a few "
                           "minutes (old results are removed hourly); if it persists, tell the operator.") from err
        raise gr.Error(f"The server could not write the result ({err.strerror or type(err).__name__}). Try again; "
                       "if it persists, tell the operator.") from err


def release_memory() -> None:
    """Hand freed heap back to the system after a heavy request: glibc keeps it otherwise (measured:
    ~700 MB of a 2-core server's RSS after twenty requests)."""
    import gc

    from face_nerf.heap import trim_heap

    gc.collect()
    trim_heap()
