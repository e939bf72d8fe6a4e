"""A causal LM loaded for evaluation: the device it runs on, its special tokens, tiny random ones.

The one place evaluation picks a device (:func:`pick_device`): CUDA with bf16
when available (or asked for), else CPU with fp32.  Training picks its devices
in :mod:`tokstudy.distributed`; no other module knows about CUDA.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from tokstudy.errors import EvaluateError

log = logging.getLogger(__name__)

BOS_TOKEN = "<|begin_of_text|>"
EOS_TOKEN = "<|end_of_text|>"
PAD_TOKEN = "<pad>"


def pick_device(device: str | None = None):
    """``(torch.device, dtype)``: CUDA with bf16 when available (or asked for), else CPU with fp32."""
    import torch

    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EvaluateError("device 'cuda' asked for but torch sees no GPU; "
                            "use --device cpu (or evaluate.device: auto in params.yaml)")
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    return dev, dtype


def sync(device) -> None:
    """Wait for queued CUDA work on ``device`` (a no-op on CPU), so wall-clock timings are honest."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize()


def is_model_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a saved HF model (its ``config.json``)."""
    return (Path(path) / "config.json").is_file()


def load_model(model_dir: str | os.PathLike, device: str | None = None):
    """Load an HF causal LM and its tokenizer from ``model_dir``; eval mode, on the picked device."""
    from transformers import AutoTokenizer

    from tokstudy import model as model_mod

    model_dir = Path(model_dir)
    if not is_model_dir(model_dir):
        raise EvaluateError(f"no model at {model_dir} (config.json missing); give the directory of a trained model")
    dev, dtype = pick_device(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = model_mod.load_model(model_dir, dtype=dtype).to(dev).eval()
    log.info("loaded %s (%s, %s, vocab %d)", model_dir, dev, dtype, len(tokenizer))
    return model, tokenizer


def special_id(tokenizer, attr: str, token: str) -> int | None:
    """The id of a special token: ``tokenizer.<attr>``, else the id of ``token`` if the vocabulary has it."""
    value = getattr(tokenizer, attr, None)
    if value is not None:
        return int(value)
    tid = tokenizer.convert_tokens_to_ids(token)
    unk = getattr(tokenizer, "unk_token_id", None)
    return int(tid) if tid is not None and tid != unk else None


def bos_id(tokenizer) -> int:
    """The id every window and prompt starts with: BOS, else EOS (a document separator)."""
    tid = special_id(tokenizer, "bos_token_id", BOS_TOKEN)
    if tid is None:
        tid = special_id(tokenizer, "eos_token_id", EOS_TOKEN)
    if tid is None:
        raise EvaluateError(
            f"tokenizer has neither a BOS ({BOS_TOKEN}) nor an EOS ({EOS_TOKEN}) token; "
            "set tokenizer.bos_token before evaluating"
        )
    return tid


def eos_id(tokenizer) -> int | None:
    """The end-of-text id, or None when the tokenizer has none."""
    return special_id(tokenizer, "eos_token_id", EOS_TOKEN)


def pad_id(tokenizer) -> int:
    """The padding id: PAD, else EOS, else BOS."""
    tid = special_id(tokenizer, "pad_token_id", PAD_TOKEN)
    if tid is None:
        tid = eos_id(tokenizer)
    return bos_id(tokenizer) if tid is None else tid


def tiny_model(texts: Sequence[str], vocab_size: int = 300, *, seed: int = 0, hidden: int = 32, layers: int = 2):
    """A tiny random ``LlamaForCausalLM`` with a byte-level BPE trained on ``texts`` (smoke runs, tests)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tokstudy import model as model_mod

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BOS_TOKEN, EOS_TOKEN, PAD_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN)
    model = model_mod.tiny_model(
        len(hf), seed=seed, hidden=hidden, layers=layers, heads=4, ff=2 * hidden, max_positions=2048,
        bos_token_id=hf.bos_token_id, eos_token_id=hf.eos_token_id, pad_token_id=hf.pad_token_id,
    )
    return model, hf
