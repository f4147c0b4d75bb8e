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

from face_nerf.lighting import SH_COEFFS, irradiance, irradiance_basis, rotate_sh, srgb_to_linear, to_display
from face_nerf.render import Camera, MarchSettings, Shader, render_rays


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
        n, h, w, _ = self.alpha.shape
        out = torch.zeros(n * h * w, 3)
        if fixed_to == "camera":
            lights = torch.stack([rotate_sh(light, r) for r in self.rotations])  # [N, 9, 3]
            view = torch.div(self.pixels, h * w, rounding_mode="floor")
            for i in range(n):
                sel = view == i
                out[self.pixels[sel]] = (self.coeffs[sel].float() * lights[i]).sum(1)
        elif fixed_to == "world":
            for part in torch.arange(self.pixels.numel()).split(1 << 18):  # bounded float32 temporaries
                out[self.pixels[part]] = (self.coeffs[part].float() * light).sum(1)
        else:
            raise ValueError(f"fixed_to must be 'world' or 'camera'. Got {fixed_to!r}.")
        return out.clamp(min=0.0).reshape(n, h, w, 3)

    def views(self, chosen: list[int]) -> "LightTransfer":
        """The transfer of some of its rendered views (indices into them), in that order: the strip's
        views taken from the turntable's instead of rendered again."""
        n, h, w, _ = self.alpha.shape
        view = torch.div(self.pixels, h * w, rounding_mode="floor")
        picked = [torch.nonzero(view == old).squeeze(-1) for old in chosen]
        pixels = torch.cat([self.pixels[sel] + (new - old) * h * w for new, (old, sel) in enumerate(zip(chosen, picked))])
        return LightTransfer(self.coeffs[torch.cat(picked)], pixels, self.alpha[chosen], self.rotations[chosen])

    def shade(self, light: Tensor, fixed_to: str = "world", background: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
        """[N, H, W, 3] uint8 sRGB views under the light, over an sRGB background colour."""
        bg = srgb_to_linear(torch.tensor(background))
        linear = self.radiance(light, fixed_to) + (1.0 - self.alpha) * bg
        views = to_uint8(to_display(linear))
        return views if self.order is None else views[self.order.numpy()]


def render_transfer(field, cameras: list[Camera], settings: MarchSettings = MarchSettings(), progress=None) -> LightTransfer:
    """Render the light transfer of views of one size; rays of several views go through the renderer
    together (fewer, larger batches). ``progress(n)`` is called as views finish."""
    h, w = cameras[0].height, cameras[0].width
    if any((c.height, c.width) != (h, w) for c in cameras):
        raise ValueError("All cameras of one transfer render must have the same image size.")
    per_batch = max(1, settings.chunk // (h * w))
    coeffs, pixels, alphas = [], [], []
    for start in range(0, len(cameras), per_batch):
        batch = cameras[start:start + per_batch]
        rays = [c.rays() for c in batch]
        out = render_rays(field, torch.cat([r[0] for r in rays]), torch.cat([r[1] for r in rays]), settings, transfer_shader)
        covered = torch.nonzero(out.alpha[:, 0] > 0).squeeze(-1)
        coeffs.append(out.rgb[covered].reshape(-1, SH_COEFFS, 3).half())
        pixels.append(covered + start * h * w)
        alphas.append(out.alpha.reshape(len(batch), h, w, 1))
        if progress is not None:
            progress(len(batch))
    rotations = torch.stack([c.c2w[:3, :3] for c in cameras])
    return LightTransfer(torch.cat(coeffs), torch.cat(pixels), torch.cat(alphas), rotations)


def to_uint8(values: Tensor) -> np.ndarray:
    """Values in [0, 1] -> uint8 array, rounded."""
    return (values.clamp(0.0, 1.0).numpy() * 255.0 + 0.5).astype(np.uint8)
