"""Spherical-harmonics lighting: the basis, Lambertian irradiance, estimating a photo's light, presets.

A light is its radiance L(w) over incoming directions w, projected on the 9 real spherical harmonics
of bands 0-2, one set per colour channel: a [9, 3] tensor. A Lambertian surface with normal n then
receives the irradiance (Ramamoorthi and Hanrahan 2001)
    E(n) = sum_lm A_l L_lm Y_lm(n),    A_0 = pi, A_1 = 2 pi / 3, A_2 = pi / 4,
and shows the colour albedo * E(n) (the 1/pi of the BRDF is folded into the albedo). Colour work is in
linear RGB. Directions are in the world frame: +x the viewer's right, +y up, +z toward the input camera.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
from torch import Tensor

from face_nerf.errors import FaceLabError

SH_COEFFS = 9
# Per-coefficient A_l: band 0, band 1 (x3), band 2 (x5).
BAND_FACTORS = torch.tensor([math.pi] + [2.0 * math.pi / 3.0] * 3 + [math.pi / 4.0] * 5)


def sh_basis(dirs: Tensor) -> Tensor:
    """Real, orthonormal spherical harmonics of bands 0-2.

    Args:
        dirs: [..., 3] unit directions (x, y, z).

    Returns:
        [..., 9] in the order Y_00, Y_1-1 (y), Y_10 (z), Y_11 (x), Y_2-2 (xy), Y_2-1 (yz), Y_20, Y_21 (xz),
        Y_22 (x^2 - y^2).

    Example:
        >>> sh_basis(torch.tensor([0.0, 0.0, 1.0]))[:3]
        tensor([0.2821, 0.0000, 0.4886])
    """
    if dirs.shape[-1] != 3:
        raise ValueError(f"Directions must have a shape of (*, 3). Got {tuple(dirs.shape)}.")
    x, y, z = dirs.unbind(-1)
    return torch.stack([
        torch.full_like(x, 0.28209479),
        0.48860251 * y, 0.48860251 * z, 0.48860251 * x,
        1.09254843 * x * y, 1.09254843 * y * z, 0.31539157 * (3.0 * z * z - 1.0),
        1.09254843 * x * z, 0.54627422 * (x * x - y * y),
    ], -1)


def irradiance_basis(normals: Tensor) -> Tensor:
    """[..., 3] normals -> [..., 9] A_l Y_lm(n): irradiance is ``irradiance_basis(n) @ light``."""
    return sh_basis(normals) * BAND_FACTORS.to(normals)


def irradiance(normals: Tensor, light: Tensor) -> Tensor:
    """Lambertian irradiance E(n) [..., 3] of unit normals [..., 3] under an SH light [9, 3]."""
    _check_light(light)
    return irradiance_basis(normals) @ light.to(normals)


def directional_light(direction: Tensor, colour: Tensor, intensity: float = 1.0) -> Tensor:
    """A distant light of irradiance ``intensity * colour`` on a surface facing it: [9, 3].

    ``direction`` [3] points from the surface toward the light. Truncated to band 2 the light's
    irradiance is a smooth version of intensity * colour * max(0, n . direction).
    """
    unit = direction / direction.norm().clamp(min=1e-12)
    return sh_basis(unit)[:, None] * (intensity * colour)[None, :]


def fibonacci_sphere(count: int) -> Tensor:
    """[count, 3] unit directions spread evenly over the sphere, from z = +1 down to z = -1."""
    i = torch.arange(count, dtype=torch.float32) + 0.5
    z = 1.0 - 2.0 * i / count
    radius = torch.sqrt((1.0 - z * z).clamp(min=0.0))
    phi = i * (math.pi * (3.0 - math.sqrt(5.0)))
    return torch.stack([radius * torch.cos(phi), radius * torch.sin(phi), z], -1)


def with_floor(light: Tensor, floor: float, directions: int = 2048) -> Tensor:
    """The SH light [9, 3] plus the least uniform light (per channel) that makes its irradiance at least
    ``floor`` for every normal. A 9-coefficient fit to one lit side of a face can swing below zero on
    the other side, which no real light does; there a Lambertian render would be black. The added light
    is ambient, so the albedo (photo over irradiance) comes out a little darker where the fit was
    already bright: the photo's light and the albedo split the photo a little differently, and the
    photo's own light still gives the photo back.

    Example:
        >>> bool(irradiance(torch.tensor([[0.0, 0.0, -1.0]]), with_floor(directional_light(torch.tensor([0.0, 0.0, 1.0]), torch.ones(3)), 0.2)).min() >= 0.2 - 1e-5)
        True
    """
    lowest = irradiance(fibonacci_sphere(directions), light).amin(0)  # [3]
    return light + ambient_light((floor - lowest).clamp(min=0.0), 1.0)


def ambient_light(colour: Tensor, level: float) -> Tensor:
    """A uniform environment whose irradiance is ``level * colour`` for every normal: [9, 3]."""
    light = torch.zeros(SH_COEFFS, 3)
    light[0] = level * colour / (math.pi * 0.28209479)  # E = A_0 Y_00 L_00
    return light


def direction_from_angles(azimuth: float, elevation: float) -> Tensor:
    """Unit direction [3] toward a light at ``azimuth`` degrees (0 = from the camera, positive toward the
    viewer's right, 180 = from behind) and ``elevation`` degrees above the horizon."""
    az, el = math.radians(azimuth), math.radians(elevation)
    return torch.tensor([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])


def rotate_sh(light: Tensor, rotation: Tensor) -> Tensor:
    """The SH light [9, C] turned by ``rotation`` [3, 3] (a light from d comes from rotation @ d after).

    Rotation keeps each band within itself, so least squares on a set of directions is exact.
    """
    dirs = _fibonacci_directions(64)
    before = sh_basis(dirs @ rotation.to(dirs))  # the rotated function at d is the original at R^T d
    return torch.linalg.lstsq(sh_basis(dirs), before @ light.to(dirs)).solution


def _fibonacci_directions(count: int) -> Tensor:
    i = torch.arange(count, dtype=torch.float32) + 0.5
    y = 1.0 - 2.0 * i / count
    r = torch.sqrt(1.0 - y * y)
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    return torch.stack([r * torch.cos(phi), y, r * torch.sin(phi)], -1)


def _check_light(light: Tensor) -> None:
    if light.shape != (SH_COEFFS, 3):
        raise ValueError(f"An SH light must have a shape of (9, 3). Got {tuple(light.shape)}.")


# --- colour ---------------------------------------------------------------------------------------

def srgb_to_linear(srgb: Tensor) -> Tensor:
    """sRGB-encoded values in [0, 1] -> linear RGB."""
    return torch.where(srgb <= 0.04045, srgb / 12.92, ((srgb.clamp(min=0.0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: Tensor) -> Tensor:
    """Linear RGB -> sRGB-encoded values, clamped to [0, 1]."""
    linear = linear.clamp(0.0, 1.0)
    return torch.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1.0 / 2.4) - 0.055)


def to_display(linear: Tensor) -> Tensor:
    """Linear RGB radiance [..., 3] -> sRGB for display. Colours brighter than white roll off towards
    white, as a camera's overexposed highlights do, instead of clipping channel by channel (which turns
    sunlit skin (1.3, 1.0, 0.6) into yellow (1, 1, 0.6)): the colour is scaled to its brightest
    channel, then moved towards white by how far that channel was over.

    Example:
        >>> to_display(torch.tensor([1.3, 1.0, 0.6])).tolist() != to_display(torch.tensor([1.0, 1.0, 0.6])).tolist()
        True
    """
    peak = linear.amax(-1, keepdim=True)
    over = peak > 1.0
    scaled = linear / peak.clamp(min=1.0)
    towards_white = ((peak - 1.0) / peak.clamp(min=1e-6)).clamp(0.0, 1.0)
    return linear_to_srgb(torch.where(over, scaled + towards_white * (1.0 - scaled), linear))


LUMA = torch.tensor([0.2126, 0.7152, 0.0722])  # Rec. 709 luminance of linear RGB


# --- estimation -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LightEstimate:
    """The photo's light as estimated from skin.

    Attributes:
        light: [9, 3] SH light whose irradiance, averaged over the skin samples, is white with
            luminance 1 (grey world on the face): the skin's colour goes to the albedo, colour changes
            across the face stay in the light (the split between the two is ambiguous from one photo).
        skin_albedo: [3] the skin's albedo under that light (linear RGB).
        inliers: [N] final robust weights of the samples in [0, 1] (0 = shadow, highlight or not skin).
        rms: root-mean-square luminance residual of the inliers, relative to their mean.
    """

    light: Tensor
    skin_albedo: Tensor
    inliers: Tensor
    rms: float


def estimate_sh_lighting(colours: Tensor, normals: Tensor, iterations: int = 8, ridge: float = 1e-3,
                         trusted: int = 0) -> LightEstimate:
    """Fit a 9-coefficient-per-channel SH light to skin samples of one albedo (robust least squares).

    Model: colour = skin_albedo * E(n). Iteratively reweighted least squares with Tukey's biweight on
    the luminance residual (scale from its median absolute deviation) leaves out cast shadows, specular
    highlights and non-skin pixels; a ridge on bands 1-2 keeps directions that no sample faces tame.

    Args:
        colours: [N, 3] linear RGB of skin pixels.
        normals: [N, 3] unit surface normals there.
        iterations: reweighting rounds.
        ridge: ridge strength relative to the mean squared basis value.
        trusted: the last ``trusted`` samples are priors, never down-weighted as outliers (and not
            counted in the skin albedo).

    Returns:
        The estimate (see ``LightEstimate``).

    Raises:
        ValueError: shapes differ, or fewer than 50 samples.
    """
    if colours.shape != normals.shape or colours.shape[-1] != 3 or colours.dim() != 2:
        raise ValueError(f"colours and normals must both have a shape of (N, 3). Got {tuple(colours.shape)} and {tuple(normals.shape)}.")
    if colours.shape[0] < 50:
        raise ValueError(f"Light estimation needs at least 50 skin samples. Got {colours.shape[0]}.")
    colours, normals = colours.double(), normals.double()
    basis = irradiance_basis(normals)
    penalty = torch.diag(torch.tensor([0.0] + [1.0] * 8, dtype=basis.dtype)) * ridge * (basis ** 2).mean() * basis.shape[0]
    weights = torch.ones(basis.shape[0], dtype=basis.dtype)
    luma = LUMA.to(colours)
    for _ in range(iterations):
        wb = basis * weights[:, None]
        coeffs = torch.linalg.solve(wb.T @ basis + penalty, wb.T @ colours)  # [9, 3] = albedo * light
        predicted = basis @ coeffs @ luma
        residual = (colours @ luma - predicted) / predicted.abs().clamp(min=1e-4)
        scale = 1.4826 * (residual - residual.median()).abs().median().clamp(min=1e-3)
        weights = ((1.0 - (residual / (4.685 * scale)) ** 2).clamp(min=0.0)) ** 2
        if trusted:
            weights[-trusted:] = 1.0
    # Grey world on the face: the light is white on average over the skin, with mean luminance 1,
    # so the skin albedo is the mean fitted skin colour.
    measured = slice(0, basis.shape[0] - trusted)
    weights, residual = weights[measured], residual[measured]
    albedo = ((basis[measured] @ coeffs) * weights[:, None]).sum(0) / weights.sum()
    light = coeffs / albedo[None, :]
    inlier = weights > 0
    rms = float(torch.sqrt((residual[inlier] ** 2).mean())) if inlier.any() else float("nan")
    return LightEstimate(light.float(), albedo.float(), weights.float(), rms)


# --- presets and custom lights --------------------------------------------------------------------

LIGHT_FRAMES = ("world", "camera")


@dataclass(frozen=True)
class Lamp:
    """One distant light of a preset: where it comes from, its colour and its strength."""

    azimuth: float  # degrees, 0 = from the camera, positive toward the viewer's right, 180 = from behind
    elevation: float  # degrees above the horizon
    colour: tuple[float, float, float]  # linear RGB, about unit luminance
    intensity: float  # irradiance on a surface facing the lamp (1 = the photo's mean skin irradiance)


@dataclass(frozen=True)
class LightSetup:
    """Lamps plus a uniform ambient term."""

    lamps: tuple[Lamp, ...]
    ambient: float
    ambient_colour: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def to_sh(self) -> Tensor:
        """The setup as an SH light [9, 3]."""
        light = ambient_light(torch.tensor(self.ambient_colour), self.ambient)
        for lamp in self.lamps:
            light = light + directional_light(direction_from_angles(lamp.azimuth, lamp.elevation),
                                              torch.tensor(lamp.colour), lamp.intensity)
        return light


WHITE = (1.0, 1.0, 1.0)
WARM = (1.25, 0.93, 0.62)
COOL = (0.72, 0.98, 1.45)
PRESETS: dict[str, LightSetup | None] = {
    "original": None,  # the light estimated from the photo
    "flat": LightSetup((), ambient=1.0),  # uniform white light: shows the albedo itself
    "studio": LightSetup((Lamp(-30, 25, WHITE, 0.75), Lamp(35, 10, WHITE, 0.3)), ambient=0.35),
    "left": LightSetup((Lamp(-75, 15, WHITE, 1.1),), ambient=0.12),
    "right": LightSetup((Lamp(75, 15, WHITE, 1.1),), ambient=0.12),
    "top": LightSetup((Lamp(0, 70, WHITE, 1.0),), ambient=0.2),
    "rim": LightSetup((Lamp(-140, 20, WHITE, 1.2), Lamp(140, 20, WHITE, 1.2)), ambient=0.25),
    "dramatic": LightSetup((Lamp(45, 35, WHITE, 1.2),), ambient=0.04),
    "warm": LightSetup((Lamp(-30, 25, WARM, 0.75), Lamp(35, 10, WARM, 0.3)), ambient=0.3, ambient_colour=WARM),
    "cool": LightSetup((Lamp(-30, 25, COOL, 0.75), Lamp(35, 10, COOL, 0.3)), ambient=0.3, ambient_colour=COOL),
    "sunset": LightSetup((Lamp(-70, 8, (1.45, 0.78, 0.38), 1.0),), ambient=0.25, ambient_colour=(0.75, 0.8, 1.3)),
}


CUSTOM_LIGHT_RANGES = (("azimuth", -180.0, 180.0), ("elevation", -90.0, 90.0), ("intensity", 0.0, 4.0), ("ambient", 0.0, 2.0))


@dataclass(frozen=True)
class CustomLight:
    """A user-placed light: one lamp plus ambient (see ``parse``)."""

    azimuth: float = 0.0  # degrees, -180..180
    elevation: float = 20.0  # degrees, -90..90
    color: str = "#ffffff"  # sRGB hex
    intensity: float = 1.0  # 0..4
    ambient: float = 0.3  # 0..2

    def __post_init__(self):
        for name, lo, hi in CUSTOM_LIGHT_RANGES:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
                raise FaceLabError(f"Light {name} must be between {lo:g} and {hi:g}. Got {value!r}.")
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", str(self.color)):
            raise FaceLabError(f"Light color must be a hex colour like #ffd8a8. Got {self.color!r}.")

    @classmethod
    def parse(cls, text: str) -> "CustomLight":
        """Read ``"azimuth=40,elevation=20,color=#ffd8a8,intensity=1.2,ambient=0.3"`` (any subset)."""
        keys = ("azimuth", "elevation", "color", "intensity", "ambient")
        values: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            name = name.strip().lower().replace("colour", "color")
            if not sep or name not in keys:
                raise FaceLabError(f"Cannot read {part!r} in the light {text!r}: write name=value pairs with names from {', '.join(keys)}.")
            if name == "color":
                values[name] = value.strip()
            else:
                try:
                    values[name] = float(value)
                except ValueError:
                    raise FaceLabError(f"Light {name} must be a number. Got {value.strip()!r}.") from None
        return cls(**values)

    def to_sh(self) -> Tensor:
        rgb = srgb_to_linear(torch.tensor([int(self.color[i:i + 2], 16) / 255.0 for i in (1, 3, 5)]))
        colour = rgb / max(float((rgb * LUMA).sum()), 1e-3)  # unit luminance: intensity sets the strength
        lamp = Lamp(self.azimuth, self.elevation, tuple(colour.tolist()), self.intensity)
        return LightSetup((lamp,), self.ambient).to_sh()


@dataclass(frozen=True)
class Lighting:
    """How to light a render.

    Attributes:
        preset: a name from ``PRESETS`` (ignored when ``custom`` is given).
        custom: a user-placed light instead of a preset.
        fixed_to: "world" (the light stays put as the head turns) or "camera" (it turns with the camera).
    """

    preset: str = "original"
    custom: CustomLight | None = None
    fixed_to: str = "world"

    def __post_init__(self):
        if self.custom is None and self.preset not in PRESETS:
            raise FaceLabError(f"Unknown lighting preset {self.preset!r}. Choose one of: {', '.join(PRESETS)}.")
        if self.fixed_to not in LIGHT_FRAMES:
            raise FaceLabError(f"Lights are fixed to 'world' or 'camera'. Got {self.fixed_to!r}.")

    @property
    def name(self) -> str:
        """How the UI and reports call this lighting."""
        return "custom" if self.custom is not None else self.preset

    def to_sh(self, estimated: Tensor) -> Tensor:
        """The SH light [9, 3] in the input camera's frame; ``estimated`` is the photo's light."""
        if self.custom is not None:
            return self.custom.to_sh()
        setup = PRESETS[self.preset]
        return estimated.clone() if setup is None else setup.to_sh()
