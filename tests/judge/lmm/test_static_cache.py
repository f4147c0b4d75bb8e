"""The static KV cache (compiled decoding on a GPU): when it is on, that every clip decodes at one cache
length (so the compiled step never compiles again), that it judges as eager decoding does, that the
warm-up judges once at full size where it pays, and that the model keeps to one thread."""

import numpy as np
import pytest
import torch

from judge.frames import load_clip
from judge.lmm.checkpoint import STATIC_CACHE_ENV, LMMConfig, LMMError, default_static_cache
from judge.lmm.judge import JUDGEMENT_PROMPTS, LMMJudge, full_size_clip
from tests.judge.lmm.conftest import random_frames


@pytest.fixture
def static_judge(tiny_model):
    return LMMJudge(LMMConfig(model=tiny_model, side=56, max_new_tokens=8, device="cpu", heatmaps=False,
                              static_cache=True))


def spy_generate(judge: LMMJudge, monkeypatch) -> list:
    """(keyword arguments, output) of every generate() call the judge makes from now on."""
    model = judge.loaded.model
    real, outputs = model.generate, []

    def generate(**kwargs):
        outputs.append((kwargs, real(**kwargs)))
        return outputs[-1][1]

    monkeypatch.setattr(model, "generate", generate)
    return outputs


def test_static_cache_is_on_for_cuda_and_off_for_the_cpu(monkeypatch, tiny_model):
    monkeypatch.delenv(STATIC_CACHE_ENV, raising=False)
    assert default_static_cache("cuda") and not default_static_cache("cpu")
    assert LMMConfig(model=tiny_model, device="cpu").resolved().static_cache is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # resolving needs no GPU, only its presence
    assert LMMConfig(model=tiny_model, device="cuda").resolved().static_cache is True
    assert LMMConfig(model=tiny_model).resolved().static_cache is True  # the device defaults to CUDA too


def test_the_environment_then_the_config_override_the_device_default(monkeypatch, tiny_model):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv(STATIC_CACHE_ENV, "0")
    assert LMMConfig(model=tiny_model, device="cuda").resolved().static_cache is False
    assert LMMConfig(model=tiny_model, device="cuda", static_cache=True).resolved().static_cache is True
    monkeypatch.setenv(STATIC_CACHE_ENV, "1")
    assert LMMConfig(model=tiny_model, device="cpu").resolved().static_cache is True
    assert LMMConfig(model=tiny_model, device="cuda", static_cache=False).resolved().static_cache is False
    monkeypatch.setenv(STATIC_CACHE_ENV, "yes")
    with pytest.raises(LMMError, match=f"\\${STATIC_CACHE_ENV} must be 0 .* Got 'yes'"):
        LMMConfig(model=tiny_model, device="cpu").resolved()


def test_a_judge_of_a_loaded_model_takes_the_default_of_its_device(monkeypatch, tiny_judge):
    monkeypatch.delenv(STATIC_CACHE_ENV, raising=False)
    assert LMMJudge(LMMConfig(model="x"), loaded=tiny_judge.loaded).config.static_cache is False
    monkeypatch.setenv(STATIC_CACHE_ENV, "1")
    assert LMMJudge(LMMConfig(model="x"), loaded=tiny_judge.loaded).config.static_cache is True
    assert LMMJudge(LMMConfig(model="x", static_cache=False), loaded=tiny_judge.loaded).config.static_cache is False


def test_every_clip_decodes_at_one_cache_length(static_judge, monkeypatch):
    """A square turntable, a 2:1 one and a single image give prompts of different lengths, yet all
    decode with a static cache of ``cache_length``: the prompts over the full-size video plus the answer."""
    outputs = spy_generate(static_judge, monkeypatch)
    clips = [load_clip(random_frames(16, 64)), load_clip(random_frames(16, 64)[:, :32]),
             load_clip(random_frames(1, 64)[0])]
    lengths = set()
    for clip in clips:
        video = static_judge.video(clip)
        lengths.add(static_judge.loaded.batch(list(JUDGEMENT_PROMPTS), video)["input_ids"].shape[1])
        static_judge.evaluate(video)
    full = static_judge.loaded.batch(list(JUDGEMENT_PROMPTS), static_judge.video(full_size_clip(static_judge.config)))
    assert len(lengths) == 3 and max(lengths) <= full["input_ids"].shape[1]
    assert static_judge.cache_length == full["input_ids"].shape[1] + static_judge.config.max_new_tokens
    cache_lengths = {out.past_key_values.layers[0].keys.shape[2] for _, out in outputs}
    assert cache_lengths == {static_judge.cache_length}


def test_the_static_cache_judges_as_eager_decoding_does(static_judge, tiny_model):
    eager = LMMJudge(LMMConfig(model=tiny_model, side=56, max_new_tokens=8, device="cpu", heatmaps=False,
                               static_cache=False), loaded=static_judge.loaded)
    video = static_judge.video(load_clip(random_frames(16, 64)[:, :48]))
    fast, slow = static_judge.evaluate(video), eager.evaluate(video)
    assert fast.one_token_mos == pytest.approx(slow.one_token_mos, abs=1e-4)
    assert np.allclose(fast.level_probabilities, slow.level_probabilities, atol=1e-5)
    assert fast.answer == slow.answer


def test_warm_up_judges_once_at_full_size_where_it_pays(static_judge, tiny_model, monkeypatch):
    outputs = spy_generate(static_judge, monkeypatch)
    assert static_judge.warm_up() > 0.0
    full_tokens = static_judge.video(full_size_clip(static_judge.config)).tokens
    sequences = outputs[0][1].sequences
    assert len(outputs) == 1 and int((sequences == static_judge.loaded.video_token_id).sum()) == 3 * full_tokens
    eager = LMMJudge(LMMConfig(model=tiny_model, side=56, device="cpu", static_cache=False), loaded=static_judge.loaded)
    assert eager.warm_up() == 0.0 and len(outputs) == 1  # the CPU without the static cache: nothing to pay once


def test_questions_decode_eagerly(static_judge, monkeypatch):
    """A question is one row of its own length: it would compile another decoding step, so it does not
    use the static cache."""
    outputs = spy_generate(static_judge, monkeypatch)
    static_judge.ask(load_clip(random_frames(16, 64)), "Is the mouth distorted?")
    static_judge.judge(load_clip(random_frames(16, 64)))
    (asked, _), (judged, _) = outputs
    assert "cache_implementation" not in asked and "max_cache_len" not in asked
    assert judged["cache_implementation"] == "static" and judged["max_cache_len"] == static_judge.cache_length


def test_the_model_runs_on_one_thread_whichever_thread_asks(static_judge, monkeypatch):
    """CUDA graphs of the compiled step are recorded per thread, and the model keeps per-call state: the
    warm-up's thread is the one every later request's model pass runs on."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    threads = []
    real = static_judge.loaded.model.generate
    monkeypatch.setattr(static_judge.loaded.model, "generate",
                        lambda **kwargs: threads.append(threading.current_thread()) or real(**kwargs))
    clip = load_clip(random_frames(16, 64))
    static_judge.warm_up()
    for _ in range(2):
        with ThreadPoolExecutor(1) as request:  # a new request thread each time, as a web server's pool may give
            request.submit(static_judge.judge, clip).result()
    static_judge.evaluate(static_judge.video(clip))
    assert len(threads) == 4 and len(set(threads)) == 1 and threads[0] is not threading.current_thread()
