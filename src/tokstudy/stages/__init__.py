"""The pipeline steps: one function per step, called by the notebooks, the CLI and ``python -m``.

Each step takes the resolved params ``P = params.load(profile)`` plus the step's
item name, writes its run record (``results/<profile>/runs/<kind>-<name>.json``,
with provenance) and returns that record's path. The profile-aware glue lives
here and only here: outside the ``smoke`` profile a missing input is an error
naming the DVC stage that makes it (:mod:`tokstudy.stages.inputs`).

Steps (notebook -> function -> run record):

- 00_corpus            :func:`build_corpus`     ``corpus-corpus.json`` (+ ``data/<p>/corpus/``)
- 01_train_tokenizer   :func:`train_tokenizer`  ``tokenizer_train-<variant>.json``
  (+ ``data/<p>/tokenizers/<variant>/``), then :func:`compression`
- 02_tokenizer_metrics :func:`compression`      ``compression-<tokenizer>.json``
- 07_costs             :func:`costs`            ``costs-costs.json``
- 08_figures           :func:`figures`          ``results/<p>/results.csv`` + figures (no run record: returns
  ``{figure: [png, pdf]}`` of the figures drawn)
- 09_vocab_analysis    :func:`vocab_analysis`   ``overlap-vocab.json`` + ``sweep-<sweep_variant>.json``
- (CLI ``tokstudy sweep``) :func:`sweep`        ``sweep-<variant>.json``
- 03_embedding_transfer :func:`transfer_all` ``transfer-<target>-<method>.json`` per method
- 04_pretrain_base, 05_finetune :func:`train` ``train-<run>.json``
- 06_evaluate          :func:`evaluate`         ``evaluate-<run>.json``

Model steps (03-06) are in :mod:`tokstudy.stages.models` and :mod:`tokstudy.stages.evaluation`.
"""

from tokstudy.stages.evaluation import evaluate
from tokstudy.stages.models import train, transfer, transfer_all
from tokstudy.stages.reports import costs, figures
from tokstudy.stages.tokenizers import build_corpus, compression, sweep, train_tokenizer, vocab_analysis

__all__ = ["build_corpus", "compression", "costs", "evaluate", "figures", "sweep", "train", "train_tokenizer",
           "transfer", "transfer_all", "vocab_analysis"]
