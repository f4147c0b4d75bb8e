"""The vision-language-model judge: a Qwen2.5-VL (or Qwen2-VL) checkpoint through transformers, with an
optional LoRA adapter (peft) trained by ``python -m judge.train_lmm``.

Importing this package imports neither torch nor transformers; ``LMMJudge`` loads them on first use.
"""
