# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.17.3
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Evaluate a model
#
# Tokenizer-invariant evaluation of one model (paper §3, `docs/paper.md` "Evaluation protocol"); models with
# different tokenizers are never compared on per-token loss. One stage call, `stages.evaluation.evaluate`, which is
# also what `tokstudy evaluate MODEL_DIR` runs, so both write the same run record `evaluate-<run>.json`:
#
# * **bits per byte** on the corpus test split (`tokstudy.bpb`): summed next-token loss over every text token / UTF-8
#   bytes / ln 2, per dataset, then the unweighted mean per domain (code / English) and overall;
# * **canonical-solution bits per byte** (`tokstudy.bpb.solution_bits_per_byte`): each HumanEval (and MBPP) reference
#   solution scored given its prompt, averaged over problems with a seeded bootstrap 95% CI: it moves long before
#   pass@1 leaves zero (`docs/paper.md#canonical-solution-bpb`);
# * **HumanEval pass@k** (`tokstudy.problems`): greedy pass@1 (`evaluate.humaneval` n 1, temperature 0: cpu) or n
#   samples per problem at a temperature and top-p, seeded per problem, with the unbiased pass@k estimator (gpu);
#   stop strings applied to the decoded text, each completion runs in a bubblewrap sandbox (`tokstudy.sandbox`) and
#   is judged outside it;
# * **MBPP pass@1** when `mbpp_path` points to an `mbpp.jsonl` (none ships offline);
# * **generation speed** (`tokstudy.speed`): bytes and tokens generated per second, greedy, fixed prompts.
#
# `runs` name models of `params.yaml` `models:`; `model_dir` overrides the directory of a single run. A run's
# replicates (`train.<stage>.seeds`: the same fine-tune on other data seeds) get held-out code bits/byte and
# canonical-solution bits/byte only (`evaluation.evaluate_replicate`): the numbers the model-side comparisons
# rest on, with intervals over seeds and problems (notebook 10). A missing model is an error
# naming the DVC stage that trains it (in CI the smoke models come from `python -m tokstudy.stages all --profile smoke`).
#

# %% tags=["parameters"]
profile = "smoke"
runs = ["base"]  # `models:` runs (DVC: all of them, one kernel)
model_dir = None  # default: data/<profile>/models/<run>; a directory evaluates one run
mbpp_path = None  # path to the original mbpp.jsonl (task_id, text, code, test_list); None: evaluate.mbpp.path
humaneval_limit = None  # None: the profile's evaluate.humaneval.limit (smoke: a handful of problems)

# %%
import pandas as pd

from tokstudy import params, results
from tokstudy.stages import evaluation

P = params.load(profile)
assert model_dir is None or len(runs) == 1, "model_dir evaluates one run: give one name in runs"
outs = [evaluation.evaluate(P, run, model_dir=model_dir, mbpp_path=mbpp_path, humaneval_limit=humaneval_limit)
        for run in runs]
replicates = [evaluation.evaluate_replicate(P, run, k, mbpp_path=mbpp_path)  # seeds 1.. (train.<stage>.seeds)
              for run in runs if model_dir is None for k in range(1, P.model(run).seeds)]
rows = pd.DataFrame([row for out in outs + replicates for row in results.read_run(out)["rows"]])
assert set(rows.metric) >= {"bits_per_byte", "solution_bits_per_byte", "humaneval_pass@1", "gen_tokens_per_s"}
assert (rows.value >= 0).all()
assert all(results.read_run(o)["provenance"]["params"]["sandbox"] in ("bwrap", "guard") for o in outs)
rows.fillna({"domain": "", "dataset": ""}).pivot_table(index=["metric", "domain", "dataset"], columns="model",
                                                       values="value", sort=False).round(4)

# %% [markdown]
# **Reading.** Bits per byte is the model's loss per byte of held-out text, so it compares models whatever their
# tokenizer; lower is better, and the `mean:code` row is the one the figures plot. `solution_bits_per_byte` is the
# same loss on the benchmark's own reference solutions, with its CI over problems (`ci_low`, `ci_high`). HumanEval
# pass@k is the chance that one of k samples passes its tests (greedy pass@1 at temperature 0). `gen_text_bytes_per_s` turns the measured tokens/s into
# bytes of typical code per second: a tokenizer that compresses code better writes code faster at the same tokens/s.
# In the smoke profile the numbers come from a tiny (possibly random) model and only show that the step works.
#
