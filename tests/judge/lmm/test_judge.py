import math

import numpy as np
import pytest
import torch

from judge.lmm.checkpoint import LMMConfig, LMMError, check_speed, load_lmm, read_config
from judge.lmm.inputs import encode_prompts
from judge.lmm.judge import LMMJudge, strip_frames
from judge.lmm.prompts import score_prompt
from judge.lmm.scoring import level_token_ids
from judge.result import CATEGORIES, LEVELS, JudgeResult


def test_one_token_score_equals_a_hand_computed_softmax(tiny_judge, clip):
    """The judge's batched pass (left padding, the video encoded once for three rows) gives the MOS that
    a plain forward pass of the quality prompt alone and the rule worked by hand give."""
    lm = tiny_judge.loaded
    video = tiny_judge.video(clip)
    output = tiny_judge.evaluate(video, heatmaps=False)
    batch = encode_prompts(lm.tokenizer, [score_prompt("quality")], video)
    with torch.no_grad():
        logits = lm.model(**batch).logits[0, -1]
    ids = level_token_ids(lm.tokenizer)
    exp = [math.exp(logits[i].item()) for i in ids]
    s = sum((k + 1) * e / sum(exp) for k, e in enumerate(exp))
    assert output.one_token_mos["quality"] == pytest.approx((s - 1) * 25, abs=1e-3)
    assert output.mos == output.one_token_mos  # no adapter heads: the rule gives the scores
    assert output.level_probabilities.shape == (2, 5)
    assert np.allclose(output.level_probabilities.sum(1), 1.0, atol=1e-5)


def test_judge_gives_a_complete_result(tiny_judge, clip):
    result = tiny_judge.judge(clip)
    assert result.backend == f"lmm-judge:{tiny_judge.config.model.rstrip('/').split('/')[-1]}"
    for score in (result.quality, result.authenticity):
        assert 0 <= score.mos <= 100 and score.level in LEVELS
    assert set(result.probabilities) == set(CATEGORIES)
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert result.distortions and all(d.category in CATEGORIES for d in result.distortions)
    maps = result.frame_heatmaps
    assert maps.shape == (8, 56, 56) and maps.min() >= 0 and maps.max() == pytest.approx(1.0)
    assert result.strip.shape == (56, 168, 3) and result.strip_heatmap.shape == (56, 168)
    views = np.split(result.strip_heatmap, 3, axis=1)
    assert not np.allclose(views[1], views[2])  # frames 4 and 5 share a temporal patch but not a map
    assert np.array_equal(views[0], maps[2]) and np.array_equal(views[2], maps[5])
    assert len(result.frame_indices) == 8 and "The model answered" in result.summary
    assert JudgeResult.from_dict(result.to_dict()).to_dict() == result.to_dict()


def test_score_gradient_matches_finite_differences(tiny_judge, clip):
    """The heatmaps' gradient: its directional derivatives match central differences of the scores."""
    from judge.lmm.saliency import score_gradient
    from judge.lmm.scoring import one_token_mos

    lm = load_lmm(tiny_judge.config)
    lm.model.double()
    video = tiny_judge.video(clip)
    batch = encode_prompts(lm.tokenizer, [score_prompt("quality"), score_prompt("authenticity")], video)
    batch["pixel_values_videos"] = batch["pixel_values_videos"].double()
    ids = level_token_ids(lm.tokenizer)
    grad = score_gradient(lm.model, batch, ids)
    assert grad.shape == batch["pixel_values_videos"].shape

    def total(pixels):
        with torch.no_grad():
            logits = lm.model(**{**batch, "pixel_values_videos": pixels}).logits[:, -1]
        return one_token_mos(logits, ids).sum().item()

    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        direction = torch.randn(grad.shape, generator=generator, dtype=torch.float64)
        direction /= direction.norm()
        eps = 0.1  # the model keeps some float32 (RMSNorm), so smaller steps drown in rounding
        numeric = (total(batch["pixel_values_videos"] + eps * direction)
                   - total(batch["pixel_values_videos"] - eps * direction)) / (2 * eps)
        assert (grad * direction).sum().item() == pytest.approx(numeric, rel=5e-3, abs=1e-7)


def test_strip_frames_are_the_quarter_points():
    assert strip_frames(8) == [2, 4, 5] and strip_frames(1) == [0, 0, 0]


def test_ask_generates_an_answer(tiny_judge, clip):
    answer = tiny_judge.ask(clip, "Is the mouth distorted?")
    assert answer.answered and answer.text
    assert not tiny_judge.ask(clip, "  ").answered
    with pytest.raises(LMMError, match="keep it under 300"):
        tiny_judge.ask(clip, "why " * 100)


