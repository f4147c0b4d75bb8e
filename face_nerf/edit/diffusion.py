"""The diffusion-guided editor: Stable Diffusion score distillation (SDS) on the field's albedo.

Random views within +-0.2 rad of the input view are rendered from the field; each step adds noise to
the render's latent at a random timestep t ~ U[0.02, 0.98], asks the UNet for the noise with and
without the prompt (classifier-free guidance, scale 100), and pushes the render along
w(t) (eps_guided - eps), w(t) = 1 - alpha_bar_t, without backpropagating through the UNet (Poole et al.).
An input-view reconstruction loss keeps the photo, and an identity loss keeps the albedo at the face's
landmarks; edits can be confined to the semantic regions the prompt names.

What is optimised: a residual on the field's two albedo textures (the photo texture and the spherical
fill), so the result is a field like any other and relighting, export and the judge work unchanged.
diffusers and transformers are imported only when this editor is used.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from face_nerf.edit.base import AppliedEdit, EditResult
from face_nerf.errors import FaceLabError
from face_nerf.field import HeadField

BACKEND = "diffusion-editor"
MODEL_ENV = "FACELAB_SD_MODEL"  # hub id or local folder of a Stable Diffusion checkpoint
REGION_WORDS = {"lips": ("lips",), "lipstick": ("lips",), "mouth": ("lips", "mouth"), "eyes": ("irises",),
                "iris": ("irises",), "hair": ("hair",), "beard": ("beard", "chin", "moustache"),
                "eyebrows": ("eyebrows",), "skin": ("skin", "forehead", "cheeks", "nose", "chin")}


@dataclass(frozen=True)
class SDSConfig:
    """Score distillation settings.

    Attributes:
        steps: optimisation steps.
        guidance: classifier-free guidance scale (the published editor uses 100).
        lr: Adam learning rate on the albedo residual.
        t_range: timesteps drawn uniformly from this fraction of the schedule.
        max_angle: random views within +-max_angle radians of the input view (yaw and pitch).
        size: render size in pixels (the VAE sees it resized to ``latent_size`` * 8).
        latent_size: latent resolution (64 for SD 2.1-base at 512 px).
        reconstruction_weight: L2 between the input view as edited and as it was (the photo), at a
            quarter of ``size``.
        identity_weight: L2 on the albedo change at the landmarks.
        regions_only: confine the change to the regions the prompt names (when it names any).
        views: size of the bank of random views; the geometry does not change during an albedo edit,
            so where each view's rays meet the surface is found once per view, and each step only
            shades a view of the bank (much cheaper than tracing rays again).
    """

    steps: int = 300
    guidance: float = 100.0
    lr: float = 0.02
    t_range: tuple[float, float] = (0.02, 0.98)
    max_angle: float = 0.2
    size: int = 256
    latent_size: int = 64
    reconstruction_weight: float = 1.0
    identity_weight: float = 0.1
    regions_only: bool = True
    views: int = 64


@dataclass
class Diffusion:
    """The Stable Diffusion parts SDS needs."""

    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    scheduler: object


def load_diffusion(model: str, device: str | torch.device, dtype: torch.dtype) -> Diffusion:
    """Load a Stable Diffusion checkpoint's UNet, VAE, text encoder, tokenizer and scheduler (a hub id
    or a local folder in the diffusers layout)."""
    try:
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer
    except ImportError as err:
        raise FaceLabError("The diffusion editor needs diffusers and transformers: pip install diffusers transformers.") from err
    try:
        parts = Diffusion(
            UNet2DConditionModel.from_pretrained(model, subfolder="unet", torch_dtype=dtype),
            AutoencoderKL.from_pretrained(model, subfolder="vae", torch_dtype=dtype),
            CLIPTextModel.from_pretrained(model, subfolder="text_encoder", torch_dtype=dtype),
            CLIPTokenizer.from_pretrained(model, subfolder="tokenizer"),
            DDPMScheduler.from_pretrained(model, subfolder="scheduler"))
    except (OSError, ValueError) as err:
        raise FaceLabError(f"Could not load Stable Diffusion from {model!r} ({err}). Give a local folder in the "
                           f"diffusers layout or a hub id reachable from here (--sd-model or ${MODEL_ENV}).") from err
    for module in (parts.unet, parts.vae, parts.text_encoder):
        module.to(device).requires_grad_(False).eval()
    return parts


class DiffusionEditor:
    """Edits a field by SDS with Stable Diffusion (see the module docstring).

    Example:
        >>> editor = DiffusionEditor("stabilityai/stable-diffusion-2-1-base")  # doctest: +SKIP
        >>> result = editor.edit(field, "marble statue", seed=0)  # doctest: +SKIP
    """

    name = BACKEND

    def __init__(self, model: str | None = None, config: SDSConfig = SDSConfig(), device: str | None = None,
                 allow_cpu: bool = False):
        self.model = model or os.environ.get(MODEL_ENV)
        if not self.model:
            raise FaceLabError(f"No Stable Diffusion model configured: pass --sd-model or set ${MODEL_ENV}.")
        self.config = config
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.type != "cuda" and not allow_cpu:
            raise FaceLabError("The diffusion editor needs a GPU (a 300-step edit would take about an hour on this "
                               "CPU); use the embedded editor, or run on a machine with CUDA.")
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self._parts: Diffusion | None = None

    @property
    def parts(self) -> Diffusion:
        if self._parts is None:
            self._parts = load_diffusion(self.model, self.device, self.dtype)
        return self._parts

    def estimate_seconds(self) -> float:
        """Rough time of an edit: ~0.1 s a step on an H100/H200 at the default sizes, 10 s on a CPU."""
        return self.config.steps * (0.1 if self.device.type == "cuda" else 10.0)

    def edit(self, field: HeadField, prompt: str, seed: int = 0,
             progress: Callable[[int, float], None] | None = None) -> EditResult:
        prompt = (prompt or "").strip()
        if not prompt:
            return EditResult(field, [], self.name)
        start = time.perf_counter()
        edited, losses = distil(field, prompt, self.parts, self.config, seed, self.device, self.dtype, progress)
        applied = [AppliedEdit("appearance", f"guided by {prompt!r}", 1.0, prompt,
                               f"SDS, {self.config.steps} steps, guidance {self.config.guidance:g}")]
        return EditResult(edited, applied, self.name, {"edit": round(time.perf_counter() - start, 3),
                                                       "final_sds": round(losses[-1], 6) if losses else 0.0})


def prompt_regions(prompt: str) -> tuple[str, ...]:
    """Semantic regions a prompt names ("red lips" -> lips), empty when it names none."""
    words = prompt.lower().replace(",", " ").split()
    return tuple(dict.fromkeys(r for w in words for r in REGION_WORDS.get(w, ())))


def text_embeddings(parts: Diffusion, prompt: str, device, dtype) -> Tensor:
    """[2, L, D]: the empty prompt's and the prompt's embeddings."""
    tokens = parts.tokenizer(["", prompt], padding="max_length", max_length=parts.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(device)
    with torch.no_grad():
        return parts.text_encoder(tokens)[0].to(dtype)


def sds_loss(parts: Diffusion, image: Tensor, embeddings: Tensor, config: SDSConfig, generator: torch.Generator
             ) -> Tensor:
    """Score distillation loss of a render image [1, 3, H, W] in [0, 1]: its gradient w.r.t. the
    image's latent is w(t) (eps_guided - eps), the UNet not differentiated."""
    vae, unet, scheduler = parts.vae, parts.unet, parts.scheduler
    size = config.latent_size * 8
    x = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False) * 2 - 1
    latents = vae.encode(x.to(vae.dtype)).latent_dist.sample(generator) * vae.config.scaling_factor
    steps = scheduler.config.num_train_timesteps
    low, high = int(config.t_range[0] * steps), int(config.t_range[1] * steps)
    t = torch.randint(low, high + 1, (1,), generator=generator, device=generator.device).to(latents.device)
    noise = torch.randn(latents.shape, generator=generator, device=generator.device).to(latents.device, latents.dtype)
    with torch.no_grad():
        noisy = scheduler.add_noise(latents, noise, t)
        eps = unet(torch.cat([noisy] * 2), torch.cat([t] * 2), encoder_hidden_states=embeddings).sample
        uncond, cond = eps.chunk(2)
        guided = uncond + config.guidance * (cond - uncond)
    alpha_bar = scheduler.alphas_cumprod.to(latents.device)[t].to(latents.dtype)
    grad = torch.nan_to_num((1 - alpha_bar) * (guided - noise))
    target = (latents - grad).detach()
    return 0.5 * F.mse_loss(latents.float(), target.float(), reduction="sum")  # d/dlatents = grad


