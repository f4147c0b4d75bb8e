"""Loading a user's photo: any size, EXIF orientation, colour mode and aspect ratio, or a clear error."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from face_nerf.errors import PhotoError

MAX_FILE_BYTES = 30_000_000  # 30 MB: larger uploads are refused before decoding
MAX_PIXELS = 40_000_000  # 40 MP: larger images are refused (decompression-bomb guard)
MIN_SIDE = 64  # smaller photos cannot hold a detectable face
MAX_ASPECT = 8.0  # panoramas and strips are not portraits


@dataclass(frozen=True)
class Photo:
    """An RGB photo ready for analysis.

    Attributes:
        rgb: [H, W, 3] uint8, upright (EXIF orientation applied), sRGB.
        alpha: [H, W] float32 in [0, 1] when the file had transparency, else None.
        source: where it came from (path or "<array>"), for messages.
        sha256: of the file's bytes (of the RGB pixels for an array or PIL image): what the audit log keeps
            instead of the photo.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    source: str
    sha256: str = ""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.rgb.shape[1], self.rgb.shape[0]


def load_photo(source: str | os.PathLike | bytes | np.ndarray | Image.Image) -> Photo:
    """Read a photo from a path, bytes, a PIL image or an array.

    Args:
        source: file path, encoded bytes, PIL image, or array [H, W], [H, W, 3] or [H, W, 4]
            (uint8, uint16 or float in [0, 1]).

    Returns:
        The upright RGB photo (transparent areas composited on mid grey, alpha kept).

    Raises:
        PhotoError: unreadable, too large, too small, too elongated or of an unsupported mode.

    Example:
        >>> photo = load_photo("assets/examples/grace_hopper.jpg")
        >>> photo.size
        (512, 600)
    """
    if isinstance(source, (np.ndarray, Image.Image)):
        photo = _photo_from_array(source, "<array>") if isinstance(source, np.ndarray) else _photo_from_pil(source, "<image>")
        return dataclasses.replace(photo, sha256=hashlib.sha256(np.ascontiguousarray(photo.rgb).tobytes()).hexdigest())
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "<bytes>"
    else:
        path = Path(source)
        name = path.name
        _check_regular_file(path)
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PhotoError(
                f"{name} is {size / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB. "
                "Resize or re-save the photo as JPEG and try again."
            )
        data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise PhotoError(
            f"The photo is {len(data) / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB. "
            "Resize or re-save it as JPEG and try again."
        )
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        _check_pixels(image.size, name)  # before any pixel is decoded
        image.load()
    except Image.DecompressionBombError as err:  # Pillow refuses over ~179 MP before we see the size
        raise _too_many_pixels(name, _bomb_pixels(err)) from err
    except UnidentifiedImageError as err:
        raise PhotoError(
            f"{name} is not an image this app can read ({type(err).__name__}). "
            "Upload a JPEG, PNG or WebP photo."
        ) from err
    except OSError as err:
        raise PhotoError(f"{name} is damaged or truncated ({err}). Re-export the photo and try again.") from err
    return dataclasses.replace(_photo_from_pil(image, name), sha256=hashlib.sha256(data).hexdigest())


def _check_regular_file(path: Path) -> None:
    """Refuse a missing path, a folder or a device / pipe (e.g. /dev/zero); messages name the file only,
    never the folders above it (the web app shows them)."""
    if not path.exists():
        raise PhotoError(f"Photo not found: {path.name}. Check the path and try again.")
    if not path.is_file():
        raise PhotoError(f"{path.name} is not a photo file (it is a folder, device or pipe). "
                         "Upload a JPEG, PNG or WebP photo.")


def _check_pixels(size: tuple[int, int], name: str) -> None:
    w, h = size
    if w * h > MAX_PIXELS:
        raise _too_many_pixels(name, w * h, f"{w}x{h}")
    if min(w, h) < MIN_SIDE:
        raise PhotoError(f"{name} is only {w}x{h} pixels; use a photo at least {MIN_SIDE} pixels on each side.")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise PhotoError(
            f"{name} is {w}x{h}, an aspect ratio over {MAX_ASPECT:.0f}:1. Crop it around the face and try again."
        )


def _too_many_pixels(name: str, pixels: int | None, dimensions: str | None = None) -> PhotoError:
    """The error for a photo over ``MAX_PIXELS`` (``pixels`` None: Pillow's bomb limit, count unknown)."""
    if pixels is None:
        what = "larger than can be decoded safely"
    else:
        what = f"{dimensions} ({pixels / 1e6:.0f} MP)" if dimensions else f"{pixels / 1e6:.0f} MP ({pixels} pixels)"
    return PhotoError(
        f"{name} is {what}; the limit is {MAX_PIXELS / 1e6:.0f} MP. "
        "Downscale the photo (4000 pixels on the long side is plenty) and try again."
    )


def _bomb_pixels(err: Exception) -> int | None:
    """The pixel count in Pillow's DecompressionBombError ("Image size (N pixels) exceeds ..."), else None."""
    found = re.search(r"\((\d+) pixels\)", str(err))
    return int(found.group(1)) if found else None


def _photo_from_pil(image: Image.Image, name: str) -> Photo:
    _check_pixels(image.size, name)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image).astype(np.float32)
        scale = 65535.0 if array.max() > 255 else 255.0
        return _photo_from_array(np.clip(array / scale, 0.0, 1.0), name)
    if image.mode == "F":
        return _photo_from_array(np.asarray(image), name)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"))
        return _photo_from_array(rgba, name)
    try:
        rgb = image.convert("RGB")
    except (ValueError, OSError) as err:
        raise PhotoError(f"{name} uses colour mode {image.mode}, which cannot be converted to RGB.") from err
    return Photo(np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)), None, name)


def _photo_from_array(array: np.ndarray, name: str) -> Photo:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise PhotoError(f"Photo array must have a shape of (H, W), (H, W, 3) or (H, W, 4). Got {array.shape}.")
    _check_pixels((array.shape[1], array.shape[0]), name)
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        values = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise PhotoError("Photo array contains NaN or infinite values.")
        values = np.clip(array.astype(np.float32), 0.0, 1.0)
    else:
        raise PhotoError(f"Photo array must be uint8, uint16 or float. Got {array.dtype}.")
    if values.ndim == 2:
        values = values[..., None]
    alpha = None
    if values.shape[2] == 4:
        alpha = values[..., 3].copy()
        values = values[..., :3] * alpha[..., None] + 0.5 * (1.0 - alpha[..., None])
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    rgb = np.clip(np.round(values * 255.0), 0, 255).astype(np.uint8)
    return Photo(np.ascontiguousarray(rgb), alpha, name)
