"""judge.frames: sampling and loading turntables from videos, GIFs, folders, path lists, images and arrays."""

from __future__ import annotations

import os
import struct
import subprocess
import time
import zlib

import imageio.v2 as iio
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from face_nerf.errors import FaceLabError
from judge import frames as frames_module
from judge.frames import MAX_FRAMES, Clip, ClipError, decode_limit, load_clip, sample_indices

H, W = 48, 64


def numbered_frame(number: int, height: int = H, width: int = W) -> np.ndarray:
    """A grey frame whose top third spells ``number`` (0..255) in 8 black/white blocks, high bit first."""
    frame = np.full((height, width, 3), 128, np.uint8)
    for bit in range(8):
        frame[: height // 3, bit * width // 8 : (bit + 1) * width // 8] = 255 * ((number >> (7 - bit)) & 1)
    return frame


def read_number(frame: np.ndarray) -> int:
    """The number ``numbered_frame`` wrote, read from the centre of each block (survives h264 and resizing)."""
    height, width = frame.shape[:2]
    bits = ""
    for bit in range(8):
        x0, x1 = bit * width // 8, (bit + 1) * width // 8
        block = frame[height // 12 : height // 4, x0 + (x1 - x0) // 4 : x1 - (x1 - x0) // 4]
        bits += "1" if block.mean() > 128 else "0"
    return int(bits, 2)


def write_mp4(path, count: int, faststart: bool = False):
    params = ["-movflags", "+faststart"] if faststart else None
    with iio.get_writer(path, fps=24, codec="libx264", quality=8, macro_block_size=1, output_params=params) as w:
        for i in range(count):
            w.append_data(numbered_frame(i))
    return path


def write_noise_mp4(path, count: int, height: int = 96, width: int = 128):
    """An mp4 of ``count`` noise frames with its index first (faststart), so that most bytes are frame data."""
    rng = np.random.default_rng(0)
    with iio.get_writer(path, fps=24, codec="libx264", quality=8, macro_block_size=1,
                        output_params=["-movflags", "+faststart"]) as w:
        for _ in range(count):
            w.append_data(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return path


def write_gif(path, count: int, duration_ms: int = 100):
    images = [Image.fromarray(numbered_frame(i)) for i in range(count)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path


def write_frames(folder, numbers, size=(H, W)):
    folder.mkdir()
    paths = []
    for n in numbers:
        paths.append(folder / f"frame{n}.png")
        Image.fromarray(numbered_frame(n, *size)).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def mp4_80(tmp_path_factory):
    """An 80-frame 64x48 mp4 at 24 fps; frame i shows the number i."""
    return write_mp4(tmp_path_factory.mktemp("video") / "turn.mp4", 80)


@pytest.fixture(scope="module")
def mp4_2048(tmp_path_factory):
    """A 24-frame 2048x2048 mp4 (2 s at 12 fps); frame i shows the number i."""
    path = tmp_path_factory.mktemp("large") / "large.mp4"
    with iio.get_writer(path, fps=12, codec="libx264", quality=5, macro_block_size=1,
                        output_params=["-preset", "ultrafast"]) as w:
        for i in range(24):
            w.append_data(numbered_frame(i, 2048, 2048))
    return path


# sample_indices ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("total, max_frames", [(0, 5), (1, 1), (5, 64), (64, 64), (65, 64), (80, 16),
                                                (1000, 7), (10, 2), (3, 1), (100, 99)])
def test_sample_indices_are_evenly_spread(total, max_frames):
    indices = sample_indices(total, max_frames)
    assert len(indices) == min(total, max_frames)
    assert all(0 <= i < total for i in indices)
    assert all(a < b for a, b in zip(indices, indices[1:]))  # strictly increasing, hence unique
    if total <= max_frames:
        assert indices == list(range(total))
    elif max_frames >= 2:
        assert indices[0] == 0 and indices[-1] == total - 1
        gaps = np.diff(indices)
        assert gaps.max() - gaps.min() <= 1


def test_sample_indices_worked_example():
    assert sample_indices(10, 4) == [0, 3, 6, 9]
    assert sample_indices(7, 3) == [0, 3, 6]
    assert sample_indices(3, 1) == [0]


def test_sample_indices_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_frames >= 1"):
        sample_indices(10, 0)
    with pytest.raises(ValueError, match="total >= 0"):
        sample_indices(-1, 4)


# videos --------------------------------------------------------------------------------------------------


def test_mp4_keeps_exactly_the_sampled_frames(mp4_80):
    clip = load_clip(mp4_80, max_frames=16)
    assert isinstance(clip, Clip)
    assert clip.frames.shape == (16, H, W, 3) and clip.frames.dtype == np.uint8
    assert clip.indices == sample_indices(80, 16)
    assert [read_number(f) for f in clip.frames] == clip.indices
    assert (clip.source_frames, clip.kind, clip.name) == (80, "video", "turn.mp4")
    assert clip.fps == pytest.approx(24.0)


def test_mp4_shorter_than_max_frames_keeps_every_frame(mp4_80):
    clip = load_clip(str(mp4_80), max_frames=MAX_FRAMES + 100)
    assert clip.indices == list(range(80))
    assert [read_number(f) for f in clip.frames] == list(range(80))


@pytest.mark.parametrize("quick_count", [0, 50, 95])
def test_mp4_is_sampled_by_decoded_frames_when_the_quick_count_is_off(mp4_80, monkeypatch, quick_count):
    monkeypatch.setattr(frames_module, "_quick_count", lambda path, budget: quick_count)
    clip = load_clip(mp4_80, max_frames=8)
    assert clip.source_frames == 80
    assert clip.indices == sample_indices(80, 8)
    assert [read_number(f) for f in clip.frames] == clip.indices


@pytest.mark.parametrize("max_side, shape", [(32, (24, 32)), (None, (H, W)), (1000, (H, W)), (64, (H, W))])
def test_max_side_downscales_keeping_aspect_and_never_upscales(mp4_80, max_side, shape):
    clip = load_clip(mp4_80, max_frames=4, max_side=max_side)
    assert clip.frames.shape == (4, *shape, 3)
    assert [read_number(f) for f in clip.frames] == sample_indices(80, 4)


def test_large_frames_are_downscaled_by_ffmpeg_while_decoding(mp4_2048, monkeypatch):
    seen = []
    fit = frames_module._fit
    monkeypatch.setattr(frames_module, "_fit", lambda rgb, max_side: seen.append(rgb.shape) or fit(rgb, max_side))
    clip = load_clip(mp4_2048, max_frames=6, max_side=256)
    assert clip.frames.shape == (6, 256, 256, 3)
    assert seen and all(max(shape[:2]) <= 256 for shape in seen)  # ffmpeg sent them small
    assert [read_number(f) for f in clip.frames] == clip.indices == sample_indices(24, 6)
    assert (clip.source_frames, clip.expected_frames, clip.warnings) == (24, 24, ())


def test_a_tiny_time_budget_is_a_clear_error(mp4_2048):
    with pytest.raises(ClipError, match=r"'large.mp4' takes too long to decode: only \d+ (of 24 )?frames were read "
                                        r"in the 1e-06 s allowed. Trim the turntable to a few seconds or re-encode "
                                        "it at 512 px"):
        load_clip(mp4_2048, time_budget=1e-6)
    with pytest.raises(ValueError, match="time_budget > 0"):
        load_clip(mp4_2048, time_budget=0)


def test_decode_limit_bounds_frames_times_pixels():
    assert decode_limit(512, 512) == frames_module.MAX_SOURCE_FRAMES
    assert decode_limit(4096, 4096) * 4096 * 4096 <= frames_module.MAX_DECODED_PIXELS
    assert decode_limit(100_000, 100_000) == MAX_FRAMES  # never fewer than the judge keeps
    with pytest.raises(ValueError, match="at least 1x1"):
        decode_limit(0, 10)


def test_a_video_over_the_decode_limit_is_judged_on_its_first_frames_with_a_note(mp4_80, monkeypatch):
    monkeypatch.setattr(frames_module, "MAX_SOURCE_FRAMES", 70)
    clip = load_clip(mp4_80, max_frames=8)
    assert clip.source_frames == 70 and clip.indices == sample_indices(70, 8)
    assert [read_number(f) for f in clip.frames] == clip.indices
    assert len(clip.warnings) == 1
    assert "'turn.mp4' has 80 frames of 64x48; only the first 70 (2.9 s) were decoded and judged" in clip.warnings[0]


def test_a_gif_over_the_decode_limit_is_judged_on_its_first_frames_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setattr(frames_module, "MAX_SOURCE_FRAMES", 70)
    clip = load_clip(write_gif(tmp_path / "spin.gif", 80), max_frames=8)
    assert clip.source_frames == 70 and [read_number(f) for f in clip.frames] == sample_indices(70, 8)
    assert "'spin.gif' has 80 frames of 64x48; only the first 70 (7.0 s)" in clip.warnings[0]


def test_a_cut_short_mp4_says_how_many_of_its_frames_were_decoded(tmp_path):
    data = write_noise_mp4(tmp_path / "full.mp4", 48).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    clip = load_clip(tmp_path / "cut.mp4")
    assert 10 < clip.source_frames < 40 and clip.expected_frames == 48
    assert clip.warnings == (f"Only {clip.source_frames} of the 48 frames that 'cut.mp4' announces could be decoded: "
                             "the file may be cut short, so the judge saw only part of the turn. Export the "
                             "turntable again to have all of it judged.",)
    whole = load_clip(tmp_path / "full.mp4")
    assert (whole.source_frames, whole.expected_frames, whole.warnings) == (48, 48, ())


def test_gif_is_a_video_with_fps_from_frame_durations(tmp_path):
    clip = load_clip(write_gif(tmp_path / "spin.gif", 10, duration_ms=100), max_frames=4)
    assert clip.frames.shape == (4, H, W, 3) and clip.frames.dtype == np.uint8
    assert clip.indices == [0, 3, 6, 9] == [read_number(f) for f in clip.frames]
    assert (clip.kind, clip.source_frames, clip.name) == ("video", 10, "spin.gif")
    assert clip.fps == pytest.approx(10.0)


def test_single_frame_gif_is_a_one_frame_video(tmp_path):
    clip = load_clip(write_gif(tmp_path / "one.gif", 1))
    assert (clip.frames.shape, clip.indices, clip.source_frames, clip.kind) == ((1, H, W, 3), [0], 1, "video")
    assert read_number(clip.frames[0]) == 0


# frames, images, arrays ----------------------------------------------------------------------------------


def test_folder_is_read_in_natural_order_ignoring_other_files(tmp_path):
    write_frames(tmp_path / "shots", range(1, 13))
    (tmp_path / "shots" / "notes.txt").write_text("not a frame")
    clip = load_clip(tmp_path / "shots", max_frames=5)
    assert clip.indices == sample_indices(12, 5)
    assert [read_number(f) for f in clip.frames] == [i + 1 for i in clip.indices]  # frame2 before frame10
    assert (clip.kind, clip.source_frames, clip.fps, clip.name) == ("frames", 12, None, "shots")


def test_list_of_paths_keeps_the_given_order(tmp_path):
    paths = write_frames(tmp_path / "shots", range(1, 7))[::-1]
    clip = load_clip([str(p) for p in paths], max_side=32)
    assert clip.frames.shape == (6, 24, 32, 3)
    assert [read_number(f) for f in clip.frames] == [6, 5, 4, 3, 2, 1]
    assert (clip.kind, clip.source_frames, clip.fps) == ("frames", 6, None)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp"])
def test_single_image(tmp_path, suffix):
    Image.fromarray(numbered_frame(77)).save(tmp_path / f"face{suffix}", quality=95)
    clip = load_clip(tmp_path / f"face{suffix}")
    assert (clip.frames.shape, clip.indices, clip.source_frames) == ((1, H, W, 3), [0], 1)
    assert (clip.kind, clip.fps, clip.name) == ("image", None, f"face{suffix}")
    assert read_number(clip.frames[0]) == 77


def test_grey_16bit_palette_and_transparent_images_become_rgb(tmp_path):
    Image.fromarray(numbered_frame(5)[..., 0]).save(tmp_path / "grey.png")
    Image.fromarray(numbered_frame(5)[..., 0].astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    Image.fromarray(numbered_frame(5)).convert("P").save(tmp_path / "palette.png")
    rgba = np.dstack([numbered_frame(5), np.full((H, W), 255, np.uint8)])
    rgba[-8:, :, 3] = 0  # bottom rows fully transparent
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    for name in ("grey.png", "grey16.png", "palette.png", "alpha.png"):
        frame = load_clip(tmp_path / name).frames[0]
        assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
        assert read_number(frame) == 5
    assert (load_clip(tmp_path / "alpha.png").frames[0, -8:] == 255).all()  # composited on white
    grey = load_clip(tmp_path / "grey.png").frames[0]
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()


def test_arrays_are_sampled_and_copied():
    video = np.stack([numbered_frame(i) for i in range(20)])
    clip = load_clip(video, max_frames=5, max_side=32)
    assert clip.frames.shape == (5, 24, 32, 3)
    assert [read_number(f) for f in clip.frames] == clip.indices == sample_indices(20, 5)
    assert (clip.kind, clip.source_frames, clip.fps, clip.name) == ("frames", 20, None, "<array>")
    image = numbered_frame(9)
    one = load_clip(image)
    image[:] = 0  # the clip does not share memory with its source
    assert (one.kind, one.frames.shape, read_number(one.frames[0])) == ("image", (1, H, W, 3), 9)


# errors --------------------------------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png_stub(width: int, height: int) -> bytes:
    """A PNG that declares its size but holds one row of pixels: only a size check can refuse it early."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", zlib.compress(bytes(1 + 3 * width)))


def test_missing_path(tmp_path):
    with pytest.raises(ClipError, match="'.*nope.mp4' was not found. Check the path"):
        load_clip(tmp_path / "nope.mp4")


def test_messages_name_the_file_never_the_folders_above_it():
    with pytest.raises(ClipError) as info:
        load_clip("/tmp/some/dir/x.mp4")
    assert "x.mp4" in str(info.value) and "/tmp/some/dir" not in str(info.value)


def test_a_device_or_pipe_is_not_a_video_rather_than_not_found(tmp_path):
    os.mkfifo(tmp_path / "pipe.mp4")
    for path in ("/dev/zero", tmp_path / "pipe.mp4"):
        with pytest.raises(ClipError, match="is not a video or image file .* Upload an mp4") as info:
            load_clip(path)
        assert "not found" not in str(info.value)


def test_folder_without_images(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClipError, match="Folder 'empty' holds no images"):
        load_clip(tmp_path / "empty")
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(ClipError, match="holds no images .* or upload the video itself"):
        load_clip(tmp_path / "empty")


def test_unsupported_extension(tmp_path):
    (tmp_path / "clip.txt").write_text("frames")
    with pytest.raises(ClipError, match=r"'clip.txt' has an unsupported type \('.txt'\); use one of .mp4"):
        load_clip(tmp_path / "clip.txt")


def test_file_size_is_checked_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(frames_module, "MAX_FILE_BYTES", 2**20)
    (tmp_path / "big.mp4").write_bytes(np.random.default_rng(0).bytes(3 * 2**19))  # garbage: never decoded
    with pytest.raises(ClipError, match=r"'big.mp4' is 1.5 MB; the limit is 1.0 MB. Trim or re-encode"):
        load_clip(tmp_path / "big.mp4")


def test_random_bytes_and_truncated_mp4_are_corrupt(tmp_path, mp4_80):
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    data = mp4_80.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    for name in ("noise.mp4", "cut.mp4"):
        with pytest.raises(ClipError, match=f"'{name}' could not be read as a video .corrupt or not a video: "
                                            ".*Upload an mp4, webm or gif turntable") as info:
            load_clip(tmp_path / name)
        assert info.value.__cause__ is not None  # the decoder's error is kept as the cause, never raised raw


def test_video_without_decodable_frames(tmp_path):
    data = write_mp4(tmp_path / "full.mp4", 10, faststart=True).read_bytes()
    (tmp_path / "header_only.mp4").write_bytes(data[: data.find(b"mdat") + 4])  # index, but no frame data
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc", "-t", "0.5",
                    str(tmp_path / "audio_only.mp4")], check=True)
    for name in ("header_only.mp4", "audio_only.mp4"):
        with pytest.raises(ClipError, match=f"'{name}' has no video frames that could be decoded"):
            load_clip(tmp_path / name)


def test_frames_of_different_sizes(tmp_path):
    paths = write_frames(tmp_path / "shots", [1, 2])
    Image.fromarray(numbered_frame(3, 32, 32)).save(tmp_path / "shots" / "frame3.png")
    with pytest.raises(ClipError, match="'frame3.png' is 32x32 but 'frame1.png' is 64x48; all frames must be"):
        load_clip(tmp_path / "shots")
    with pytest.raises(ClipError, match="all frames must be the same size"):
        load_clip([paths[0], tmp_path / "shots" / "frame3.png"])


def test_too_many_pixels_is_refused_before_decoding(tmp_path, mp4_80, monkeypatch):
    (tmp_path / "bomb.png").write_bytes(huge_png_stub(5000, 5000))  # 82 bytes on disk, 75 MB decoded
    with pytest.raises(ClipError, match=r"'bomb.png' has 5000x5000 frames .* the limit is 16.8 MP per frame"):
        load_clip(tmp_path / "bomb.png")
    monkeypatch.setattr(frames_module, "MAX_PIXELS", 1000)
    with pytest.raises(ClipError, match="'turn.mp4' has 64x48 frames"):
        load_clip(mp4_80)
    with pytest.raises(ClipError, match="'<array>' has 64x48 frames"):
        load_clip(numbered_frame(1))


def test_corrupt_image(tmp_path):
    (tmp_path / "face.png").write_bytes(b"not a png at all")
    with pytest.raises(ClipError, match="'face.png' could not be read as an image .corrupt or not an image"):
        load_clip(tmp_path / "face.png")


@pytest.mark.parametrize("array", [np.zeros((H, W, 3), np.float32), np.zeros((H, W), np.uint8),
                                   np.zeros((2, H, W, 4), np.uint8), np.zeros((1, 2, H, W, 3), np.uint8)])
def test_bad_array_shape_or_dtype(array):
    with pytest.raises(ClipError, match=r"must be uint8 with shape \(T, H, W, 3\) or \(H, W, 3\). Got"):
        load_clip(array)


def test_empty_inputs_and_wrong_types(tmp_path):
    with pytest.raises(ClipError, match="frames array is empty"):
        load_clip(np.zeros((0, H, W, 3), np.uint8))
    with pytest.raises(ClipError, match="list of frames is empty"):
        load_clip([])
    with pytest.raises(ClipError, match="Cannot read a clip from a int"):
        load_clip([1, 2])
    (tmp_path / "turn.mp4").write_bytes(b"x")
    with pytest.raises(ClipError, match="'turn.mp4' has an unsupported type"):  # lists hold images only
        load_clip([tmp_path / "turn.mp4"])


def test_clip_errors_are_facelab_value_errors_and_arguments_are_checked(mp4_80):
    assert issubclass(ClipError, FaceLabError) and issubclass(ClipError, ValueError)
    with pytest.raises(ValueError, match="max_frames >= 1"):
        load_clip(mp4_80, max_frames=0)
    with pytest.raises(ValueError, match="max_side >= 1"):
        load_clip(mp4_80, max_side=0)