def distil(field: HeadField, prompt: str, parts: Diffusion, config: SDSConfig, seed: int, device, dtype,
           progress=None, embeddings: Tensor | None = None) -> tuple[HeadField, list[float]]:
    """Optimise albedo residuals of ``field`` by SDS; returns the edited field and the SDS losses.
    ``embeddings`` [2, L, D] (empty prompt, prompt) replace the text encoder's when given."""
    from face_nerf.export import framing, turntable_axis
    from face_nerf.render import MarchSettings, composite, orbit_camera, surface_band

    generator = torch.Generator(device=device).manual_seed(seed)
    cpu = torch.Generator().manual_seed(seed)
    original = field
    field = field.to(device)  # render where the diffusion model runs
    embeddings = text_embeddings(parts, prompt, device, dtype) if embeddings is None else embeddings
    photo_delta = torch.zeros_like(field.photo, requires_grad=True)
    fill_delta = torch.zeros_like(field.fill, requires_grad=True)
    mask_photo, mask_fill = (m.to(device) for m in _region_masks(original, prompt_regions(prompt) if config.regions_only else ()))
    optimiser = torch.optim.Adam([photo_delta, fill_delta], lr=config.lr)
    target, radius = framing(field.bounds)
    settings = MarchSettings(band_samples=8)
    base_photo = field.photo.detach()
    losses = []

    def edited() -> HeadField:  # outside the mask the textures are untouched (no clamping either)
        return replace(field, photo=torch.where(mask_photo > 0, (base_photo + photo_delta).clamp(min=0), base_photo),
                       fill=torch.where(mask_fill > 0, (field.fill + fill_delta).clamp(min=0), field.fill))

    bank = []
    with torch.no_grad():
        for _ in range(min(config.views, config.steps)):
            yaw, pitch = (torch.rand(2, generator=cpu) * 2 - 1) * math.degrees(config.max_angle)
            camera = orbit_camera(float(yaw), float(pitch), radius, target.cpu(), 4.2647, config.size,
                                  turntable_axis(original))
            bank.append(surface_band(field, *replace(camera, c2w=camera.c2w.to(device)).rays(), settings))
        input_camera = field.camera.scaled(max(16, config.size // 4) / max(field.camera.width, field.camera.height))
        input_band = surface_band(field, *input_camera.rays(), settings)
        input_view = composite(field, input_band).rgb
    for step in range(config.steps):
        band = bank[int(torch.randint(len(bank), (1,), generator=cpu))]
        out = composite(edited(), band)
        image = (out.rgb + (1 - out.alpha)).clamp(0, 1).reshape(1, config.size, config.size, 3).permute(0, 3, 1, 2)
        loss = sds_loss(parts, image, embeddings, config, generator)
        keep = config.reconstruction_weight * F.mse_loss(composite(edited(), input_band).rgb, input_view)
        identity = config.identity_weight * _landmark_change(field, photo_delta)
        optimiser.zero_grad()
        (loss.to(torch.float32) + keep + identity).backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, float(loss))
    with torch.no_grad():
        result = edited()
    return replace(original, photo=result.photo.detach().cpu(), fill=result.fill.detach().cpu()), losses


def _region_masks(field: HeadField, regions: tuple[str, ...]) -> tuple[Tensor, Tensor]:
    """[1, 1, h, w] weights on the photo texture and [1, 1, fh, fw] on the fill: 1 in the named
    regions (everywhere when none are named)."""
    from face_nerf.edit.canvas import _region_at
    from face_nerf.field import fill_surface_points
    from face_nerf.regions import REGION_ID

    if not regions or field.photo_labels is None:
        return torch.ones(1, 1, *field.photo.shape[-2:]), torch.ones(1, 1, *field.fill.shape[-2:])
    ids = torch.tensor([REGION_ID[r] for r in regions])
    labels = F.interpolate(field.photo_labels[None, None].float(), size=field.photo.shape[-2:], mode="nearest")
    photo = torch.isin(labels.long(), ids).float()
    points, _ = fill_surface_points(field)
    fill = torch.isin(_region_at(field, points).long(), ids).float().reshape(1, 1, *field.fill.shape[-2:])
    return photo, fill


def _landmark_change(field: HeadField, photo_delta: Tensor) -> Tensor:
    """Mean squared albedo change at the landmarks' photo positions (keeps the face's identity)."""
    if field.landmarks is None:
        return photo_delta.sum() * 0.0
    uv = field.camera.project(field.landmarks)[0]
    grid = (uv / uv.new_tensor([field.camera.width, field.camera.height]) * 2 - 1).reshape(1, 1, -1, 2)
    return (F.grid_sample(photo_delta, grid, align_corners=False) ** 2).mean()
