"""The judge's input: a turntable as a few evenly spaced RGB frames, from a video, images or an array.

Videos are decoded by ffmpeg (imageio-ffmpeg), GIFs and images by Pillow. Frames stream past and only the
sampled ones are kept, so long clips never sit in memory whole. Transparency is composited on white.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, ImageSequence

from face_nerf.errors import FaceLabError

MAX_FRAMES = 32  # frames handed to the judge; longer clips are sampled evenly
MAX_FILE_BYTES = 200 * 1024 * 1024  # larger files are refused before decoding
MAX_PIXELS = 4096 * 4096  # per frame; larger frames are refused before decoding (decompression bombs)
# One clip's decoding work is bounded by frames x pixels, so that no upload holds the only processing slot:
MAX_SOURCE_FRAMES = 1500  # source frames decoded at most (a minute at 25 fps); later frames are not read
MAX_DECODED_PIXELS = 2_000_000_000  # source frames x pixels decoded at most (~1000 frames of 1080p, 119 of 4096x4096)
DECODE_SECONDS = 30.0  # default time budget for decoding one clip; over it, a ClipError
VIDEO_SUFFIXES = (".mp4", ".webm", ".gif", ".mov", ".mkv", ".avi")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_UPLOAD_HINT = "Upload an mp4, webm or gif turntable, a folder of frames or one image."
_NO_FRAMES_SIGNS = ("received no packets", "does not contain any stream")  # ffmpeg's words for "no video"
_NO_FRAMES = ("'{}' has no video frames that could be decoded{}. It may be cut short or hold only audio; "
              "export the turntable again and upload it.")


class ClipError(FaceLabError, ValueError):
    """The clip cannot be judged: missing, unsupported, corrupt, too large, or frames that disagree."""


@dataclass(frozen=True)
class Clip:
    """Frames sampled evenly from a turntable, ready for the judge.

    Attributes:
        frames: [T, H, W, 3] uint8 RGB, T >= 1, all frames the same size.
        indices: which source frames these are (0-based, strictly increasing).
        source_frames: how many frames the source had (of a video file: were decoded, at most
            ``decode_limit`` of its frame size).
        fps: source frame rate; None for images, frame folders, path lists and arrays.
        kind: "video" (video files and GIFs), "frames" (folder, path list, [T, H, W, 3] array) or "image".
        name: file or folder name, for messages.
        expected_frames: frames the video's header announces (its frame count, else duration x fps);
            None when unknown or not a video file.
        warnings: notes for the user about what was not judged (a cut-short file, a clip decoded only
            in part); a judge repeats them in its result.
    """

    frames: np.ndarray
    indices: list[int]
    source_frames: int
    fps: float | None
    kind: str
    name: str
    expected_frames: int | None = None
    warnings: tuple[str, ...] = field(default=())


def sample_indices(total: int, max_frames: int) -> list[int]:
    """Evenly spread frame indices over a clip of ``total`` frames.

    Args:
        total: frames in the clip (>= 0).
        max_frames: the most indices to return (>= 1).

    Returns:
        ``range(total)`` when total <= max_frames; else ``max_frames`` increasing indices whose gaps differ
        by at most one, first and last frame included ([0] when max_frames is 1).

    Example:
        >>> sample_indices(10, 4)
        [0, 3, 6, 9]
    """
    if total < 0 or max_frames < 1:
        raise ValueError(f"Need total >= 0 and max_frames >= 1. Got total={total}, max_frames={max_frames}.")
    if total <= max_frames:
        return list(range(total))
    if max_frames == 1:
        return [0]
    steps = max_frames - 1  # integer rounding of i * (total - 1) / steps; gaps > 1 keep indices unique
    return [(i * (total - 1) + steps // 2) // steps for i in range(max_frames)]


def decode_limit(width: int, height: int) -> int:
    """The most source frames of this size that are decoded: ``MAX_SOURCE_FRAMES``, fewer for large
    frames so that frames x pixels stays under ``MAX_DECODED_PIXELS`` (never fewer than ``MAX_FRAMES``).

    Example:
        >>> decode_limit(512, 512), decode_limit(4096, 4096)
        (1500, 119)
    """
    if width < 1 or height < 1:
        raise ValueError(f"Frame size must be at least 1x1. Got {width}x{height}.")
    return max(MAX_FRAMES, min(MAX_SOURCE_FRAMES, MAX_DECODED_PIXELS // (width * height)))


def load_clip(source, max_frames: int = MAX_FRAMES, max_side: int | None = 512,
              time_budget: float | None = DECODE_SECONDS) -> Clip:
    """Read a turntable and keep at most ``max_frames`` evenly spaced frames.

    Args:
        source: path to a video (.mp4 .webm .gif .mov .mkv .avi), to one image (.png .jpg .jpeg .webp
            .bmp), or to a folder of image frames (natural name order: frame2 before frame10); a list
            or tuple of image paths (kept in the given order); or a uint8 array [T, H, W, 3] or [H, W, 3].
        max_frames: the most frames to keep, chosen by ``sample_indices``.
        max_side: frames longer than this on their long side are downscaled (Lanczos, aspect kept; videos
            by ffmpeg while decoding); None keeps the source size.
        time_budget: seconds that decoding may take (None: no limit). Videos are also decoded only up to
            ``decode_limit`` frames; the clip's ``warnings`` say when frames were left out.

    Returns:
        The sampled clip. Of a folder or list, only the sampled images are decoded and size-checked.
        Animated .webp/.png files count as videos.

    Raises:
        ClipError: missing, not a regular file, unsupported, too large (bytes or pixels), corrupt, no
            frames, frames of different sizes, slower to decode than ``time_budget``, or an array of the
            wrong shape or dtype.
        ValueError: max_frames < 1, max_side < 1 or time_budget <= 0.

    Example:
        >>> clip = load_clip("turntable.mp4", max_frames=16)
        >>> clip.frames.shape, clip.kind
        ((16, 512, 512, 3), 'video')
    """
    if max_frames < 1 or (max_side is not None and max_side < 1):
        raise ValueError(f"Need max_frames >= 1 and max_side >= 1 or None. Got {max_frames}, {max_side}.")
    if time_budget is not None and not time_budget > 0:
        raise ValueError(f"Need time_budget > 0 seconds or None. Got {time_budget}.")
    if isinstance(source, np.ndarray):
        return _clip_from_array(source, max_frames, max_side)
    items = source if isinstance(source, (list, tuple)) else [source]
    if bad := [type(item).__name__ for item in items if not isinstance(item, (str, os.PathLike))]:
        raise ClipError(f"Cannot read a clip from a {bad[0]}. Pass a path to a video, image or folder of "
                        "frames, a list of image paths, or a uint8 array [T, H, W, 3].")
    if isinstance(source, (list, tuple)):
        return _clip_from_images([Path(p) for p in items], f"<{len(items)} images>", max_frames, max_side)
    path = Path(source)
    if path.is_dir():
        return _clip_from_images(_folder_images(path), path.name, max_frames, max_side)
    _check_file(path, VIDEO_SUFFIXES + IMAGE_SUFFIXES)
    budget = _Budget(path.name, time_budget)
    if path.suffix.lower() in VIDEO_SUFFIXES and path.suffix.lower() != ".gif":
        return _read_video(path, max_frames, max_side, budget)
    return _read_pillow(path, max_frames, max_side, budget)


def _check_file(path: Path, suffixes: tuple[str, ...]) -> None:
    """Refuse a missing file, a device or pipe, an unsupported type or an oversized file, before any
    decoding. Messages name the file only, never the folders above it (the web app shows them)."""
    if not path.exists():
        raise ClipError(f"'{path.name}' was not found. Check the path and try again.")
    if not path.is_file():
        raise ClipError(f"'{path.name}' is not a video or image file (it is a device, pipe or socket). "
                        f"{_UPLOAD_HINT}")
    if path.suffix.lower() not in suffixes:
        raise ClipError(f"'{path.name}' has an unsupported type ('{path.suffix or 'no extension'}'); "
                        f"use one of {', '.join(suffixes)}. {_UPLOAD_HINT}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ClipError(f"'{path.name}' is {size / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES / 2**20:.1f} MB. "
                        "Trim or re-encode the turntable (a few seconds at 512 px is plenty) and try again.")


def _check_pixels(width: int, height: int, name: str) -> None:
    if width * height > MAX_PIXELS:
        raise ClipError(f"'{name}' has {width}x{height} frames ({width * height / 1e6:.1f} MP); the limit is "
                        f"{MAX_PIXELS / 1e6:.1f} MP per frame. Downscale the turntable and try again.")


@dataclass(frozen=True)
class _Budget:
    """The time decoding one clip may take, from when it was made."""

    name: str
    seconds: float | None
    start: float = field(default_factory=time.monotonic)

    def remaining(self) -> float | None:
        """Seconds left (at least a millisecond); None without a budget."""
        return None if self.seconds is None else max(1e-3, self.seconds - (time.monotonic() - self.start))

    def check(self, decoded: int, total: int | None) -> None:
        """Raise a ClipError once the budget is spent (``decoded`` of ``total`` frames, for the message)."""
        if self.seconds is None or time.monotonic() - self.start <= self.seconds:
            return
        read = f"{decoded} of {total}" if total else f"{decoded}"
        raise ClipError(f"'{self.name}' takes too long to decode: only {read} frames were read in the "
                        f"{self.seconds:g} s allowed. Trim the turntable to a few seconds or re-encode it at "
                        "512 px and try again.")


@contextmanager
def _decoding(name: str, what: str) -> Iterator[None]:
    """Turn a decoder's exception into a ClipError that names the file; ClipErrors pass through."""
    try:
        yield
    except ClipError:
        raise
    except Image.DecompressionBombError as err:
        raise ClipError(f"'{name}' is too large to decode safely ({err}). Downscale it and try again.") from err
    except (OSError, RuntimeError, ValueError, IndexError, KeyError, SyntaxError, EOFError) as err:
        if any(sign in str(err) for sign in _NO_FRAMES_SIGNS):
            raise ClipError(_NO_FRAMES.format(name, f" ({_reason(err)})")) from err
        raise ClipError(f"'{name}' could not be read as {what} (corrupt or not {what}: {_reason(err)}). "
                        f"{_UPLOAD_HINT}") from err


