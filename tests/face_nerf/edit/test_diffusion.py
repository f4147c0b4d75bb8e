"""The diffusion editor on a tiny randomly initialised Stable Diffusion built here (UNet, VAE, text
encoder, a tokenizer trained on a few sentences), saved with save_pretrained and loaded by the real
loading code."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("diffusers", reason="the diffusion editor's tests need diffusers (in requirements.txt)")

from face_nerf.edit.diffusion import DiffusionEditor, SDSConfig, load_diffusion, prompt_regions, sds_loss, text_embeddings
from face_nerf.errors import FaceLabError

TINY = SDSConfig(steps=3, size=32, latent_size=4, guidance=7.5, lr=0.05)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A folder in the diffusers layout holding a tiny random Stable Diffusion."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("tiny-sd")
    torch.manual_seed(0)
    UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
                         down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                         up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                         attention_head_dim=2, norm_num_groups=4).save_pretrained(root / "unet")
    AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8),
                  down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                  layers_per_block=1, norm_num_groups=4, sample_size=32).save_pretrained(root / "vae")
    # A byte-pair tokenizer trained on a few sentences, in CLIP's vocab.json + merges.txt layout.
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    bpe.train_from_iterator(["red lips", "marble statue", "a face with blue eyes", "grey hair and a beard"] * 20,
                            trainers.BpeTrainer(vocab_size=200, special_tokens=["<|startoftext|>", "<|endoftext|>"],
                                                end_of_word_suffix="</w>"))
    (root / "bpe").mkdir()
    bpe.model.save(str(root / "bpe"))
    merges = (root / "bpe" / "merges.txt").read_text().splitlines()
    (root / "bpe" / "merges.txt").write_text("\n".join(["#version: 0.2", *[m for m in merges if not m.startswith("#")]]) + "\n")
    tokenizer = CLIPTokenizer(str(root / "bpe" / "vocab.json"), str(root / "bpe" / "merges.txt"), model_max_length=16)
    tokenizer.save_pretrained(root / "tokenizer")
    vocab = len(json.loads((root / "bpe" / "vocab.json").read_text()))
    CLIPTextModel(CLIPTextConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, max_position_embeddings=16, projection_dim=16)
                  ).save_pretrained(root / "text_encoder")
    DDPMScheduler(num_train_timesteps=1000).save_pretrained(root / "scheduler")
    return str(root)


@pytest.fixture(scope="module")
def field(example_run):
    return example_run[3].field


def test_the_sds_gradient_is_finite_and_not_zero(tiny_model):
    parts = load_diffusion(tiny_model, "cpu", torch.float32)
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    loss = sds_loss(parts, image, text_embeddings(parts, "red lips", "cpu", torch.float32), TINY,
                    torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0


def test_a_few_steps_change_only_the_named_region_and_keep_the_input_view(tiny_model, field):
    from face_nerf.regions import REGION_ID

    editor = DiffusionEditor(tiny_model, TINY, device="cpu", allow_cpu=True)
    result = editor.edit(field, "red lips", seed=1)
    assert result.backend == "diffusion-editor" and result.applied[0].phrase == "red lips"
    change = (result.field.photo - field.photo).abs().sum(1)[0]
    import torch.nn.functional as F

    lips = F.interpolate(field.photo_labels[None, None].float(), size=change.shape, mode="nearest")[0, 0] == REGION_ID["lips"]
    assert change[lips].max() > 1e-4  # the lips moved
    assert change[~lips].max() == 0.0  # nothing else did
    assert (result.field.fill - field.fill).abs()[:, :, ~_fill_lips(field)].max() == 0.0
    # the input view stays close to the photo: only the lips' texels can differ, by a few levels
    assert change.mean() < 0.01


def _fill_lips(field):
    from face_nerf.edit.canvas import _region_at
    from face_nerf.field import fill_surface_points
    from face_nerf.regions import REGION_ID

    points, _ = fill_surface_points(field)
    return (_region_at(field, points) == REGION_ID["lips"]).reshape(field.fill.shape[-2:])


def test_a_fixed_seed_reproduces_the_edit(tiny_model, field):
    editor = DiffusionEditor(tiny_model, TINY, device="cpu", allow_cpu=True)
    a, b = editor.edit(field, "marble statue", seed=3), editor.edit(field, "marble statue", seed=3)
    assert torch.equal(a.field.photo, b.field.photo) and torch.equal(a.field.fill, b.field.fill)
    assert not torch.equal(a.field.photo, field.photo)  # no region named: the whole albedo may change


def test_refusals_are_clear(tiny_model, monkeypatch):
    monkeypatch.delenv("FACELAB_SD_MODEL", raising=False)
    with pytest.raises(FaceLabError, match="No Stable Diffusion model configured"):
        DiffusionEditor()
    if not torch.cuda.is_available():
        with pytest.raises(FaceLabError, match="needs a GPU"):
            DiffusionEditor(tiny_model)
    with pytest.raises(FaceLabError, match="Could not load Stable Diffusion"):
        load_diffusion(str(tiny_model) + "-missing", "cpu", torch.float32)
    assert prompt_regions("red lips, grey hair") == ("lips", "hair") and prompt_regions("marble statue") == ()


def test_the_cli_and_the_app_refuse_the_diffusion_editor_without_a_model(tmp_path, monkeypatch, capsys):
    import gradio as gr

    from face_nerf.__main__ import main
    from webapp.services import Services

    monkeypatch.delenv("FACELAB_SD_MODEL", raising=False)
    assert main(["reconstruct", "assets/examples/astronaut.png", "--out", str(tmp_path / "out"), "--editor",
                 "diffusion", "--prompt", "marble statue", "--quiet"]) == 2
    assert "No Stable Diffusion model configured" in capsys.readouterr().err and not (tmp_path / "out").exists()
    services = Services(tmp_path / "outputs")
    assert services.diffusion_model is None
    with pytest.raises(gr.Error, match="No Stable Diffusion model configured"):
        services.generate("assets/examples/astronaut.png", "marble statue", editor="diffusion", progress=lambda *a, **k: None)
