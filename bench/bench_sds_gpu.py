"""GPU cost of the diffusion editor with the full-size Stable Diffusion 2.1-base architecture, built from
its config with random weights (timing needs no download): one SDS step (VAE encode + UNet with
classifier-free guidance + backward to the render) at 256 and 512 px renders, and whole edits with the
field rendering included (on the GPU; a bank of views is traced once, then each step shades one; the
field is read from FIELD).

Usage: python bench/bench_sds_gpu.py FIELD [--steps 300] [--out results.json]
FIELD: a field.safetensors, or the bench's smaller copy with only the visibility channel of the
surface grid (normals are recomputed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Import face_nerf.edit.diffusion without face_nerf.edit's __init__ (the embedded editor's imports,
# scipy among them, are not needed here and not installed on the GPU machine).
_edit = types.ModuleType("face_nerf.edit")
_edit.__path__ = [str(ROOT / "face_nerf" / "edit")]
sys.modules.setdefault("face_nerf.edit", _edit)

UNET_SD21_BASE = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                      block_out_channels=(320, 640, 1280, 1280),
                      down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                      up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, cross_attention_dim=1024,
                      attention_head_dim=(5, 10, 20, 20), use_linear_projection=True)
VAE_SD = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
              down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
              layers_per_block=2, sample_size=512)


def load_field(path: Path):
    from safetensors import safe_open

    from face_nerf.field import FIELD_FORMAT, HeadField, surface_grid
    from face_nerf.render import Camera

    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["facelab"])
        t = {k: handle.get_tensor(k) for k in handle.keys()}
    assert meta["format"] == FIELD_FORMAT
    if "surface_grid" not in t:
        step = float((t["bounds"][1, 0] - t["bounds"][0, 0]) / (t["sdf_grid"].shape[-1] - 1))
        t["surface_grid"] = surface_grid(t["sdf_grid"][0, 0], t.pop("visibility")[0, 0], step)
    fx, fy, cx, cy, w, h = meta["camera"]
    return HeadField(t["sdf_grid"], t["surface_grid"], t["bounds"], float(meta["beta"]), t["photo"],
                     Camera(t["camera_c2w"], fx, fy, cx, cy, int(w), int(h)), t["fill"], t["fill_centre"],
                     t["photo_light"], float(meta["irradiance_floor"]), t.get("landmarks"), t.get("photo_labels"),
                     t.get("region_grid"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("field")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    from face_nerf.edit.diffusion import Diffusion, SDSConfig, distil, sds_loss

    device, dtype = torch.device("cuda"), torch.float16
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**UNET_SD21_BASE).to(device, dtype).requires_grad_(False).eval()
    vae = AutoencoderKL(**VAE_SD).to(device, dtype).requires_grad_(False).eval()
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    parts = Diffusion(unet, vae, None, None, scheduler)
    embeddings = torch.randn(2, 77, 1024, device=device, dtype=dtype)  # stand-in for the text encoder's output
    generator = torch.Generator(device=device).manual_seed(0)
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}; UNet {sum(p.numel() for p in unet.parameters()) / 1e6:.0f} M "
          f"parameters, VAE {sum(p.numel() for p in vae.parameters()) / 1e6:.0f} M, fp16")
    results = {"device": torch.cuda.get_device_name()}
    for size in (256, 512):
        config = SDSConfig(size=size)
        image = torch.rand(1, 3, size, size, device=device, requires_grad=True)
        for _ in range(3):
            sds_loss(parts, image, embeddings, config, generator).backward()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(20):
            sds_loss(parts, image, embeddings, config, generator).backward()
        torch.cuda.synchronize()
        step = (time.perf_counter() - start) / 20
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
        print(f"SDS step, {size} px render (VAE at 512 px, latent 64): {1000 * step:.1f} ms, peak {peak:.2f} GiB")
        results[f"sds_step_ms_{size}"], results[f"peak_gib_{size}"] = round(1000 * step, 2), round(peak, 2)

    field = load_field(Path(args.field))
    torch.set_num_threads(16)
    for size, steps in ((256, args.steps), (512, args.steps)):
        config = SDSConfig(size=size, steps=steps)
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        _, losses = distil(field, "marble statue", parts, config, 0, device, dtype, embeddings=embeddings)
        torch.cuda.synchronize()
        total = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
        print(f"whole {steps}-step edit, field rendered at {size} px: {total:.1f} s ({1000 * total / steps:.0f} ms a "
              f"step, the view bank included), peak GPU {peak:.2f} GiB, losses finite {all(v == v for v in losses)}")
        results[f"edit_{steps}_steps_s_{size}"] = round(total, 1)
        results[f"edit_peak_gib_{size}"] = round(peak, 2)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
