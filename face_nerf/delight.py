"""Separating the photo's lighting from the face: an SH light estimated on skin, and an albedo texture.

The photo is explained as albedo * E(n) with E the irradiance of a 9-coefficient SH light and n the
reconstructed normals (``lighting.estimate_sh_lighting`` fits it robustly on skin pixels). Dividing
by E removes the smooth shading. What a Lambertian SH model cannot explain, specular highlights and
cast shadows, shows up as skin pixels far brighter or darker than the fitted skin; those are pulled
back toward the fit by a correction factor on the texture, so they do not follow the head into every
new light. The correction is deliberately conservative (only beyond ``highlight_ratio`` /
``shadow_ratio``): moles, freckles and make-up are albedo and stay, and the ``original`` light still
reproduces the photo.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from torch import Tensor

from face_nerf.errors import NoFaceError
from face_nerf.lighting import LUMA, LightEstimate, estimate_sh_lighting, fibonacci_sphere, irradiance, with_floor
from face_nerf.regions import skin_mask
from face_nerf.render import Camera, RenderOutput


MIN_SKIN_SAMPLES = 50  # the fewest skin pixels the light fit takes (``estimate_sh_lighting``)


def _check_skin_samples(count: int) -> None:
    """Refuse, with the fix, a face whose visible skin is too small to estimate the light on."""
    if count < MIN_SKIN_SAMPLES:
        raise NoFaceError(
            f"Too little of the face's skin is visible to estimate the photo's lighting ({count} pixels, "
            f"at least {MIN_SKIN_SAMPLES} are needed). Use a photo in which the face is at least 80 pixels "
            "across, facing the camera and not covered; crop a group photo around one face."
        )


@dataclass(frozen=True)
class DelightConfig:
    """How the photo's light is taken out.

    Attributes:
        enabled: estimate the light (False: the photo is the albedo, under a uniform unit light).
        highlight_ratio: skin brighter than this times the fitted skin is a highlight, pulled down to it.
            2.5 keeps the ``original`` light within 0.2 dB of the unrelit field on the example photos
            (2.0: 1.1 dB lower on grace_hopper, where the fit's residual is large).
        shadow_ratio: skin darker than this times the fitted skin is a cast shadow, lifted up to it. Off (0)
            by default: with landmark-level normals, dark skin pixels are mostly albedo the skin mask
            lets through (hair strands, brow and nostril edges); lifting them cost 4-7 dB of the
            input view's PSNR on the example photos.
        max_samples: at most this many skin pixels go into the fit (a regular subsample).
        irradiance_floor: albedo = photo / max(E, floor), so grazing and extrapolated normals stay sane.
        unseen_prior: pseudo-samples on the directions the camera cannot see (the back half of the
            head), as a share of the skin samples, holding the light there at the skin's mean colour
            and brightness. Without them the fitted light swings wildly behind the head (on
            grace_hopper the back's irradiance came out 3.9 in blue and 0 in red) and a full turn
            shows a blue head.
    """

    enabled: bool = True
    highlight_ratio: float = 2.5
    shadow_ratio: float = 0.0
    max_samples: int = 20_000
    irradiance_floor: float = 0.2
    unseen_prior: float = 0.3


@dataclass
class Delighting:
    """The estimated light and the texture correction.

    Attributes:
        estimate: the photo's SH light (see ``LightEstimate``).
        correction: [1, 1, h, w] factor on the linear photo texture (1 = unchanged).
        skin: [h', w'] bool skin pixels of the low-resolution input view used for the fit.
    """

    estimate: LightEstimate
    correction: Tensor
    skin: np.ndarray


def delight_photo(texture: Tensor, view: RenderOutput, low: Camera, person_mask: np.ndarray, landmarks_px: np.ndarray,
                  config: DelightConfig = DelightConfig()) -> Delighting:
    """Estimate the photo's light and the correction of its highlights and cast shadows.

    Args:
        texture: [1, 3, h, w] linear photo texture.
        view: [h', w', C] input view rendered from ``low`` (alpha and normals are used).
        low: the input camera at a low resolution.
        person_mask: [H, W] person mask at the photo's resolution.
        landmarks_px: [478, 2] landmark pixels in the photo's resolution of the full input camera.
        config: options.

    Raises:
        NoFaceError: fewer than ``MIN_SKIN_SAMPLES`` skin pixels are visible at the input view's low
            resolution (a face far too small in a large photo, turned away or covered).
    """
    h, w = low.height, low.width
    photo = F.interpolate(texture, size=(h, w), mode="area")[0].permute(1, 2, 0)
    alpha = view.alpha[..., 0]
    normal = F.normalize(view.normal, dim=-1)
    dirs = low.rays()[1].reshape(h, w, 3)
    facing = -(normal * dirs).sum(-1)
    person = F.interpolate(torch.from_numpy(np.ascontiguousarray(person_mask, np.float32))[None, None], size=(h, w),
                           mode="area")[0, 0]
    scale = w / float(person_mask.shape[1])
    skin = skin_mask(landmarks_px * scale, (w, h)) & (alpha > 0.95).numpy() & (person > 0.5).numpy() & (facing > 0.3).numpy()
    ys, xs = np.nonzero(skin)
    _check_skin_samples(len(ys))
    stride = max(1, len(ys) // config.max_samples)
    ys, xs = ys[::stride], xs[::stride]
    colours, normals = photo[ys, xs], normal[ys, xs]
    measured = len(colours)
    if config.unseen_prior > 0:
        colours, normals = _with_unseen_prior(colours, normals, config.unseen_prior)
    estimate = estimate_sh_lighting(colours, normals, trusted=len(colours) - measured)

    # Ratio of the photo to the fitted skin, on skin; outside the thresholds it is pulled back.
    fitted = (irradiance(normal, estimate.light).clamp(min=config.irradiance_floor) * estimate.skin_albedo) @ LUMA
    ratio = (photo @ LUMA).clamp(min=1e-4) / fitted.clamp(min=1e-4)
    target = ratio.clamp(max=config.highlight_ratio)
    if config.shadow_ratio > 0:
        target = target.clamp(min=config.shadow_ratio)
    log_factor = torch.log(target / ratio).numpy()
    soft_skin = gaussian_filter(skin.astype(np.float32), 1.5)  # feathered edge, no seams at features
    log_factor = gaussian_filter(log_factor * soft_skin, 1.0)
    factor = torch.from_numpy(np.exp(log_factor).astype(np.float32))[None, None]
    correction = F.interpolate(factor, size=texture.shape[-2:], mode="bilinear", align_corners=False)
    # Where the fit lights the head less than the floor the albedo divides by, shading the albedo would
    # not give the photo back (the far side of a side-lit head went black): the field's light is lifted
    # to the floor. The correction above is the fit's own.
    return Delighting(replace(estimate, light=with_floor(estimate.light, config.irradiance_floor)), correction, skin)


def _with_unseen_prior(colours: Tensor, normals: Tensor, share: float) -> tuple[Tensor, Tensor]:
    """The skin samples [N, 3] plus ``share * N`` pseudo-samples on normals facing away from the camera
    (z < -0.2, spread evenly), coloured the skin's mean colour: the light behind the head is taken to be as
    bright as it is on average in front (a dimmer back reads as a dark, background-like head from behind)."""
    count = max(1, int(share * len(colours)))
    sphere = fibonacci_sphere(4 * count)
    back = sphere[sphere[:, 2] < -0.2][:count]
    pseudo = colours.mean(0).expand(len(back), 3)
    return torch.cat([colours, pseudo.to(colours)]), torch.cat([normals, back.to(normals)])
