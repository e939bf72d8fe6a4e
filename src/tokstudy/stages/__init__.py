"""The pipeline steps: the one layer that notebooks, CLI verbs and ``torchrun`` entry points call.

One module per DVC stage family; importing this package imports none of them, so a notebook
(and the DVC stage that runs it) depends on the code of its own step only (dvc.yaml's code deps
are generated from the import walk: ``tools/dvc_deps.py``). Each step takes the resolved params
``P = params.load(profile)`` plus its item, resolves that item once, passes plain typed values
down to the library, writes its run record (``results/<profile>/runs/<kind>-<name>.json``, with
provenance) and returns its path. A step reads its inputs (:mod:`.inputs`) and never builds a
missing one: that is a :class:`~tokstudy.errors.MissingInput` naming the stage that makes it.

=============================  ==========================================  =====================================
notebook (dvc stage)           step                                        run record
=============================  ==========================================  =====================================
00_corpus (corpus)             :func:`.corpus.build_corpus`                ``corpus-corpus.json``
01_train_tokenizer             :func:`.tokenizers.train_tokenizer`,        ``tokenizer_train-<variant>.json``,
(tokenizers_*,                 :func:`.tokenizers.compression`             ``compression-<variant>.json``
truncate_tokenizers)
02_tokenizer_metrics           :func:`.tokenizers.compression`             ``compression-<reference>.json``
03_embedding_transfer          :func:`.transfer.transfer_all`              ``transfer-<target>-<method>.json``
04_pretrain_base, 05_finetune  :func:`.train.train`                        ``train-<run>.json``
06_evaluate                    :func:`.evaluation.evaluate`                ``evaluate-<run>.json``
07_costs                       :func:`.costs.costs`                        ``costs-costs.json``
08_figures                     :func:`.figures.figures`,                   ``results.csv``, Table 1, figures,
                               :func:`.summary.summary`                    ``metrics/*.json``, ``plots/*.csv``
09_vocab_analysis              :func:`.vocab.vocab_analysis`               ``overlap-vocab.json``, ``sweep-*.json``
10_model_ablations             :func:`.ablations.model_ablations`          ``model_ablations.csv``
=============================  ==========================================  =====================================

``python -m tokstudy.stages`` runs a step from the shell (:mod:`.__main__`), and ``python -m
tokstudy.stages all --profile smoke`` every stage of dvc.yaml in one process (the smoke inputs
that tests and nbval read).
"""
