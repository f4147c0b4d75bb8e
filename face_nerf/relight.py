"""Relighting rendered views: Lambertian SH shading inside the volume renderer, and light transfer.

Shading is linear in the light, so a render can keep, per pixel, the composited light transfer
    T_kc = sum_i w_i albedo_ic A_l Y_k(n_i)          (9 x 3 numbers, k over SH coefficients)
and any SH light L [9, 3] then gives that pixel's radiance sum_k T_kc L_kc exactly: the per-sample
shading of the volume renderer, without rendering again ("precomputed radiance transfer" for
unshadowed diffuse surfaces). ``render_transfer`` renders it; ``LightTransfer.shade`` relights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from face_nerf.heap import trim_heap
from face_nerf.lighting import SH_COEFFS, irradiance, irradiance_basis, rotate_sh, srgb_to_linear, to_display
from face_nerf.render import Camera, MarchSettings, Shader, render_rays


# Views of at least this many pixels hand their temporaries back after each batch (glibc would keep
# them between the kept results: 2.65 GB held for 1.6 GB live at 1024 px); smaller ones reuse them for
# the next batch (handing them back and faulting them in again made 256 px renders slower).
LARGE_VIEW = 512 * 512


def lambert_shader(light: Tensor) -> Shader:
    """Per-sample shading albedo * E(n) under the SH light [9, 3] (irradiance clamped at 0)."""
    def shade(albedo: Tensor, normal: Tensor) -> Tensor:
        return albedo * irradiance(normal, light).clamp(min=0.0)
    return shade


def transfer_shader(albedo: Tensor, normal: Tensor) -> Tensor:
    """Per-sample light transfer [M, 27]: albedo_c * A_l Y_k(n), flattened (k major, then channel)."""
    return (irradiance_basis(normal)[:, :, None] * albedo[:, None, :]).reshape(albedo.shape[0], SH_COEFFS * 3)


@dataclass
class LightTransfer:
    """Light transfer of N rendered views, kept only for pixels the head covers.

    Attributes:
        coeffs: [M, 9, 3] float16 transfer of the covered pixels.
        pixels: [M] their flat index into N * H * W.
        alpha: [N, H, W, 1] opacity.
        rotations: [N, 3, 3] camera-to-world rotation of each view (for lights fixed to the camera).
        order: [F] which view each output frame shows (frames may repeat views: a turntable sweeps
            through each yaw twice), or None for one frame per view.
    """

    coeffs: Tensor
    pixels: Tensor
    alpha: Tensor
    rotations: Tensor
    order: Tensor | None = None

    def radiance(self, light: Tensor, fixed_to: str = "world") -> Tensor:
        """[N, H, W, 3] premultiplied linear radiance under the SH light [9, 3].

        A world-fixed light is given in the world frame; a camera-fixed one in the frame of a camera
        with identity rotation (the input camera) and turns with each view.
        """
        return torch.stack([self.view_radiance(i, light, fixed_to) for i in range(self.alpha.shape[0])])

    def view_radiance(self, index: int, light: Tensor, fixed_to: str = "world") -> Tensor:
        """[H, W, 3] premultiplied linear radiance of one view (see ``radiance``)."""
        if fixed_to not in ("world", "camera"):
            raise ValueError(f"fixed_to must be 'world' or 'camera'. Got {fixed_to!r}.")
        _, h, w, _ = self.alpha.shape
        if fixed_to == "camera":
            light = rotate_sh(light, self.rotations[index])
        lo, hi = self._view_bounds()[index:index + 2].tolist()
        out = torch.zeros(h * w, 3)
        out[self.pixels[lo:hi] - index * h * w] = (self.coeffs[lo:hi].float() * light).sum(1)
        return out.clamp(min=0.0).reshape(h, w, 3)

    def _view_bounds(self) -> Tensor:
        """[N + 1]: where each view's pixels start in ``pixels`` (sorted by view, as rendered)."""
        n, h, w, _ = self.alpha.shape
        return torch.searchsorted(self.pixels, torch.arange(n + 1, dtype=self.pixels.dtype) * (h * w))

    def views(self, chosen: list[int]) -> "LightTransfer":
        """The transfer of some of its rendered views (indices into them), in that order: the strip's
        views taken from the turntable's instead of rendered again."""
        n, h, w, _ = self.alpha.shape
        view = torch.div(self.pixels, h * w, rounding_mode="floor")
        picked = [torch.nonzero(view == old).squeeze(-1) for old in chosen]
        pixels = torch.cat([self.pixels[sel] + (new - old) * h * w for new, (old, sel) in enumerate(zip(chosen, picked))])
        return LightTransfer(self.coeffs[torch.cat(picked)], pixels, self.alpha[chosen], self.rotations[chosen])

    def shade(self, light: Tensor, fixed_to: str = "world", background: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
        """[N, H, W, 3] uint8 sRGB views under the light, over an sRGB background colour: one view at a time
        (float temporaries of one view, not of all: 1024 px views need 12 MB each)."""
        n, h, w, _ = self.alpha.shape
        bg = srgb_to_linear(torch.tensor(background))
        views = np.empty((n, h, w, 3), np.uint8)
        for i in range(n):
            views[i] = to_uint8(to_display(self.view_radiance(i, light, fixed_to) + (1.0 - self.alpha[i]) * bg))
        return views if self.order is None else views[self.order.numpy()]


def render_transfer(field, cameras: list[Camera], settings: MarchSettings = MarchSettings(), progress=None) -> LightTransfer:
    """Render the light transfer of views of one size; rays of several views go through the renderer
    together (fewer, larger batches). ``progress(n)`` is called as views finish."""
    h, w = _image_size(cameras)
    per_batch = max(1, settings.chunk // (h * w))
    coeffs, pixels, alphas = [], [], []
    for start in range(0, len(cameras), per_batch):
        batch = cameras[start:start + per_batch]
        out = render_rays(field, *_batch_rays(batch), settings, transfer_shader)
        covered = torch.nonzero(out.alpha[:, 0] > 0).squeeze(-1)
        coeffs.append(out.rgb[covered].reshape(-1, SH_COEFFS, 3).half())
        pixels.append(covered + start * h * w)
        alphas.append(out.alpha.reshape(len(batch), h, w, 1).clone())
        del out
        if h * w >= LARGE_VIEW:  # the batch's temporaries go back now instead of lying between the kept transfers
            trim_heap()
        if progress is not None:
            progress(len(batch))
    rotations = torch.stack([c.c2w[:3, :3] for c in cameras])
    return LightTransfer(torch.cat(coeffs), torch.cat(pixels), torch.cat(alphas), rotations)


def render_lit(field, cameras: list[Camera], light: Tensor, fixed_to: str = "world",
               background: tuple[float, float, float] = (0.0, 0.0, 0.0), settings: MarchSettings = MarchSettings(),
               progress=None) -> np.ndarray:
    """[N, H, W, 3] uint8 sRGB views lit by the SH light [9, 3], shaded per sample as they are rendered:
    what ``render_transfer(...).shade(light)`` gives, without the 27 channels of light transfer (for
    renders that will not be relit). One view's floats at a time; ``progress(n)`` as views finish."""
    if fixed_to not in ("world", "camera"):
        raise ValueError(f"fixed_to must be 'world' or 'camera'. Got {fixed_to!r}.")
    h, w = _image_size(cameras)
    bg = srgb_to_linear(torch.tensor(background))
    views = np.empty((len(cameras), h, w, 3), np.uint8)
    # A camera-fixed light turns with each view: one view per batch; a world-fixed one: several.
    per_batch = 1 if fixed_to == "camera" else max(1, settings.chunk // (h * w))
    for start in range(0, len(cameras), per_batch):
        batch = cameras[start:start + per_batch]
        lit = light if fixed_to == "world" else rotate_sh(light, batch[0].c2w[:3, :3])
        out = render_rays(field, *_batch_rays(batch), settings, lambert_shader(lit))
        linear = out.rgb.reshape(len(batch), h, w, 3) + (1.0 - out.alpha.reshape(len(batch), h, w, 1)) * bg
        views[start:start + len(batch)] = to_uint8(to_display(linear))
        del out, linear
        if h * w >= LARGE_VIEW:
            trim_heap()
        if progress is not None:
            progress(len(batch))
    return views


def _image_size(cameras: list[Camera]) -> tuple[int, int]:
    """(H, W) of cameras rendered together.

    Raises:
        ValueError: they differ in size.
    """
    h, w = cameras[0].height, cameras[0].width
    if any((c.height, c.width) != (h, w) for c in cameras):
        raise ValueError("All cameras of one render must have the same image size.")
    return h, w


def _batch_rays(cameras: list[Camera]) -> tuple[Tensor, Tensor]:
    """The rays of several cameras, one after the other: (origins [R, 3], dirs [R, 3])."""
    rays = [c.rays() for c in cameras]
    return torch.cat([r[0] for r in rays]), torch.cat([r[1] for r in rays])


def to_uint8(values: Tensor) -> np.ndarray:
    """Values in [0, 1] -> uint8 array, rounded."""
    return (values.clamp(0.0, 1.0).numpy() * 255.0 + 0.5).astype(np.uint8)
