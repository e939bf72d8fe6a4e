"""`tokstudy advise` end to end on code nobody here wrote (tqdm, as installed in the venv), its numbers checked
against `tokstudy compare` and the cost model, and every bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import tqdm as tqdm_pkg

from tokstudy import advise, cli, costs, optimum, paths, results
from tokstudy.stages import inputs

SHAPE = "params=1.3b,layers=24,d_model=2048,context=2048"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """tqdm's own source (Python and a shell completion file), copied out of site-packages without bytecode."""
    dst = tmp_path_factory.mktemp("outside") / "tqdm"
    shutil.copytree(Path(tqdm_pkg.__file__).parent, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


@pytest.fixture(scope="module")
def toks(smoke) -> dict[str, str]:
    return {n: str(inputs.tokenizer_file(smoke, n)) for n in ("gpt4-m", "gpt4-s", "identity-m")}


@pytest.fixture(scope="module")
def page(folder, toks, tmp_path_factory):
    out = tmp_path_factory.mktemp("advise") / "page"
    rc = cli.main(["advise", str(folder), "--current", toks["gpt4-m"], "--candidate", toks["gpt4-s"],
                   "--candidate", toks["identity-m"], "--model-shape", SHAPE, "--out", str(out),
                   "--reference-docs", "5", "--n-boot", "200"])
    assert rc == 0
    return out, json.loads((out / "advise.json").read_text(encoding="utf-8"))


def test_page_compression_is_what_compare_reports(page, folder, toks, tmp_path):
    out, numbers = page
    assert (out / "advise.md").is_file() and (out / "compare" / "compare.png").is_file()
    rc = cli.main(["compare", str(folder), toks["gpt4-s"], toks["identity-m"], "--base", toks["gpt4-m"],
                   "--out", str(tmp_path / "cmp")])
    assert rc == 0
    cmp = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    nsl = cmp[cmp["metric"] == "nsl"].set_index(["tokenizer", "dataset"])["value"]
    bpt = cmp[cmp["metric"] == "bytes_per_token"].set_index(["tokenizer", "dataset"])["value"]
    assert set(numbers["languages"]) == {"python", "shell"}
    # one shell file is under compare's --min-docs 3: shown, left out of the code means as compare leaves it out
    assert numbers["code_languages"] == ["python"] and numbers["left_out_of_means"] == ["shell"]
    for label in ("gpt4-s", "identity-m"):
        c = numbers["candidates"][label]
        for lang, v in c["per_language"].items():
            assert v["nsl"] == pytest.approx(nsl[(label, lang)], rel=1e-12)
            assert v["bytes_per_token"] == pytest.approx(bpt[(label, lang)], rel=1e-12)
        assert c["nsl_code_mean"] == pytest.approx(nsl[(label, "mean:code")], rel=1e-12)
        assert c["nsl_code_pooled"] == pytest.approx(nsl[(label, "pooled:code")], rel=1e-12)
        lo, hi = c["nsl_code_pooled_ci"]
        assert lo <= c["nsl_code_pooled"] <= hi  # the interval surrounds its own point estimate
        assert all(x != x for x in c["per_language"]["shell"]["nsl_ci"])  # one shell file: no interval (NaN)
    # identity-m compresses tqdm better than gpt4-m at the same size, gpt4-s (smaller) worse
    assert numbers["candidates"]["identity-m"]["nsl_code_pooled"] < 1 < numbers["candidates"]["gpt4-s"][
        "nsl_code_pooled"]
    assert "n/a (one file)" in (out / "advise.md").read_text(encoding="utf-8")


def test_page_costs_are_the_cost_model_at_the_given_shape(page):
    _out, numbers = page
    sh = numbers["shape"]
    # params=1.3b: d_ff solved from 1.3e9 = 2·512·2048 + 24·(4·2048² + 3·2048·d_ff), rounded
    assert sh["d_ff"] == round((1.3e9 - 2 * 512 * 2048 - 24 * 4 * 2048**2) / (24 * 3 * 2048))
    shape = costs.ModelShape(n_layers=24, d_model=2048, n_heads=16, d_ff=sh["d_ff"], context=2048, vocab_size=512)
    cur_bpt = numbers["current"]["bytes_per_token_code"]
    for label, vocab in (("gpt4-s", 400), ("identity-m", 512)):
        c = numbers["candidates"][label]
        assert c["vocab_size"] == vocab
        assert c["params_embedding_head_change"] == (vocab - 512) * 2048 * 2  # untied: embedding and head
        expect = costs.variant_costs(shape.with_vocab(vocab), c["bytes_per_token_code"], doc_bytes=numbers["doc_bytes"])
        assert c["costs"] == pytest.approx(expect, rel=1e-12)
        assert c["costs"]["effective_context_bytes"] == pytest.approx(2048 * c["bytes_per_token_code"])
        assert c["predicted_speed_ratio"] == pytest.approx(costs.predicted_speed_ratio(
            shape.with_vocab(vocab), c["bytes_per_token_code"], shape, cur_bpt, regime="compute"), rel=1e-12)
        assert c["kv_bytes_per_doc_ratio"] == pytest.approx(cur_bpt / c["bytes_per_token_code"])
    rec = paths.runs_dir("cpu") / "costs-costs.json"
    mae = next(r["value"] for r in results.read_run(rec)["rows"]
               if r["metric"] == "speed_prediction_mae" and r["primary"])
    assert numbers["speed_error"]["mae"] == mae
    assert numbers["speed_error"]["record"] == "results/cpu/runs/costs-costs.json"
    assert f"±{mae * 100:.1f}%" in (_out / "advise.md").read_text(encoding="utf-8")
    paper = optimum.optimal_vocab_size(shape, optimum.PAPER_NSL_FITS["code"], "compute",
                                       grid=optimum.vocab_grid(1000, 1_048_576, 4000))
    assert numbers["optimal_vocab"]["paper"]["vocab_size"] == paper.vocab_size


def test_page_transfer_risks_and_elsewhere(page):
    out, numbers = page
    ident, small = numbers["candidates"]["identity-m"], numbers["candidates"]["gpt4-s"]
    # gpt4-s is a truncation-like smaller run on the same text: every token of it is a gpt4-m token here
    assert small["transfer"]["composed_share"] == 0 and small["transfer"]["covered_share"] == 1
    assert 0 < ident["transfer"]["composed_share"] < 1 and ident["transfer"]["novel_occurrence_share"] > 0
    assert ident["risks"]["n_spanning"] > 0 and small["risks"]["n_spanning"] == 0  # Identity-style tokens
    text = (out / "advise.md").read_text(encoding="utf-8")
    assert "Identity-style" in text and "docs/paper.md#figure-6-fine-tuning-budget" in text
    assert set(ident["reference"]) == {"english", "multilingual"}  # our test sets were measured, not skipped
    ref = pd.read_csv(out / "reference.csv")
    assert set(ref["domain"]) - {"all"} == {"english", "multilingual"}
    m = numbers["finetune"]["measured"]
    assert m["records"].startswith("results/cpu/runs/") and m["closes_at_bytes"] > max(map(int, m["gaps"]))


def test_advise_without_candidates_trains_and_scores_on_held_out_files(folder, toks, tmp_path, capsys):
    out = tmp_path / "trained"
    rc = cli.main(["advise", str(folder), "--current", toks["gpt4-m"], "--model-shape", SHAPE, "--sizes", "300",
                   "400", "512", "--train-bytes", "60000", "--out", str(out), "--reference-docs", "3",
                   "--n-boot", "100"])
    assert rc == 0
    numbers = json.loads((out / "advise.json").read_text(encoding="utf-8"))
    assert set(numbers["candidates"]) == {"gpt4-300", "gpt4-400", "gpt4-512"}
    assert numbers["trained"]["bytes"] <= 60000 and numbers["trained"]["alone"] == ["shell"]
    assert sorted(p.name for p in (out / "candidates").iterdir()) == ["gpt4-300", "gpt4-400", "gpt4-512"]
    meta = json.loads((out / "candidates" / "gpt4-400" / "meta.json").read_text(encoding="utf-8"))
    assert meta["regex"] == "gpt4"
    # scored on the odd files only: python's held-out half, nothing of the single shell file
    n_py = len([p for p in folder.rglob("*.py")])
    assert numbers["languages"]["python"]["files"] == n_py // 2 and "shell" not in numbers["languages"]
    nsl = sorted((c["vocab_size"], c["nsl_code_pooled"]) for c in numbers["candidates"].values())
    assert [n for _v, n in nsl] == sorted((n for _v, n in nsl), reverse=True)  # larger vocab, fewer tokens
    fit = optimum.fit_nsl(nsl)
    assert numbers["optimal_vocab"]["measured"]["fit"]["c"] == pytest.approx(fit.c)
    printed = capsys.readouterr().out
    assert "gpt4-512 (vocab 512): code NSL" in printed and "page:" in printed
    # an earlier advise output may be written again
    assert cli.main(["advise", str(folder), "--current", toks["gpt4-m"], "--candidate", toks["gpt4-s"],
                     "--model-shape", SHAPE, "--out", str(out), "--reference-docs", "2", "--n-boot", "10"]) == 0
    assert not (out / "candidates").exists()  # what the earlier run wrote and this one did not is gone


def test_ratio_ci_and_config_shape_by_hand(tmp_path):
    assert advise.ratio_ci([2, 4, 6], [4, 8, 12], 50, 0.9, 0) == (0.5, 0.5)  # every resample: ratio 1/2
    lo, hi = advise.ratio_ci([1, 3], [2, 2], 2000, 0.95, 0)
    assert (lo, hi) == (0.5, 1.5)  # resamples {1,1}: 1/2, {3,3}: 3/2
    cfg = tmp_path / "config.json"  # Llama-2-7B's config.json fields
    cfg.write_text(json.dumps({"model_type": "llama", "hidden_act": "silu", "hidden_size": 4096,
                               "intermediate_size": 11008, "num_attention_heads": 32, "num_hidden_layers": 32,
                               "num_key_value_heads": 32, "max_position_embeddings": 4096, "vocab_size": 32000,
                               "tie_word_embeddings": False}))
    shape, _notes = advise.resolve_shape(advise.parse_shape(str(cfg)), vocab_size=512)
    # 32·(4·4096² + 3·4096·11008) + 2·32000·4096 (biases and norms left out, as tokstudy.costs)
    assert costs.param_counts(shape)["total"] == 6_738_149_376 and shape.mlp == "gated" and shape.context == 4096
    shape, _notes = advise.resolve_shape(advise.parse_shape("params=7b,layers=32,d_model=4096,vocab=32000"), 512)
    assert shape.ff == round((7e9 - 2 * 32000 * 4096 - 32 * 4 * 4096**2) / (32 * 3 * 4096)) == 11674
    assert shape.n_heads == 32  # d_model / 128


@pytest.mark.parametrize("case,flag", [
    ("missing-folder", "advise FOLDER"), ("unknown-current", "--current"), ("unknown-candidate", "--candidate"),
    ("shape-no-file", "--model-shape"), ("shape-bad-number", "--model-shape"), ("shape-unknown-key", "--model-shape"),
    ("shape-missing-layers", "--model-shape"), ("shape-too-small", "--model-shape"),
    ("shape-bad-json", "--model-shape"),
    ("out-holds-user-files", "--out"), ("bad-confidence", "--confidence"),
])
def test_bad_inputs_are_one_line_exit_2_and_write_nothing(case, flag, folder, toks, tmp_path, capsys):
    out = tmp_path / "out"
    bad_json = tmp_path / "config.json"
    bad_json.write_text("{not json")
    args = {"folder": str(folder), "current": toks["gpt4-m"], "shape": SHAPE, "extra": []}
    if case == "missing-folder":
        args["folder"] = str(tmp_path / "nope")
    elif case == "unknown-current":
        args["current"] = "no-such-tokenizer"
    elif case == "unknown-candidate":
        args["extra"] = ["--candidate", str(tmp_path / "missing.json")]
    elif case == "shape-no-file":
        args["shape"] = str(tmp_path / "config-missing.json")
    elif case == "shape-bad-number":
        args["shape"] = "params=lots,layers=24,d_model=2048"
    elif case == "shape-unknown-key":
        args["shape"] = "params=1b,layers=24,d_model=2048,width=3"
    elif case == "shape-missing-layers":
        args["shape"] = "params=1b,d_model=2048"
    elif case == "shape-too-small":
        args["shape"] = "params=10m,layers=24,d_model=2048"
    elif case == "shape-bad-json":
        args["shape"] = str(bad_json)
    elif case == "out-holds-user-files":
        out.mkdir()
        (out / "mine.txt").write_text("keep me")
    elif case == "bad-confidence":
        args["extra"] = ["--confidence", "1.5"]
    try:
        rc = cli.main(["advise", args["folder"], "--current", args["current"], "--model-shape", args["shape"],
                       "--out", str(out), *args["extra"]])
    except SystemExit as exc:  # a flag argparse refuses while parsing
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and err.startswith("error: ") and flag in err, err
    if case == "out-holds-user-files":
        assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    else:
        assert not out.exists()
