"""Loading a Qwen2.5-VL / Qwen2-VL checkpoint and an optional adapter, lazily and with clear errors.

A checkpoint is a hub id or a local folder in the transformers layout (config.json, weights, tokenizer,
preprocessor_config.json). An adapter is a folder written by ``python -m judge.train_lmm``: a peft LoRA
adapter plus ``facelab_lmm.json`` and, when trained, ``heads.safetensors`` (score and saliency heads).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from face_nerf.errors import FaceLabError

MODEL_ENV = "FACELAB_LMM_MODEL"
ADAPTER_ENV = "FACELAB_LMM_ADAPTER"
STATIC_CACHE_ENV = "FACELAB_LMM_STATIC_CACHE"  # "0": decode eagerly on a GPU too; "1": a static cache on a CPU too
ADAPTER_META = "facelab_lmm.json"
ADAPTER_FORMAT = "facelab-lmm-adapter/1"
HEADS_FILE = "heads.safetensors"
VIDEO_TOKEN = "<|video_pad|>"
MODEL_CLASSES = {"qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration", "qwen2_vl": "Qwen2VLForConditionalGeneration"}
CPU_FLOPS = 5e10  # what torch reaches on a small CPU (2 cores); for refusing what would take minutes
MAX_CPU_SECONDS = 60.0
JUDGEMENT_TOKENS = 3 * 1400  # three prompts of ~1,400 tokens (1,296 video tokens each)


class LMMError(FaceLabError):
    """The LMM judge cannot run as configured (no model, missing package, too slow here)."""


@dataclass
class LMMConfig:
    """How the LMM judge runs.

    Attributes:
        model: hub id or local folder of a Qwen2.5-VL / Qwen2-VL checkpoint (default ``$FACELAB_LMM_MODEL``).
        adapter: folder from ``python -m judge.train_lmm`` (default ``$FACELAB_LMM_ADAPTER``; none if unset).
        frames: frames sampled across the turntable (the published judge: 8).
        side: frames are resized to at most side x side pixels (504: 36 x 36 patches each).
        max_new_tokens: length limit of generated answers (distortions, questions).
        device: "cuda", "cpu", ... (default: CUDA when available).
        allow_cpu: run on the CPU even when that would take minutes (tests and tiny models need not).
        heatmaps: compute heatmaps (saliency head, else the score's gradient); off saves a backward pass.
        static_cache: decode with a static KV cache, which transformers compiles on a GPU (torch.compile of
            the decoding step: 0.84 s per judgement on an H200 against 1.72 s eagerly on the same host,
            the eager loop being bound by the host's kernel launches). None: ``$FACELAB_LMM_STATIC_CACHE``
            ("0" or "1") if set, else on for CUDA and off for the CPU. ``LMMJudge.warm_up`` compiles.
    """

    model: str | None = None
    adapter: str | None = None
    frames: int = 8
    side: int = 504
    max_new_tokens: int = 32
    device: str | None = None
    allow_cpu: bool = False
    heatmaps: bool = True
    static_cache: bool | None = None

    def resolved(self) -> "LMMConfig":
        """With the environment's defaults filled in; raises LMMError when no model is configured or the
        device cannot be used."""
        model = self.model or os.environ.get(MODEL_ENV)
        if not model:
            raise LMMError(f"No LMM checkpoint configured: pass --lmm-model (a hub id such as "
                           f"Qwen/Qwen2.5-VL-7B-Instruct, or a local folder) or set ${MODEL_ENV}.")
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            kind = torch.device(device).type
        except RuntimeError as err:
            raise LMMError(f"{device!r} is not a device torch knows; use cuda, cuda:1, cpu, ...") from err
        if kind == "cuda" and not torch.cuda.is_available():
            raise LMMError(f"The device {device!r} was asked for, but torch sees no CUDA GPU here; run on a GPU "
                           f"machine or use --device cpu (slow for a full-size model).")
        static = default_static_cache(kind) if self.static_cache is None else self.static_cache
        return replace(self, model=model, adapter=self.adapter or os.environ.get(ADAPTER_ENV) or None, device=device,
                       static_cache=static)


def default_static_cache(device_type: str) -> bool:
    """Whether the judge decodes with a (compiled) static cache when the config leaves it open:
    ``$FACELAB_LMM_STATIC_CACHE`` ("0" or "1") if set, else on CUDA only (on a CPU transformers compiles
    nothing, and the static cache would only attend over its empty tail)."""
    value = os.environ.get(STATIC_CACHE_ENV, "").strip()
    if value not in ("", "0", "1"):
        raise LMMError(f"${STATIC_CACHE_ENV} must be 0 (eager decoding) or 1 (the static cache, compiled on a GPU), "
                       f"or unset (the static cache on a GPU only). Got {value!r}.")
    return value == "1" if value else device_type == "cuda"


@dataclass
class LoadedLMM:
    """A loaded checkpoint (and adapter): what the judge and the trainer work with."""

    model: torch.nn.Module
    tokenizer: object
    image_processor: object
    model_type: str
    heads: dict[str, torch.nn.Module] = field(default_factory=dict)
    adapter_meta: dict = field(default_factory=dict)
    name: str = ""
    level_ids: list[int] | None = None  # token ids of the five level words (default: from the tokenizer)

    def __post_init__(self):
        from judge.lmm.scoring import level_token_ids

        if self.level_ids is None:
            self.level_ids = level_token_ids(self.tokenizer)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def hidden_size(self) -> int:
        return text_config(self.model.config).hidden_size

    @property
    def video_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(VIDEO_TOKEN)

    def video(self, clip, frames: int, side: int):
        """A clip's frames sampled and patched for this model (``judge.lmm.inputs.VideoInput``)."""
        from judge.lmm.inputs import sample_video

        return sample_video(clip.frames, self.image_processor, frames, side, clip.fps, clip.source_frames,
                            clip.indices)

    def batch(self, prompts: list[str], video, answers: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Prompts over one video as this model's keyword arguments, on its device."""
        from judge.lmm.inputs import encode_prompts

        batch = encode_prompts(self.tokenizer, prompts, video, answers, with_seconds=self.model_type == "qwen2_5_vl",
                               video_token=VIDEO_TOKEN)
        return {k: v.to(self.device) for k, v in batch.items()}

    def encoded_batch(self, prompts: list[str], video) -> dict:
        """``batch`` with the video through the vision tower once, shared by every row: the pixels are
        replaced by ``mm_encoder_outputs`` (which generate() and forward() accept)."""
        batch = self.batch(prompts, video)
        pixels, grid = batch.pop("pixel_values_videos"), batch["video_grid_thw"]
        backbone = (self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model).model
        with torch.no_grad():
            encoded = backbone.get_video_features(pixels[:int(grid[0].prod())], grid[:1], return_dict=True)
        encoded.pooler_output = tuple(encoded.pooler_output) * len(prompts)
        batch["mm_encoder_outputs"] = {"video": encoded}
        return batch


def text_config(config):
    """The language model's config (transformers 5 keeps it under ``text_config``)."""
    return getattr(config, "text_config", config)


def _transformers():
    try:
        import transformers
    except ImportError as err:
        raise LMMError("The LMM judge needs transformers and peft: pip install transformers peft.") from err
    return transformers


def read_config(model: str):
    """The checkpoint's config (no weights read); LMMError when it is not a Qwen2(.5)-VL checkpoint."""
    transformers = _transformers()
    try:
        config = transformers.AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as err:
        raise LMMError(f"Could not read the LMM checkpoint {model!r} ({err}). Give a local folder in the "
                       f"transformers layout or a hub id reachable from here (--lmm-model or ${MODEL_ENV}).") from err
    if config.model_type not in MODEL_CLASSES:
        raise LMMError(f"{model!r} is a {config.model_type!r} checkpoint; the LMM judge reads "
                       f"{' or '.join(MODEL_CLASSES)} (Qwen2.5-VL, Qwen2-VL).")
    return config


def model_class(model_type: str):
    return getattr(_transformers(), MODEL_CLASSES[model_type])


def parameter_count(config) -> int:
    """Parameters of the model a config describes, counted on the meta device (nothing allocated)."""
    with torch.device("meta"):
        model = model_class(config.model_type)._from_config(config)
    return sum(p.numel() for p in model.parameters())


def check_speed(config, device: torch.device, allow_cpu: bool) -> None:
    """Refuse a CPU run that would take over MAX_CPU_SECONDS per judgement (unless allowed)."""
    if device.type != "cpu" or allow_cpu:
        return
    params = parameter_count(config)
    seconds = 2 * params * JUDGEMENT_TOKENS / CPU_FLOPS
    if seconds > MAX_CPU_SECONDS:
        raise LMMError(f"The LMM judge would run a model of {params / 1e9:.1f} B parameters on the CPU here, about "
                       f"{seconds / 60:.0f} min per judgement. Run it on a machine with a GPU, allow the CPU "
                       f"anyway (--lmm-allow-cpu), or use the embedded judge (--backend embedded).")


def load_lmm(config: LMMConfig) -> LoadedLMM:
    """Load the checkpoint (bf16 on a GPU, fp32 on a CPU), its tokenizer and image processor, and the
    adapter with its heads when configured. Everything is frozen and in eval mode."""
    from judge.lmm.adapter import read_meta
    from judge.lmm.scoring import level_token_ids

    config = config.resolved()
    transformers = _transformers()
    device = torch.device(config.device)
    model_config = read_config(config.model)
    meta = read_meta(config.adapter) if config.adapter else None  # a bad adapter folder fails before the weights load
    check_speed(model_config, device, config.allow_cpu)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(config.model)
        level_ids = level_token_ids(tokenizer)  # checked before the weights load
        image_processor = transformers.AutoImageProcessor.from_pretrained(config.model, backend="pil")
        model = model_class(model_config.model_type).from_pretrained(config.model, dtype=dtype)
    except (OSError, ValueError) as err:
        raise LMMError(f"Could not load the LMM checkpoint {config.model!r} ({err}).") from err
    loaded = LoadedLMM(model, tokenizer, image_processor, model_config.model_type,
                       name=f"lmm-judge:{Path(config.model.rstrip('/')).name}", level_ids=level_ids)
    if config.adapter:
        attach_adapter(loaded, config.adapter, meta)
    loaded.model.to(device).eval().requires_grad_(False)
    for head in loaded.heads.values():
        head.to(device).eval().requires_grad_(False)
    return loaded


def attach_adapter(loaded: LoadedLMM, folder: str | Path, meta: dict) -> None:
    """Wrap the model with the LoRA adapter in ``folder`` and load the heads it carries (``meta``: its
    ``facelab_lmm.json``)."""
    from judge.lmm.adapter import load_heads

    try:
        from peft import PeftModel
    except ImportError as err:
        raise LMMError("LoRA adapters need peft: pip install peft.") from err
    folder = Path(folder)
    try:
        loaded.model = PeftModel.from_pretrained(loaded.model, str(folder))
        loaded.heads = load_heads(folder, meta, loaded.hidden_size)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise LMMError(f"The adapter {folder} does not fit this model ({type(err).__name__}: {str(err)[:200]}); it was "
                       f"trained on {meta.get('base_model')!r}. Use that base model or train a new adapter.") from err
    loaded.adapter_meta = meta
    loaded.name = f"{loaded.name}+{folder.name}"
