"""An invisible watermark in every image FaceLab 3D renders, and its detection.

The payload is a creation's id: 48 bits plus a 16-bit CRC, 64 bits in all. It is spread over a 64 px
tile that repeats across the image, added to the luma of every pixel at about 2 grey levels RMS
(PSNR ~ 42 dB). The tile is smooth (a 16 x 16 grid of cells, 4 px each, interpolated), so it lives in
the frequencies that video coding, JPEG and downscaling keep. Its 65 patterns (one for alignment, one
per bit) are orthogonal Walsh-Hadamard vectors with their cells shuffled and their signs scrambled.

Why not ``invisible-watermark``'s DWT-DCT (what Stable Diffusion ships): it embeds in fixed 4 px blocks
at the image's own grid, so a crop or a resize loses it, and the package pulls ``opencv-python``, which
clashes with the ``opencv-contrib-python`` that mediapipe brings.

Detection needs neither the original nor the id:
1. the luma's residual (the image minus its blur, clipped) keeps the watermark and drops most of the
   picture; each pixel is weighted down where the picture itself is busy (edges, hair);
2. the residual is folded modulo the tile (every tile averaged into one), over every frame of a video,
   so the watermark adds up coherently while the picture averages out;
3. circular cross-correlations with the 65 patterns give, for every shift of the tile (a crop only
   shifts it), the least-squares weight of each; the shift where their energy stands out is where the
   tile starts, and how far it stands out (robust deviations over all 4096 shifts) is the score;
4. the bits are the signs of the 64 payload weights there; the alignment weight must be positive and
   the CRC must hold.
A resize changes the tile's period: detection tries the likely scales, and ``thorough`` sweeps the rest.
A picture nobody marked scores below 7 (measured on ../shared/realworld at every scale); reporting one
needs a score of 8, the alignment's sign (1 in 2) and the CRC to hold by chance (22 in 65,536, as up to
two weak bits may be corrected).
"""

from __future__ import annotations

import binascii
import secrets
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

TILE = 64  # px: the watermark's period
CELL = 4  # px per cell of the 16 x 16 grid the patterns are drawn on
ID_BITS = 48
PAYLOAD_BITS = ID_BITS + 16  # the id, then its CRC-16 (CCITT)
STRENGTH = 2.0  # luma RMS of the watermark, in grey levels of 255
SEED = 0x46414345  # the patterns' seed ("FACE"): public, so anyone can verify
THRESHOLD = 8.0  # the payload's energy at the best shift, in robust deviations over all shifts (unmarked: < 5)
BLUR_SIGMA = 4.0  # px: the residual is the luma minus this blur
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
MAX_SIDE = 512  # px at the marked scale: detection reads at most the central 512 x 512 of a frame (64 tiles)
WEAKEST = 6  # bits the reader may correct (at most two of them)
SWEEP_FRAMES = 8  # frames of a video the thorough scale sweep reads
LIKELY_SCALES = (1.0, 0.5, 0.75, 2 / 3, 0.8, 0.9, 0.6, 0.4, 1 / 3, 0.25, 1.25, 1.5, 2.0)


@dataclass(frozen=True)
class Detection:
    """What ``detect`` found in an image or video."""

    found: bool
    creation_id: str | None  # 12 hex digits, when found
    score: float  # how far the payload's energy at the best shift stands out (robust deviations; found: >= THRESHOLD)
    bits: np.ndarray | None  # [64] the bits read at the best alignment (0/1), even when the CRC failed
    scale: float  # the size of the image relative to the marked one
    offset: tuple[int, int]  # where the tile starts (rows, columns), modulo TILE


