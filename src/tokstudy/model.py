"""The one place that builds, loads and saves the project's causal LMs.

What it does
    :func:`build_model` makes a fresh, seeded ``LlamaForCausalLM`` of a named
    size (``params.yaml`` ``train.sizes``); :func:`tiny_model` a small random
    causal LM for tests and smoke runs; :func:`load_model` reads a local HF
    model directory (no hub access) and rejects what is not a causal LM or does
    not load, naming the directory or file; :func:`save_model` writes one
    atomically with its tokenizer. :func:`param_counts` / :func:`flops_per_token`
    describe a model for MFU and the results table.

What it does not do
    No training, no devices (callers move the model), no tokenizer training.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import torch

from tokstudy import paths
from tokstudy.errors import ModelError
from tokstudy.params import ModelSize

log = logging.getLogger(__name__)

SPECIAL_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "pad_token": "<pad>"}
BOS_ID, EOS_ID, PAD_ID = 0, 1, 2  # the order of params.TokenizerVariant.special_tokens
WEIGHT_FILES = (
    "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"
)


def build_model(size: ModelSize, vocab_size: int, *, seed: int = 0, max_seq_len: int = 4096):
    """A fresh ``LlamaForCausalLM`` of ``size``, its weights drawn from ``seed``.

    The embedding has ``vocab_size`` rounded up to ``size.pad_vocab_to``
    rows (nanoGPT's 50257 -> 50304); the tokenizer keeps its true size.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    pad = max(1, size.pad_vocab_to)
    config = LlamaConfig(
        vocab_size=math.ceil(vocab_size / pad) * pad,
        hidden_size=size.d_model,
        intermediate_size=size.d_ff,
        num_hidden_layers=size.n_layers,
        num_attention_heads=size.n_heads,
        num_key_value_heads=size.n_kv_heads or size.n_heads,
        max_position_embeddings=max_seq_len,
        rope_theta=size.rope_theta,
        tie_word_embeddings=size.tie_embeddings,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def tiny_model(vocab_size: int, *, tie: bool = False, arch: str = "llama", seed: int = 0, hidden: int = 32,
               layers: int = 2, heads: int = 2, ff: int = 64, max_positions: int = 512, **overrides):
    """A small random causal LM (``llama`` or ``gpt2``, eval mode) for tests and the smoke profile.

    Seeds the global torch RNG with ``seed`` (as the callers always did).
    """
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    torch.manual_seed(seed)
    if arch == "llama":
        cfg = LlamaConfig(
            vocab_size=vocab_size, hidden_size=hidden, intermediate_size=ff, num_hidden_layers=layers,
            num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_positions,
            tie_word_embeddings=tie, **overrides,
        )
    elif arch == "gpt2":
        cfg = GPT2Config(vocab_size=vocab_size, n_embd=hidden, n_layer=layers, n_head=heads, n_positions=max_positions,
                         tie_word_embeddings=tie, **overrides)
    else:
        raise ModelError(f"tiny_model: unknown arch {arch!r}; use 'llama' or 'gpt2'")
    return AutoModelForCausalLM.from_config(cfg).eval()


def check_model_dir(directory: str | Path) -> Path:
    """``directory`` if it holds ``config.json`` and weights, else :class:`ModelError` naming what is missing."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelError(f"no model directory at {directory}")
    missing = [] if (directory / "config.json").is_file() else ["config.json"]
    if not any((directory / f).is_file() for f in WEIGHT_FILES):
        missing.append("model weights (" + " / ".join(WEIGHT_FILES) + ")")
    if missing:
        raise ModelError(f"model directory {directory} is incomplete, missing {', '.join(missing)}")
    return directory


def _check_causal(directory: Path) -> None:
    """Reject encoders (BERT & co.): loading one as a causal LM gives a random LM head, silently."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    try:
        config = AutoConfig.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ModelError(f"{directory / 'config.json'} is not a readable HF config: {str(e).splitlines()[0]}") from e
    archs = getattr(config, "architectures", None) or []
    causal = config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not getattr(config, "is_encoder_decoder", False)
    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        causal = False  # BERT & co. have a causal-LM class, but as encoders they attend both ways
    if not causal or (archs and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)):
        kind = ", ".join(archs) or config.model_type
        raise ModelError(
            f"{directory} holds a {kind} model, not a causal (decoder-only) LM; pass a causal LM directory"
        )


def load_model(directory: str | Path, vocab_size: int | None = None, *, dtype: torch.dtype = torch.float32):
    """Load a local HF causal-LM directory (default fp32, no hub access).

    Raises :class:`ModelError` naming the directory when it is incomplete, holds
    an encoder, has fewer embedding rows than ``vocab_size``, or its weights do not load.
    """
    from transformers import AutoModelForCausalLM

    directory = check_model_dir(directory)
    _check_causal(directory)
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            directory, dtype=dtype, local_files_only=True, output_loading_info=True
        )
    except Exception as e:  # noqa: BLE001 - safetensors/torch raise many types; all mean "this file is damaged"
        files = [f for f in WEIGHT_FILES if (directory / f).is_file()]
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise ModelError(f"could not load the weights {directory / files[0]} ({type(e).__name__}: {first}); "
                         "re-create or re-download the model") from e
    if info.get("missing_keys"):
        missing = ", ".join(sorted(info["missing_keys"])[:3])
        raise ModelError(f"{directory} lacks weights the model needs ({missing}, ...): "
                         "they would be random; pass a complete causal LM directory")
    rows = model.get_input_embeddings().num_embeddings
    if vocab_size is not None and rows < vocab_size:
        raise ModelError(
            f"{directory} has {rows} embedding rows but the tokenizer has {vocab_size} tokens; "
            "transfer the model to this tokenizer first (tokstudy.transfer.swap_tokenizer)"
        )
    return model


def save_model(model, out_dir: str | Path, tokenizer: Any = None) -> Path | None:
    """Write an HF model directory (+ tokenizer) atomically; only rank 0 writes, others return None."""
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    out_dir = Path(out_dir)
    with paths.atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            hf_tokenizer(tokenizer).save_pretrained(tmp)
    log.info("saved model to %s", out_dir)
    return out_dir


def hf_tokenizer(tokenizer: Any):
    """A ``PreTrainedTokenizerFast`` from one, a TokenizerHandle (``to_hf``) or a tokenizer.json path."""
    if hasattr(tokenizer, "save_pretrained"):
        return tokenizer
    if hasattr(tokenizer, "to_hf"):
        return tokenizer.to_hf()
    from transformers import PreTrainedTokenizerFast

    path = Path(tokenizer)
    tok_file = path / "tokenizer.json" if path.is_dir() else path
    return PreTrainedTokenizerFast(tokenizer_file=str(tok_file), **SPECIAL_TOKENS)


def param_counts(model) -> dict[str, int]:
    """Total, input-embedding, untied LM-head and body parameter counts (the vocab moves the first two)."""
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    n_head = 0 if head is emb else head.numel()
    return {
        "params": total,
        "params_embedding": emb.numel(),
        "params_lm_head": n_head,
        "params_body": total - emb.numel() - n_head,
    }


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token: ``6 N + 12 L d T`` (N excludes the embedding lookup unless tied)."""
    c = param_counts(model)
    n_matmul = c["params"] - (c["params_embedding"] if c["params_lm_head"] else 0)
    cfg = model.config
    return 6.0 * n_matmul + 12.0 * cfg.num_hidden_layers * cfg.hidden_size * seq_len
