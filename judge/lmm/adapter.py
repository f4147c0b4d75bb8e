"""The adapter folder ``python -m judge.train_lmm`` writes and the judge reads.

    adapter_config.json, adapter_model.safetensors   peft's LoRA adapter
    facelab_lmm.json                                 format, base model, prompts version, heads, training, metrics
    heads.safetensors                                score heads ("score.quality.*", "score.authenticity.*")
                                                     and the saliency head ("saliency.*"), when trained
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from judge.lmm.checkpoint import ADAPTER_FORMAT, ADAPTER_META, HEADS_FILE, LMMError
from judge.lmm.heads import SaliencyHead, ScoreHead
from judge.lmm.prompts import DIMENSIONS, PROMPTS_VERSION


def read_meta(folder: str | Path) -> dict:
    """``facelab_lmm.json`` of an adapter folder; LMMError when the folder is not one."""
    path = Path(folder) / ADAPTER_META
    if not path.exists():
        raise LMMError(f"{folder} is not an LMM judge adapter (no {ADAPTER_META}); make one with "
                       f"python -m judge.train_lmm DATA --lmm-model MODEL --out FOLDER.")
    meta = json.loads(path.read_text())
    if meta.get("format") != ADAPTER_FORMAT:
        raise LMMError(f"{path} has format {meta.get('format')!r}; this judge reads {ADAPTER_FORMAT!r}.")
    if meta.get("prompts_version") != PROMPTS_VERSION:
        raise LMMError(f"{folder} was trained on prompts version {meta.get('prompts_version')}; this judge asks "
                       f"version {PROMPTS_VERSION}. Train the adapter again.")
    return meta


def build_heads(meta: dict, hidden: int) -> dict[str, torch.nn.Module]:
    """Fresh heads of the kinds ``meta["heads"]`` lists ("score", "saliency")."""
    heads: dict[str, torch.nn.Module] = {}
    if "score" in meta.get("heads", []):
        for dim in DIMENSIONS:
            heads[f"score.{dim}"] = ScoreHead(hidden)
    if "saliency" in meta.get("heads", []):
        heads["saliency"] = SaliencyHead(hidden, **meta.get("saliency", {}))
    return heads


def load_heads(folder: str | Path, meta: dict, hidden: int) -> dict[str, torch.nn.Module]:
    from safetensors.torch import load_file

    heads = build_heads(meta, hidden)
    if not heads:
        return heads
    state = load_file(str(Path(folder) / HEADS_FILE))
    for name, head in heads.items():
        head.load_state_dict({k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")})
    return heads


def save_adapter(model, heads: dict[str, torch.nn.Module], meta: dict, folder: str | Path) -> Path:
    """Write the LoRA adapter, the heads and ``facelab_lmm.json``. A model without LoRA (heads trained
    alone) gets an untrained one (its B matrices are zero: it changes nothing), so the folder always
    loads the same way and never holds the base weights."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from safetensors.torch import save_file

    folder = Path(folder)
    if not isinstance(model, PeftModel):
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=32, target_modules="all-linear"))
    model.save_pretrained(str(folder))
    if heads:
        save_file({f"{name}.{k}": v.detach().cpu().contiguous() for name, head in heads.items()
                   for k, v in head.state_dict().items()}, str(folder / HEADS_FILE))
    meta = {**meta, "format": ADAPTER_FORMAT, "prompts_version": PROMPTS_VERSION,
            "heads": sorted({name.split(".")[0] for name in heads})}
    (folder / ADAPTER_META).write_text(json.dumps(meta, indent=1))
    return folder