def _reason(err: Exception) -> str:
    """The telling line of a decoder error: ffmpeg's last logged line ("[in#0 @ 0x..] msg"), else the last line."""
    text = str(err)
    lines = re.findall(r"\[[^\]\n]* @ [^\]\n]*\] *(.+)", text) or [ln for ln in text.splitlines() if ln.strip()]
    return (lines[-1].strip() if lines else type(err).__name__)[:200]


def _to_rgb(image: Image.Image) -> np.ndarray:
    """[H, W, 3] uint8 from any Pillow mode; 16-bit is scaled down, transparency composited on white."""
    if image.mode.startswith("I;16"):
        image = Image.fromarray((np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _fit(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale [H, W, 3] so its long side is at most ``max_side`` (Lanczos, aspect kept); never upscale."""
    height, width = rgb.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return rgb
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def _read_pillow(path: Path, max_frames: int, max_side: int | None, budget: _Budget) -> Clip:
    """A still image (kind "image") or a GIF / animated image (kind "video", fps from frame durations)."""
    with _decoding(path.name, "an image" if path.suffix.lower() in IMAGE_SUFFIXES else "a video"):
        with Image.open(path) as image:
            size = image.size
            _check_pixels(*size, path.name)  # before any pixel is decoded
            count = getattr(image, "n_frames", 1)
            limit = decode_limit(*size)
            total = min(count, limit)
            wanted = set(sample_indices(total, max_frames))
            kept, durations = {}, []
            for i, frame in enumerate(ImageSequence.Iterator(image)):
                if i == total:
                    break
                budget.check(i, total)
                durations.append(frame.info.get("duration") or 0)
                if i in wanted:
                    kept[i] = _fit(_to_rgb(ImageOps.exif_transpose(frame)), max_side)
    if not kept:
        raise ClipError(_NO_FRAMES.format(path.name, ""))
    indices = sorted(kept)
    frames = np.stack([kept[i] for i in indices])
    if path.suffix.lower() != ".gif" and total == 1:
        return Clip(frames, indices, 1, None, "image", path.name)
    mean_ms = sum(durations) / len(durations)
    fps = 1000.0 / mean_ms if mean_ms > 0 else None
    notes = (_partly_decoded(path.name, count, total, fps, size),) if count > total else ()
    return Clip(frames, indices, total, fps, "video", path.name, count, notes)


def _read_video(path: Path, max_frames: int, max_side: int | None, budget: _Budget) -> Clip:
    """Decode with ffmpeg in one streaming pass, downscaled by ffmpeg to ``max_side``, keeping only the
    sampled frames (two passes when ffmpeg's quick count disagrees with the frames actually decoded).
    At most ``decode_limit`` frames are decoded, within ``budget``."""
    import imageio.v2 as iio  # lazily: ffmpeg is only needed for video files

    total = count = None
    with _decoding(path.name, "a video"):
        for _ in range(2):
            with iio.get_reader(path, "ffmpeg", output_params=_scale_filter(max_side)) as reader:
                meta = reader.get_meta_data()
                source_size = tuple(meta.get("source_size") or meta["size"])
                _check_pixels(*source_size, path.name)
                limit = decode_limit(*source_size)
                if total is None:
                    count = _quick_count(path, budget)  # packets, not decoded frames: usually but not always equal
                    total = min(count, limit)
                kept, decoded, more = _decode_sampled(reader, total, limit, max_frames, max_side, budget)
            if decoded == total:
                break
            total = decoded  # the quick count was off: sample again by the true count
    if decoded == 0:
        raise ClipError(_NO_FRAMES.format(path.name, ""))
    fps = meta.get("fps")
    fps = float(fps) if isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0 else None
    expected = _announced_frames(meta)
    if more:
        notes = (_partly_decoded(path.name, max(count, expected or 0, decoded + 1), decoded, fps, source_size),)
    else:
        notes = (_cut_short(path.name, decoded, expected),) if _is_cut_short(decoded, expected) else ()
    indices = sorted(kept)
    return Clip(np.stack([kept[i] for i in indices]), indices, decoded, fps, "video", path.name, expected, notes)


def _scale_filter(max_side: int | None) -> list[str] | None:
    """ffmpeg output options that shrink frames to at most ``max_side`` on the long side (Lanczos, aspect
    kept, never enlarged) while decoding, so large frames never cross the pipe at full size."""
    if max_side is None:
        return None
    box = f"w='min({max_side},iw)':h='min({max_side},ih)'"
    return ["-vf", f"scale={box}:force_original_aspect_ratio=decrease:flags=lanczos"]


def _decode_sampled(reader, total: int, limit: int, max_frames: int, max_side: int | None,
                    budget: _Budget) -> tuple[dict[int, np.ndarray], int, bool]:
    """Stream frames from ``reader``, keeping the ``sample_indices(total, max_frames)`` ones; stop after
    ``limit`` frames. Returns (kept frames by index, frames decoded, whether frames were left unread)."""
    wanted = set(sample_indices(total, max_frames))
    kept, decoded = {}, 0
    for frame in reader:
        if decoded == limit:
            return kept, decoded, True
        budget.check(decoded, total)
        if decoded in wanted:
            kept[decoded] = _fit(np.asarray(frame, dtype=np.uint8), max_side)
        decoded += 1
    return kept, decoded, False


def _announced_frames(meta: dict) -> int | None:
    """Frames the file's header announces: ffmpeg's frame count, else duration x fps; None when unknown."""
    known = lambda v: isinstance(v, (int, float)) and math.isfinite(v) and v > 0
    nframes, duration, fps = meta.get("nframes"), meta.get("duration"), meta.get("fps")
    if known(nframes):
        return int(nframes)
    if known(duration) and known(fps):
        return int(round(duration * fps))
    return None


def _is_cut_short(decoded: int, expected: int | None) -> bool:
    """More frames announced than decoded, beyond the rounding of duration x fps (2 frames or 5%)."""
    return expected is not None and expected - decoded > max(2, 0.05 * expected)


def _cut_short(name: str, decoded: int, expected: int) -> str:
    return (f"Only {decoded} of the {expected} frames that '{name}' announces could be decoded: the file may "
            "be cut short, so the judge saw only part of the turn. Export the turntable again to have all of "
            "it judged.")


def _partly_decoded(name: str, count: int, decoded: int, fps: float | None, size: tuple[int, int]) -> str:
    seconds = f" ({decoded / fps:.1f} s)" if fps else ""
    return (f"'{name}' has {count} frames of {size[0]}x{size[1]}; only the first {decoded}{seconds} were "
            "decoded and judged, the most decoded at this frame size. Trim the turntable or re-encode it at "
            "512 px to have all of it judged.")


def _quick_count(path: Path, budget: _Budget) -> int:
    """The video stream's packet count, copied without decoding (under a second for any file under
    ``MAX_FILE_BYTES``; imageio's count_frames decodes every frame, minutes for 4K); 0 when that fails,
    so that the first pass only counts."""
    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0",
               "-c", "copy", "-f", "null", "-"]
    try:
        run = subprocess.run(command, capture_output=True, timeout=budget.remaining())
    except subprocess.TimeoutExpired:
        budget.check(0, None)
        return 0
    counts = re.findall(rb"frame=\s*(\d+)", run.stderr)
    return int(counts[-1]) if counts else 0


def _folder_images(folder: Path) -> list[Path]:
    """The folder's image files in natural name order (frame2 before frame10); other files are ignored."""
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise ClipError(f"Folder '{folder.name}' holds no images ({', '.join(IMAGE_SUFFIXES)}). Put the "
                        "turntable frames in it as PNG or JPEG files, or upload the video itself.")
    return sorted(files, key=lambda p: [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)])


def _clip_from_images(paths: Sequence[Path], name: str, max_frames: int, max_side: int | None) -> Clip:
    if not paths:
        raise ClipError("The list of frames is empty. Pass at least one image path.")
    for path in paths:
        _check_file(path, IMAGE_SUFFIXES)
    indices = sample_indices(len(paths), max_frames)
    frames, first = [], None
    for i in indices:
        rgb = _read_pillow(paths[i], 1, None, _Budget(paths[i].name, None)).frames[0]
        first = first or (paths[i].name, rgb.shape)
        if rgb.shape != first[1]:
            raise ClipError(f"'{paths[i].name}' is {rgb.shape[1]}x{rgb.shape[0]} but '{first[0]}' is "
                            f"{first[1][1]}x{first[1][0]}; all frames must be the same size. "
                            "Export the frames again at one size.")
        frames.append(_fit(rgb, max_side))
    return Clip(np.stack(frames), indices, len(paths), None, "frames", name)


def _clip_from_array(array: np.ndarray, max_frames: int, max_side: int | None) -> Clip:
    if array.dtype != np.uint8 or array.ndim not in (3, 4) or array.shape[-1] != 3:
        raise ClipError(f"A frames array must be uint8 with shape (T, H, W, 3) or (H, W, 3). Got {array.dtype} "
                        f"{array.shape}. Convert floats in [0, 1] with (x * 255).round().astype(np.uint8) "
                        "and drop any alpha channel.")
    kind = "image" if array.ndim == 3 else "frames"
    frames = array[None] if array.ndim == 3 else array
    if 0 in frames.shape:
        raise ClipError(f"The frames array is empty (shape {array.shape}). Pass at least one frame.")
    _check_pixels(frames.shape[2], frames.shape[1], "<array>")
    indices = sample_indices(len(frames), max_frames)
    return Clip(np.stack([_fit(frames[i], max_side) for i in indices]), indices, len(frames), None, kind, "<array>")
