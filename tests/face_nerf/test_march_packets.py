"""The packet tracer (march_packets: eight rays at once, AVX2) against Warp's one-ray kernel, which gives
the same G-buffer, and what happens where it cannot be built."""

from __future__ import annotations

import logging

import pytest
import torch

from face_nerf import march_packets
from face_nerf.march_colour import march_views
from face_nerf.render import Camera, MarchSettings, look_at, render_rays
from tests.face_nerf.test_march import _textured_head_field

needs_packets = pytest.mark.skipif(march_packets.library() is None,
                                   reason="the packet tracer needs an x86-64 CPU with AVX2 and FMA and a C++ compiler")


def _cameras(size_x: int, size_y: int, eyes=((0.4, 0.3, 2.6), (2.7, -0.2, 0.3), (0.0, 2.5, -1.2))):
    focal = 1.6 * size_x
    return [Camera(look_at(torch.tensor(eye), torch.zeros(3)), focal, focal, size_x / 2 - 0.3, size_y / 2 + 0.2,
                   size_x, size_y) for eye in eyes]


def _g_buffer(field, cameras, path: str, monkeypatch, progress=None):
    monkeypatch.setenv("FACELAB_CPU_MARCH", path)
    n, h, w = len(cameras), cameras[0].height, cameras[0].width
    alpha = torch.full((n, h, w, 1), -1.0)
    albedo, normal = torch.full((n, h, w, 3), -1.0, dtype=torch.float16), torch.full((n, h, w, 3), -1.0, dtype=torch.float16)
    march_views(field.sdf_volume(), field.grid_appearance(), cameras, field.beta, MarchSettings(), alpha, albedo,
                normal, progress)
    return alpha, albedo.float(), normal.float()


def _same_g_buffer(fast, slow, min_seen: int):
    (alpha, albedo, normal), (alpha_w, albedo_w, normal_w) = fast, slow
    assert (alpha >= 0).all() and (alpha <= 1.0 + 1e-5).all()  # every pixel written
    assert (alpha[..., 0] > 0.5).sum() >= min_seen
    assert torch.allclose(alpha, alpha_w, atol=3e-4) and (alpha - alpha_w).abs().mean() < 1e-6
    seen = (alpha[..., 0] > 0.01) & (alpha_w[..., 0] > 0.01)
    assert torch.equal(alpha[..., 0] > 0, alpha_w[..., 0] > 0)
    for mine, warps in ((albedo, albedo_w), (normal, normal_w)):
        assert (mine[seen] - warps[seen]).abs().mean() < 1e-4 and torch.allclose(mine[seen], warps[seen], atol=0.02)
        assert (mine[alpha[..., 0] == 0] == 0).all()


@needs_packets
def test_packets_give_what_warps_kernel_gives(monkeypatch):
    """A head with everything the colour looks up varying, three views: the same opacity (to rounding:
    the tracer's exp is a polynomial), albedo and normal as Warp's kernel, ray by ray."""
    field = _textured_head_field()
    cameras = _cameras(48, 40)
    _same_g_buffer(_g_buffer(field, cameras, "packets", monkeypatch), _g_buffer(field, cameras, "warp", monkeypatch),
                   min_seen=3 * 200)


@needs_packets
def test_packets_on_a_reconstructed_head(example_run, monkeypatch):
    """An example photo's head from round it (the band's every case: crossed rays, grazing ones, rays that
    start in the box's tolerance)."""
    _, _, _, recon, _ = example_run
    eyes = [(2.6 * torch.sin(torch.tensor(a)).item(), 0.2, 2.6 * torch.cos(torch.tensor(a)).item())
            for a in (0.0, 0.9, 1.57, 2.4, 3.14)]
    cameras = _cameras(64, 64, eyes)
    _same_g_buffer(_g_buffer(recon.field, cameras, "packets", monkeypatch),
                   _g_buffer(recon.field, cameras, "warp", monkeypatch), min_seen=5 * 600)


@needs_packets
def test_packets_take_any_image_size_and_report_progress(monkeypatch):
    """Images whose size is no multiple of the tracer's tiles (8 x 8), a block at a time: every pixel is
    written, each as render_rays gives it, and progress counts views up to all of them."""
    monkeypatch.setattr(march_packets, "BLOCK", 64)  # a tile a block: 2 tiles a view
    field = _textured_head_field()
    cameras = _cameras(9, 7)
    reported, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)  # blocks finish in order
    try:
        alpha, albedo, _ = _g_buffer(field, cameras, "packets", monkeypatch, reported.append)
    finally:
        torch.set_num_threads(threads)
    assert reported == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    for k, camera in enumerate(cameras):
        out = render_rays(field, *camera.rays()).reshape(7, 9)
        assert torch.allclose(alpha[k], out.alpha, atol=3e-4)
    assert (alpha[..., 0] > 0.5).sum() > 20 and (albedo >= 0).all()


