"""tokstudy.plots: figures drawn from synthetic tidy rows."""

import pandas as pd

from tokstudy import plots


def test_speed_check_draws_png_and_pdf_from_csv_rows(tmp_path):
    common = {"profile": "smoke", "kind": "costs", "run": "costs", "anchor": "a", "source": "random-weights"}
    rows = [{**common, "metric": "speed_measured_ratio", "tokenizer": t, "vocab_size": v, "value": x}
            for t, v, x in (("a", 300, 1.0), ("b", 400, 1.2))]
    for regime, pred in (("steps", 1.25), ("compute", 1.1)):
        rows += [{**common, "metric": "speed_predicted_ratio", "tokenizer": "a", "vocab_size": 300, "value": 1.0,
                  "regime": regime, "primary": regime == "steps"},
                 {**common, "metric": "speed_predicted_ratio", "tokenizer": "b", "vocab_size": 400, "value": pred,
                  "regime": regime, "primary": regime == "steps"},
                 {**common, "metric": "speed_prediction_mae", "value": abs(1.2 / pred - 1), "regime": regime,
                  "primary": regime == "steps"}]
    df = pd.DataFrame(rows)
    out = plots.speed_check(df, "smoke", tmp_path / "smoke")
    assert [p.name for p in out] == ["speed_check.png", "speed_check.pdf"]
    assert all(p.parent == tmp_path / "smoke" and p.stat().st_size > 0 for p in out)
    assert plots.FIGURES["speed_check"] is plots.speed_check
    assert plots.speed_check(df[df["metric"] != "speed_measured_ratio"], "smoke", tmp_path / "none") is None
    assert not (tmp_path / "none").exists()


def _compression(run, regex, vocab, mix, code, english):
    base = {"profile": "t", "kind": "compression", "run": run, "regex": regex, "vocab_size": vocab, "mix": mix,
            "metric": "nsl"}
    return [{**base, "dataset": "mean:code", "domain": "code", "value": code},
            {**base, "dataset": "mean:english", "domain": "english", "value": english}]


def test_draw_all_draws_only_figures_whose_rows_exist(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    rows = (_compression("gpt4-s", "gpt4", 1000, "code70", 0.9, 1.0)
            + _compression("gpt4-m", "gpt4", 2000, "code70", 0.8, 0.95)
            + _compression("punct-m", "punct", 2000, "code70", 0.85, 0.97)
            + _compression("gpt4-m-eng", "gpt4", 2000, "code30", 0.83, 0.9))
    from tokstudy import results

    df = pd.DataFrame(rows + results.paper_rows())
    captured = {}
    real_save = plots.save

    def spy(fig, name, out_dir):
        captured[name] = [list(map(float, line.get_ydata())) for ax in fig.axes for line in ax.get_lines()]
        return real_save(fig, name, out_dir)

    monkeypatch.setattr(plots, "save", spy)
    drawn = plots.draw_all(df, tmp_path / "figs", "t")
    assert {"nsl_vs_vocab", "regex_ablation", "data_mix"} <= set(drawn)
    # no evaluate / costs / overlap rows: those figures are skipped, not drawn empty
    assert not {"finetune_bpb", "speed_vs_nsl", "optimal_vocab", "vocab_overlap"} & set(drawn)
    assert all(p.is_file() and p.parent == tmp_path / "figs" for out in drawn.values() for p in out)
    # the GPT-4 sweep line carries our code NSL values in vocab order
    assert [0.9, 0.8] in captured["nsl_vs_vocab"]
    plt.close("all")


def test_compare_draws_one_labelled_panel_per_metric(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    rows = [{"tokenizer": t, "dataset": d, "metric": m, "value": v}
            for t in ("a", "b") for d in ("python", "de", "mean:code")
            for m, v in (("bytes_per_token", 3.0), ("nsl", 0.9), ("renyi_efficiency", 0.4), ("utilisation", 0.5))]
    drawn = []
    monkeypatch.setattr(plots, "save", lambda fig, name, out: drawn.append(fig) or [])
    plots.compare(pd.DataFrame(rows), tmp_path)
    (fig,) = drawn
    axes = [ax for ax in fig.axes if ax.get_ylabel()]
    assert [ax.get_ylabel() for ax in axes] == list(plots.COMPARE_PANELS.values())
    assert {t.get_text() for t in axes[0].get_xticklabels()} == {"python", "de"}  # no domain means
    plt.close(fig)
