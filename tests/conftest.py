import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


def tiny_bpe(texts, vocab_size, specials):
    """A small byte-level BPE trained on ``texts`` (the same layout family as ours), for unit tests."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer)
    return tok


def _smoke_is_built() -> bool:
    from tokstudy import paths

    return (paths.results_csv("smoke").is_file() and (paths.results_dir("smoke") / "model_ablations.csv").is_file()
            and (paths.corpus_dir("smoke") / "manifest.json").is_file())


@pytest.fixture(scope="session")
def smoke():
    """The smoke profile's inputs, as ``make smoke`` builds them (every dvc.yaml stage at profile smoke, in one
    process: ``python -m tokstudy.stages all --profile smoke``); built here when missing. Returns its params."""
    from tokstudy import params
    from tokstudy.stages import pipeline

    P = params.load("smoke")
    if not _smoke_is_built():
        pipeline.run_all(P)
    return P