def test_adapter_saved_and_loaded_reproduces_outputs(tiny_model, clip, tmp_path):
    from peft import LoraConfig, get_peft_model

    from judge.lmm.adapter import build_heads, save_adapter

    config = LMMConfig(model=tiny_model, side=56, max_new_tokens=8, device="cpu")
    lm = load_lmm(config)
    base = LMMJudge(config, loaded=load_lmm(config)).evaluate(LMMJudge(config, loaded=lm).video(clip))
    torch.manual_seed(1)
    lm.model = get_peft_model(lm.model, LoraConfig(r=8, lora_alpha=32, target_modules="all-linear",
                                                   init_lora_weights=False))
    meta = {"heads": ["score", "saliency"], "saliency": {"depths": 2, "width": 16, "out_size": 24}}
    lm.heads = build_heads(meta, lm.hidden_size)
    in_memory = LMMJudge(config, loaded=lm)
    before = in_memory.evaluate(in_memory.video(clip))
    save_adapter(lm.model, lm.heads, meta, tmp_path / "adapter")

    loaded = LMMJudge(LMMConfig(model=tiny_model, adapter=str(tmp_path / "adapter"), side=56, max_new_tokens=8,
                                device="cpu"))
    after = loaded.evaluate(loaded.video(clip))
    assert loaded.name.endswith("+adapter") and after.heatmap_source == "saliency head"
    assert after.mos == pytest.approx(before.mos, abs=1e-4)
    assert after.one_token_mos == pytest.approx(before.one_token_mos, abs=1e-4)
    assert after.answer == before.answer
    assert np.allclose(after.heatmaps, before.heatmaps, atol=1e-5)
    assert after.one_token_mos != pytest.approx(base.one_token_mos, abs=1e-3)  # the adapter does change the model


def test_missing_model_and_bad_devices_are_clear_errors(monkeypatch, tiny_model):
    monkeypatch.delenv("FACELAB_LMM_MODEL", raising=False)
    with pytest.raises(LMMError, match="--lmm-model"):
        LMMJudge()
    with pytest.raises(LMMError, match="not a device torch knows"):
        LMMConfig(model=tiny_model, device="bogus").resolved()
    if not torch.cuda.is_available():
        with pytest.raises(LMMError, match="sees no CUDA GPU"):
            LMMConfig(model=tiny_model, device="cuda").resolved()


def test_adapters_that_do_not_fit_are_refused(tiny_model, tmp_path):
    import json

    from peft import LoraConfig, get_peft_model

    from judge.lmm.adapter import build_heads, save_adapter

    lm = load_lmm(LMMConfig(model=tiny_model, device="cpu"))
    lm.model = get_peft_model(lm.model, LoraConfig(r=2, target_modules="all-linear"))
    meta = {"heads": ["score"], "base_model": "tiny"}
    save_adapter(lm.model, build_heads(meta, lm.hidden_size), meta, tmp_path / "a")
    config = LMMConfig(model=tiny_model, adapter=str(tmp_path / "a"), device="cpu")
    stored = json.loads((tmp_path / "a" / "facelab_lmm.json").read_text())
    (tmp_path / "a" / "facelab_lmm.json").write_text(json.dumps({**stored, "prompts_version": 0}))
    with pytest.raises(LMMError, match="prompts version 0"):
        load_lmm(config)
    (tmp_path / "a" / "facelab_lmm.json").write_text(json.dumps({**stored, "heads": ["score", "saliency"]}))
    with pytest.raises(LMMError, match="does not fit this model"):  # a saliency head listed but not saved
        load_lmm(config)


def test_other_checkpoints_and_bad_adapters_are_refused(tmp_path, tiny_model):
    from transformers import BertConfig

    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8).save_pretrained(tmp_path)
    with pytest.raises(LMMError, match="'bert' checkpoint"):
        read_config(str(tmp_path))
    with pytest.raises(LMMError, match="Could not read the LMM checkpoint"):
        read_config(str(tmp_path / "missing"))
    with pytest.raises(LMMError, match="not an LMM judge adapter"):
        load_lmm(LMMConfig(model=tiny_model, adapter=str(tmp_path), device="cpu"))


def test_a_7b_model_on_the_cpu_is_refused_unless_allowed(config_7b):
    with pytest.raises(LMMError, match=r"8\.\d B parameters on the CPU.*--backend embedded"):
        load_lmm(LMMConfig(model=config_7b, device="cpu"))
    config = read_config(config_7b)  # the check counts parameters on the meta device: no weights needed
    check_speed(config, torch.device("cpu"), allow_cpu=True)
    check_speed(config, torch.device("cuda"), allow_cpu=False)


def test_qwen2_vl_checkpoints_are_judged_too(tmp_path, clip):
    from judge.lmm.random_model import build_checkpoint

    folder = build_checkpoint(tmp_path / "tiny-qwen2-vl", family="qwen2-vl")
    judge = LMMJudge(LMMConfig(model=str(folder), side=56, max_new_tokens=4, device="cpu"))
    result = judge.judge(clip)
    assert judge.loaded.model_type == "qwen2_vl" and result.backend == "lmm-judge:tiny-qwen2-vl"
    assert 0 <= result.quality.mos <= 100 and result.frame_heatmaps.shape == (8, 56, 56)