def test_without_a_compiler_warps_kernel_renders(monkeypatch, tmp_path, caplog):
    """A build that fails (here: no such compiler) says why in the log, once, and march_views renders with
    Warp's kernel; nothing half-built is left in the cache."""
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(march_packets, "_LIBRARY", [])
    monkeypatch.setattr(march_packets, "_cpu_can", lambda: True)
    with caplog.at_level(logging.WARNING, logger="face_nerf.march_packets"):
        assert march_packets.library() is None and march_packets.library() is None
    assert len(caplog.records) == 1 and "no-such-g++" in caplog.records[0].getMessage()
    assert march_packets.describe().startswith("Warp's kernel, one ray a thread (the packet tracer could not be built")
    assert not march_packets.usable(torch.device("cpu"), MarchSettings())
    assert list((tmp_path / "cache" / "packets").iterdir()) == []
    field = _textured_head_field()
    alpha, _, _ = _g_buffer(field, _cameras(24, 20), "packets", monkeypatch)
    assert (alpha[..., 0] > 0.5).sum() > 100


def test_a_failed_build_names_the_compilers_complaint(monkeypatch, tmp_path):
    """A compiler that fails: the error carries what it printed."""
    compiler = tmp_path / "bad-g++"
    compiler.write_text("#!/bin/sh\necho 'error: this compiler is broken' >&2\nexit 1\n")
    compiler.chmod(0o755)
    monkeypatch.setenv("CXX", str(compiler))
    with pytest.raises(RuntimeError, match="this compiler is broken"):
        march_packets.build(tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


@needs_packets
def test_the_build_is_kept_and_reused(monkeypatch, tmp_path):
    """A second build of the same source finds the first's library and runs no compiler."""
    first = march_packets.build(tmp_path)
    monkeypatch.setattr(march_packets.subprocess, "run", lambda *a, **k: pytest.fail("compiled twice"))
    assert march_packets.build(tmp_path) == first and first.stat().st_size > 0


def test_when_the_packet_tracer_is_not_used(monkeypatch):
    """Asked off (FACELAB_CPU_MARCH=warp), with colour at every sample, or on a GPU: Warp's kernels."""
    assert not march_packets.usable(torch.device("cpu"), MarchSettings(colour_at="samples"))
    assert not march_packets.usable(torch.device("cuda"), MarchSettings())
    monkeypatch.setenv("FACELAB_CPU_MARCH", "warp")
    assert not march_packets.usable(torch.device("cpu"), MarchSettings())
    assert march_packets.describe() == "Warp's kernel, one ray a thread (FACELAB_CPU_MARCH=warp)"
    monkeypatch.setenv("FACELAB_CPU_MARCH", "wrap")
    with pytest.raises(ValueError, match="FACELAB_CPU_MARCH must be 'packets' or 'warp'. Got 'wrap'"):
        march_packets.library()


@needs_packets
def test_display_bytes_come_from_thresholds_exactly():
    """The shading's sRGB bytes (a table of thresholds, no power) against the curve in double precision,
    over [0, 1] densely and past both ends: the same, value for value."""
    values = torch.cat([torch.linspace(-0.5, 1.5, 400_001), torch.rand(100_000, generator=torch.Generator().manual_seed(1))])
    x = values.double().clamp(0.0, 1.0)
    curve = torch.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1.0 / 2.4) - 0.055)
    expected = (curve * 255.0 + 0.5).floor().to(torch.uint8)
    got = march_packets.srgb_bytes(values)
    assert got.dtype == torch.uint8 and got.shape == values.shape
    assert torch.equal(got, expected)
    assert got[values <= 0].eq(0).all() and got[values >= 1].eq(255).all()


@needs_packets
@pytest.mark.parametrize("size", [(16, 16), (7, 5)])
def test_packet_shading_gives_warps_bytes(monkeypatch, size):
    """march_colour.shade_views both ways over G-buffers with every case: no opacity, partial, full;
    colours past white (rolled off towards white); a light per view. The same bytes but for a level in a
    value here and there (float rounding at a byte's edge)."""
    from face_nerf.march_colour import shade_views

    generator = torch.Generator().manual_seed(3)
    n, (h, w) = 3, size
    alpha = torch.rand(n, h, w, 1, generator=generator)
    alpha[0, :2] = 0.0
    alpha[1, :2] = 1.0
    albedo = (torch.rand(n, h, w, 3, generator=generator) * 2.5).half()
    normal = torch.nn.functional.normalize(torch.randn(n, h, w, 3, generator=generator), dim=-1).half()
    lights = torch.randn(n, 9, 3, generator=generator) * 0.5 + torch.tensor([1.2] + [0.0] * 8)[:, None]
    background = torch.tensor([0.2, 0.05, 0.6])
    shaded = {}
    for path in ("packets", "warp"):
        monkeypatch.setenv("FACELAB_CPU_MARCH", path)
        shaded[path] = shade_views(alpha, albedo, normal, lights, background)
    diff = (shaded["packets"].int() - shaded["warp"].int()).abs()
    assert shaded["packets"].shape == (n, h, w, 3) and diff.max() <= 1 and diff.float().mean() < 0.01
    assert shaded["packets"].float().std() > 30  # the cases above give every kind of value
