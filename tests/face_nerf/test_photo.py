"""Photo loading: modes, orientation, sizes and unreadable files."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from face_nerf.errors import PhotoError
from face_nerf.photo import MAX_FILE_BYTES, load_photo


def _encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "CMYK", "I;16", "1"])
def test_every_common_mode_becomes_rgb_uint8(mode):
    base = Image.new("RGB", (96, 80), (200, 120, 40)).convert(mode)
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    photo = load_photo(_encode(base, fmt))
    assert photo.rgb.shape == (80, 96, 3) and photo.rgb.dtype == np.uint8


def test_16_bit_greyscale_keeps_its_range():
    array = np.full((64, 64), 65535 // 2, dtype=np.uint16)
    photo = load_photo(_encode(Image.fromarray(array)))
    assert abs(int(photo.rgb[0, 0, 0]) - 128) <= 1


def test_transparency_is_kept_as_alpha_and_composited_on_grey():
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, 32:, 3] = 255
    photo = load_photo(_encode(Image.fromarray(rgba, "RGBA")))
    assert photo.alpha is not None and photo.alpha[0, 0] == 0 and photo.alpha[0, 40] == 1
    assert tuple(photo.rgb[0, 0]) == (128, 128, 128) and tuple(photo.rgb[0, 40]) == (255, 0, 0)


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (120, 80), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    photo = load_photo(_encode(image, "JPEG", exif=exif.tobytes()))
    assert photo.size == (80, 120)


def test_not_an_image_is_refused_with_the_fix():
    with pytest.raises(PhotoError, match="not an image.*JPEG, PNG or WebP"):
        load_photo(b"this is a text file, not a photo")


def test_truncated_file_is_refused(tmp_path):
    data = _encode(Image.new("RGB", (256, 256), (1, 2, 3)), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(PhotoError, match="damaged or truncated|not an image"):
        load_photo(path)


def test_missing_file(tmp_path):
    with pytest.raises(PhotoError, match="not found"):
        load_photo(tmp_path / "nope.jpg")


def test_huge_file_is_refused_before_decoding(tmp_path):
    path = tmp_path / "big.jpg"
    with open(path, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(PhotoError, match="limit is 30 MB"):
        load_photo(path)


def png_bomb(width: int, height: int) -> bytes:
    """A 1-bit PNG that declares ``width`` x ``height`` but holds one row: a few hundred bytes on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(bytes(1 + (width + 7) // 8))) + chunk(b"IEND", b"")


def test_png_bomb_is_refused_with_its_size_the_limit_and_the_fix(tmp_path):
    """30000 x 30000 is past Pillow's own bomb limit, which it refuses before we see the size."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb(30000, 30000))
    for source, name in ((path, "bomb.png"), (path.read_bytes(), "<bytes>")):
        with pytest.raises(PhotoError, match=rf"^{name} is 900 MP \(900000000 pixels\); the limit is 40 MP. "
                                             "Downscale the photo"):
            load_photo(source)


def test_image_between_our_limit_and_pillows_is_refused_with_its_dimensions():
    with pytest.raises(PhotoError, match=r"<bytes> is 10000x10000 \(100 MP\); the limit is 40 MP. Downscale"):
        load_photo(png_bomb(10000, 10000))


def test_messages_name_the_file_never_the_folders_above_it():
    with pytest.raises(PhotoError) as info:
        load_photo("/tmp/some/dir/x.jpg")
    assert "x.jpg" in str(info.value) and "/tmp/some/dir" not in str(info.value)


def test_a_device_pipe_or_folder_is_not_a_photo_rather_than_not_found(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    for path in ("/dev/zero", tmp_path / "pipe.jpg", tmp_path):
        with pytest.raises(PhotoError, match="is not a photo file .* Upload a JPEG, PNG or WebP photo") as info:
            load_photo(path)
        assert "not found" not in str(info.value)


def test_too_many_pixels_is_refused():
    with pytest.raises(PhotoError, match=r"MP\); the limit is 40 MP"):
        load_photo(_encode(Image.new("1", (8000, 6000))))


@pytest.mark.parametrize("size, message", [((40, 40), "at least 64"), ((2000, 100), "aspect ratio")])
def test_bad_shapes_are_refused(size, message):
    with pytest.raises(PhotoError, match=message):
        load_photo(np.zeros((size[1], size[0], 3), np.uint8))


def test_array_inputs():
    assert load_photo(np.full((70, 70), 0.5, np.float32)).rgb[0, 0, 0] == 128
    with pytest.raises(PhotoError, match=r"shape of \(H, W\)"):
        load_photo(np.zeros((70, 70, 2), np.uint8))
    with pytest.raises(PhotoError, match="NaN"):
        load_photo(np.full((70, 70, 3), np.nan, np.float32))
