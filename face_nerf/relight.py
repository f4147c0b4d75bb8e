"""Relighting rendered views: Lambertian SH shading, deferred.

Lambertian shading of a surface sample is albedo * E(n), E the irradiance of the SH light at its normal
(``lighting.irradiance``). The renderer looks colour up once per ray, at its band's centroid
(``MarchSettings.colour_at="centroid"``), so a pixel's composited radiance is exactly
    alpha * albedo * max(E(n), 0)
of its opacity, albedo and normal: a render keeps those three per pixel (deferred shading's G-buffer,
``LightTransfer``), and any light then shades the views without rendering again. (With colour at every
sample, the kept albedo and normal are the band's composited ones: shading them is then a close
approximation of shading every sample.)

A grid field (the head field) renders its views straight into that buffer, and shading turns it into
display pixels, both as compiled kernels (``march_colour.py``); any other field, or a host without Warp, goes
through ``render.render_rays`` and the torch operations here, which the kernels are tested against.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from face_nerf.heap import trim_heap
from face_nerf.lighting import irradiance, rotate_sh, srgb_to_linear, to_display
from face_nerf.render import Camera, MarchSettings, kernel_runs_on, render_rays, renders_whole_rays


# Views of at least this many pixels hand their temporaries back after each batch (glibc would keep
# them between the kept results); smaller ones reuse them for the next batch (handing them back and
# faulting them in again made 256 px renders slower).
LARGE_VIEW = 512 * 512


class lambert_shader:
    """Per-sample shading albedo * E(n) under the SH light [9, 3] (irradiance clamped at 0): a ``Shader``
    whose ``light`` the compiled renderer reads, to shade each sample itself."""

    def __init__(self, light: Tensor):
        self.light = light

    def __call__(self, albedo: Tensor, normal: Tensor) -> Tensor:
        return albedo * irradiance(normal, self.light).clamp(min=0.0)


@dataclass
class LightTransfer:
    """N rendered views as deferred shading keeps them: what any light needs to shade them.

    Attributes:
        alpha: [N, H, W, 1] float32 opacity.
        albedo: [N, H, W, 3] float16 linear albedo, zero where no ray reaches the surface.
        normal: [N, H, W, 3] float16 unit normal, likewise.
        rotations: [N, 3, 3] camera-to-world rotation of each view (for lights fixed to the camera).
        order: [F] which view each output frame shows (frames may repeat views: a turntable sweeps
            through each yaw twice), or None for one frame per view.
    """

    alpha: Tensor
    albedo: Tensor
    normal: Tensor
    rotations: Tensor
    order: Tensor | None = None

    def lights(self, light: Tensor, fixed_to: str = "world") -> Tensor:
        """[N, 9, 3] each view's SH light. A world-fixed light is given in the world frame; a camera-fixed
        one in the frame of a camera with identity rotation (the input camera) and turns with each view."""
        if fixed_to not in ("world", "camera"):
            raise ValueError(f"fixed_to must be 'world' or 'camera'. Got {fixed_to!r}.")
        if fixed_to == "world":
            return light.expand(self.alpha.shape[0], *light.shape)
        return torch.stack([rotate_sh(light, rotation) for rotation in self.rotations])

    def radiance(self, light: Tensor, fixed_to: str = "world") -> Tensor:
        """[N, H, W, 3] premultiplied linear radiance under the SH light [9, 3] (see ``lights``)."""
        return torch.stack([self.view_radiance(i, light) for i, light in enumerate(self.lights(light, fixed_to))])

    def view_radiance(self, index: int, light: Tensor) -> Tensor:
        """[H, W, 3] premultiplied linear radiance of one view under its SH light [9, 3]."""
        albedo, normal = self.albedo[index].float(), self.normal[index].float()
        return (self.alpha[index] * albedo * irradiance(normal, light.to(normal.device))).clamp(min=0.0)

    def views(self, chosen: list[int]) -> "LightTransfer":
        """Some of its rendered views (indices into them), in that order: the strip's views taken from the
        turntable's instead of rendered again."""
        return LightTransfer(self.alpha[chosen], self.albedo[chosen], self.normal[chosen], self.rotations[chosen])

    def shade(self, light: Tensor, fixed_to: str = "world", background: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
        """[F, H, W, 3] uint8 sRGB frames under the light, over an sRGB background colour: each view shaded
        once, however many frames show it."""
        lights = self.lights(light, fixed_to)
        bg = srgb_to_linear(torch.tensor(background, dtype=torch.float32, device=self.alpha.device))
        if kernel_runs_on(self.alpha.device):
            from face_nerf.march_colour import shade_views

            views = shade_views(self.alpha, self.albedo, self.normal, lights, bg).cpu().numpy()
        else:  # one view's floats at a time: 1024 px views need 12 MB each
            views = np.stack([to_uint8(to_display(self.view_radiance(i, view_light) + (1.0 - self.alpha[i]) * bg))
                              for i, view_light in enumerate(lights)])
        if self.order is None:
            return views
        # Allocated by torch, which asks for huge pages for large blocks: on this project's VM a first write to
        # fresh memory costs a page fault a page, 35-40 us a 4 KB page through numpy (views[order], 151 MB at
        # 1024 px: 1.9-2.4 s); 0.06 s this way.
        frames = torch.empty(len(self.order), *views.shape[1:], dtype=torch.uint8).numpy()
        for frame, view in enumerate(self.order.tolist()):
            frames[frame] = views[view]
        return frames


def render_transfer(field, cameras: list[Camera], settings: MarchSettings = MarchSettings(), progress=None) -> LightTransfer:
    """Render views of one size into a ``LightTransfer``; ``progress(n)`` is called as views finish."""
    h, w = _image_size(cameras)
    n, device = len(cameras), field.bounds.device  # rendered where the field is
    cameras = [replace(c, c2w=c.c2w.to(device)) for c in cameras]
    alpha = torch.empty(n, h, w, 1, device=device)  # every pixel is written
    albedo = torch.empty(n, h, w, 3, dtype=torch.float16, device=device)
    normal = torch.empty_like(albedo)
    appearance = field.grid_appearance() if renders_whole_rays(field, settings, alpha.device) else None
    if appearance is not None:  # the compiled kernel, all views in one go
        _march_views(field, appearance, cameras, settings, alpha, albedo, normal, progress)
    else:
        per_batch = max(1, settings.chunk // (h * w))
        for start in range(0, n, per_batch):
            batch = cameras[start:start + per_batch]
            done = slice(start, start + len(batch))
            out = render_rays(field, *_batch_rays(batch), settings).reshape(len(batch), h, w)
            alpha[done] = out.alpha
            albedo[done] = (out.rgb / out.alpha.clamp(min=1e-12)).half()
            normal[done] = torch.nn.functional.normalize(out.normal, dim=-1).half()
            del out
            if h * w >= LARGE_VIEW:  # the batch's temporaries go back now instead of lying between the kept views
                trim_heap()
            if progress is not None:
                progress(len(batch))
    return LightTransfer(alpha, albedo, normal, torch.stack([c.c2w[:3, :3] for c in cameras]).cpu())


def _march_views(field, appearance, cameras: list[Camera], settings: MarchSettings, alpha: Tensor, albedo: Tensor,
                 normal: Tensor, progress) -> None:
    """``march_colour.march_views`` into the buffers, ``progress(n)`` called with each whole view's worth finished."""
    from face_nerf.march_colour import march_views

    reported = 0

    def finished(views: float) -> None:
        nonlocal reported
        if progress is not None and int(views) > reported:
            progress(int(views) - reported)
            reported = int(views)

    march_views(field.sdf_volume(), appearance, cameras, field.beta, settings, alpha, albedo, normal, finished)
    finished(len(cameras))  # a GPU launch reports nothing until it is done


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
    return (values.detach().clamp(0.0, 1.0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