def new_creation_id() -> str:
    """A random id for one creation (48 bits, 12 hex digits)."""
    return secrets.token_hex(ID_BITS // 8)


def payload_bits(creation_id: str) -> np.ndarray:
    """The 64 bits (0/1) that carry ``creation_id``: its 6 bytes and their CRC-16.

    Raises:
        ValueError: the id is not 12 hex digits.
    """
    try:
        data = bytes.fromhex(creation_id)
    except ValueError:
        data = b""
    if len(data) != ID_BITS // 8:
        raise ValueError(f"A creation id must be {ID_BITS // 4} hex digits. Got {creation_id!r}")
    crc = binascii.crc_hqx(data, 0).to_bytes(2, "big")
    return np.unpackbits(np.frombuffer(data + crc, np.uint8))


def id_from_bits(bits: np.ndarray) -> str | None:
    """The creation id the 64 bits carry, or None when their CRC does not hold."""
    data = np.packbits(np.asarray(bits, np.uint8)).tobytes()
    if binascii.crc_hqx(data[:-2], 0).to_bytes(2, "big") != data[-2:]:
        return None
    return data[:-2].hex()


@lru_cache(maxsize=1)
def _patterns() -> np.ndarray:
    """[65, TILE, TILE] float32: the alignment pattern, then one per payload bit, each of unit RMS."""
    side = TILE // CELL
    n = side * side
    hadamard = np.ones((1, 1), np.float32)
    while hadamard.shape[0] < n:
        hadamard = np.block([[hadamard, hadamard], [hadamard, -hadamard]])
    rng = np.random.default_rng(SEED)
    rows = rng.choice(np.arange(1, n), PAYLOAD_BITS + 1, replace=False)  # not the constant row
    cells = hadamard[rows][:, rng.permutation(n)] * rng.choice([-1.0, 1.0], n)
    grids = cells.reshape(-1, side, side)
    tiles = np.stack([_smooth_upsample(g) for g in grids])
    tiles = _drop_block_periods(tiles)
    tiles /= np.sqrt((tiles ** 2).mean(axis=(1, 2), keepdims=True))
    return tiles.astype(np.float32)


def _smooth_upsample(grid: np.ndarray) -> np.ndarray:
    """A periodic cell grid -> a TILE x TILE tile, by cubic interpolation in the Fourier domain (band-limited,
    so the watermark has no edges a codec would spend bits on or a viewer would see)."""
    side = grid.shape[0]
    spectrum = np.fft.fftshift(np.fft.fft2(grid))
    padded = np.zeros((TILE, TILE), complex)
    start = (TILE - side) // 2
    padded[start:start + side, start:start + side] = spectrum
    return np.real(np.fft.ifft2(np.fft.ifftshift(padded))) * (TILE / side) ** 2


def _drop_block_periods(tiles: np.ndarray) -> np.ndarray:
    """Remove every component that repeats every 16 px (codecs' 8 and 16 px blocks leave such patterns in
    any picture; the watermark must not correlate with them)."""
    spectrum = np.fft.fft2(tiles)
    k = np.arange(TILE)
    block = (k[:, None] % (TILE // 16) == 0) & (k[None, :] % (TILE // 16) == 0)
    spectrum[:, block] = 0
    return np.real(np.fft.ifft2(spectrum))


def watermark_tile(creation_id: str) -> np.ndarray:
    """[TILE, TILE] float32: the luma offsets (grey levels) that carry ``creation_id``."""
    patterns = _patterns()
    signs = payload_bits(creation_id).astype(np.float32) * 2 - 1
    tile = patterns[0] + np.tensordot(signs, patterns[1:], axes=1) / np.sqrt(PAYLOAD_BITS)
    return (tile * (STRENGTH / np.sqrt((tile ** 2).mean()))).astype(np.float32)


def embed(images: np.ndarray, creation_id: str) -> np.ndarray:
    """Mark uint8 images with ``creation_id``.

    Args:
        images: [..., H, W, C] uint8, C = 3 (RGB) or 4 (RGBA: alpha is kept).

    Returns:
        The marked images, same shape and dtype (a new array).

    Raises:
        ValueError: not uint8 [..., H, W, 3 or 4], or the id is not 12 hex digits.
    """
    if images.dtype != np.uint8 or images.ndim < 3 or images.shape[-1] not in (3, 4):
        raise ValueError(f"Input must be uint8 of shape (*, H, W, 3 or 4). Got {images.dtype} {images.shape}")
    import cv2

    height, width, channels = images.shape[-3:]
    offsets = np.rint(np.tile(watermark_tile(creation_id), (-(-height // TILE), -(-width // TILE)))[:height, :width])
    raise_by = np.repeat(np.clip(offsets, 0, 255).astype(np.uint8)[:, :, None], channels, axis=2)
    lower_by = np.repeat(np.clip(-offsets, 0, 255).astype(np.uint8)[:, :, None], channels, axis=2)
    if channels == 4:  # alpha kept
        raise_by[..., 3] = lower_by[..., 3] = 0
    # Saturating uint8 arithmetic (OpenCV), frame by frame: exact (round(pixel + offset), clipped) and no
    # float copy of a whole video.
    flat = images.reshape(-1, height, width * channels)
    marked = np.empty_like(flat)
    raise_by, lower_by = raise_by.reshape(height, -1), lower_by.reshape(height, -1)
    for i, frame in enumerate(flat):
        cv2.subtract(cv2.add(frame, raise_by), lower_by, dst=marked[i])
    return marked.reshape(images.shape)


def detect(images: np.ndarray, thorough: bool = False, max_frames: int = 16,
           scales: tuple[float, ...] = LIKELY_SCALES) -> Detection:
    """Look for a FaceLab 3D watermark in images or a video's frames.

    Args:
        images: [H, W], [H, W, C] or [F, H, W, C] uint8 (C = 1, 3 or 4; frames of one video are read
            together, so the evidence of every frame adds up).
        thorough: after the likely scales, sweep every scale from 0.2 to 2.5 in 1% steps (seconds).
        max_frames: read at most this many frames, evenly spaced.
        scales: the sizes relative to the marked one tried first (all that is tried unless ``thorough``).

    Returns:
        The best detection: ``found`` only when its score passes ``THRESHOLD``, the alignment pattern's
        weight is positive and the CRC holds.

    Raises:
        ValueError: not an image array.
    """
    luma = _luma(images)
    if luma.shape[0] > max_frames:
        luma = luma[np.linspace(0, luma.shape[0] - 1, max_frames).round().astype(int)]
    best = Detection(False, None, 0.0, None, 1.0, (0, 0))
    sweep = [s for s in np.exp(np.arange(np.log(0.2), np.log(2.5), 0.01)) if min(abs(s - t) for t in scales) > 0.003]
    # The sweep reads a few frames; a find there is read again from them all.
    few = luma[np.linspace(0, len(luma) - 1, min(len(luma), SWEEP_FRAMES)).round().astype(int)]
    for scale, frames in [(s, luma) for s in scales] + [(s, few) for s in (sweep if thorough else [])]:
        if min(luma.shape[1:]) / scale < TILE / 2 or min(luma.shape[1:]) < 16:
            continue
        found = _detect_at(frames, scale)
        if found.found and frames is few and len(few) < len(luma):
            found = max(found, _detect_at(luma, scale), key=lambda d: (d.found, d.score))
        if found.found:
            return found
        if found.score > best.score:
            best = found
    return best


def _luma(images: np.ndarray) -> np.ndarray:
    """[F, H, W] float32 luma of any image layout ``detect`` takes."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (2, 3, 4):
        raise ValueError(f"Input must be uint8 of shape (H, W), (H, W, C) or (F, H, W, C). Got {images.dtype} {images.shape}")
    if images.ndim == 2 or (images.ndim == 3 and images.shape[-1] not in (1, 3, 4)):
        images = images[..., None]  # [H, W] or [F, H, W] grey
    if images.ndim == 3:
        images = images[None]
    if images.shape[-1] == 1:
        return images[..., 0].astype(np.float32)
    return images[..., :3].astype(np.float32) @ _LUMA


def _detect_at(luma: np.ndarray, scale: float) -> Detection:
    """Fold, align and read the payload assuming the frames are ``scale`` times the marked size."""
    import cv2

    tile_sum = np.zeros(TILE * TILE, np.float64)
    weights = np.zeros(TILE * TILE, np.float64)
    for frame in luma:
        frame = _centre(frame, int(np.ceil(MAX_SIDE * scale)))  # enough tiles; a large photo costs no more
        if abs(scale - 1) > 1e-6:
            size = (max(round(frame.shape[1] / scale), 1), max(round(frame.shape[0] / scale), 1))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC if scale < 1 else cv2.INTER_AREA)
        residual, weight = _residual(frame)
        index = _fold_index(*residual.shape)
        tile_sum += np.bincount(index, (residual * weight).ravel(), TILE * TILE)
        weights += np.bincount(index, weight.ravel(), TILE * TILE)
    tile = np.where(weights > 0, tile_sum / np.maximum(weights, 1e-12), 0.0).reshape(TILE, TILE)
    coefficients = _coefficients_at_every_shift(_drop_block_periods(tile[None])[0])  # [65, TILE * TILE]
    energy = (coefficients ** 2).sum(axis=0)
    best = int(np.argmax(energy))
    median = np.median(energy)
    score = float((energy[best] - median) / (1.4826 * np.median(np.abs(energy - median)) + 1e-12))
    bits = (coefficients[1:, best] > 0).astype(np.uint8)
    creation_id = _read_id(bits, np.abs(coefficients[1:, best])) if score >= THRESHOLD and coefficients[0, best] > 0 else None
    dy, dx = divmod(best, TILE)
    return Detection(creation_id is not None, creation_id, score, bits, float(scale), (int(-dy % TILE), int(-dx % TILE)))


def _read_id(bits: np.ndarray, confidence: np.ndarray) -> str | None:
    """The id the bits carry, correcting up to two of the ``WEAKEST`` least confident bits when the CRC
    fails (a heavy crop can leave one bit wrong; each try costs the CRC a factor, 22 tries in all)."""
    from itertools import combinations

    weakest = np.argsort(confidence)[:WEAKEST]
    for flips in [()] + [c for k in (1, 2) for c in combinations(weakest, k)]:
        trial = bits.copy()
        trial[list(flips)] ^= 1
        creation_id = id_from_bits(trial)
        if creation_id is not None:
            return creation_id
    return None


def _residual(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The luma minus its blur, clipped, and each pixel's weight: low where the picture itself is busy
    (edges, hair), so the picture's own detail does not drown the watermark."""
    import cv2

    residual = luma - cv2.GaussianBlur(luma, (0, 0), BLUR_SIGMA)
    busy = cv2.GaussianBlur(residual * residual, (0, 0), BLUR_SIGMA)
    return np.clip(residual, -4 * STRENGTH, 4 * STRENGTH), 1.0 / (busy + STRENGTH ** 2)


def _coefficients_at_every_shift(tile: np.ndarray) -> np.ndarray:
    """[65, TILE * TILE]: the least-squares weight of every pattern in ``tile`` rolled by every shift
    (row-major shift index), from circular cross-correlations."""
    patterns = _patterns()
    correlations = np.real(np.fft.ifft2(np.fft.fft2(tile)[None] * np.conj(np.fft.fft2(patterns))))
    return _gram_inverse() @ correlations.reshape(len(patterns), -1)


@lru_cache(maxsize=1)
def _gram_inverse() -> np.ndarray:
    flat = _patterns().reshape(PAYLOAD_BITS + 1, -1).astype(np.float64)
    return np.linalg.inv(flat @ flat.T)


def _centre(frame: np.ndarray, side: int) -> np.ndarray:
    """The central ``side`` x ``side`` part of a frame (all of it where it is smaller)."""
    top, left = max((frame.shape[0] - side) // 2, 0), max((frame.shape[1] - side) // 2, 0)
    return frame[top:top + side, left:left + side]


@lru_cache(maxsize=8)
def _fold_index(height: int, width: int) -> np.ndarray:
    """[H * W] int: each pixel's place in the tile (row-major)."""
    rows = np.arange(height) % TILE
    cols = np.arange(width) % TILE
    return (rows[:, None] * TILE + cols[None, :]).ravel()
