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

    rows = [{"tokenizer": t, "dataset": d, "metric": m, "value": v, "base": "llama2", "corpus": "my-repo"}
            for t in ("a", "b") for d in ("python", "de", "mean:code")
            for m, v in (("bytes_per_token", 3.0), ("nsl", 0.9), ("renyi_efficiency", 0.4), ("utilisation", 0.5))]
    drawn = []
    monkeypatch.setattr(plots, "save", lambda fig, name, out: drawn.append(fig) or [])
    plots.compare(pd.DataFrame(rows), tmp_path)
    (fig,) = drawn
    axes = [ax for ax in fig.axes if ax.get_ylabel()]
    assert [ax.get_ylabel() for ax in axes] == list(plots.COMPARE_PANELS.values())
    assert {t.get_text() for t in axes[0].get_xticklabels()} == {"python", "de"}  # no domain means
    assert fig._suptitle.get_text() == "tokstudy compare on my-repo: NSL vs llama2"  # names corpus and base
    plt.close(fig)


def test_nsl_vs_vocab_one_line_per_training_run_a_multilingual_panel_and_control_points(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    def comp(run, vocab, code, english, multi, regex="gpt4", mix="code70"):
        base = {"profile": "t", "kind": "compression", "run": run, "regex": regex, "vocab_size": vocab, "mix": mix,
                "metric": "nsl"}
        return [{**base, "dataset": f"mean:{d}", "domain": d, "value": v}
                for d, v in (("code", code), ("english", english), ("multilingual", multi))]

    def train(run, of=None, nbytes=None):
        row = {"profile": "t", "kind": "tokenizer_train", "run": run, "truncate_of": of}
        return [{**row, "metric": "train_bytes", "value": nbytes}] if nbytes else [{**row, "metric": "x", "value": 0}]

    rows = (comp("gpt4-s", 4000, 1.0, 1.1, 1.9) + comp("gpt4-m", 8000, 0.9, 1.0, 1.8)
            + comp("gpt4-256k", 256000, 0.7, 0.78, 1.1) + comp("gpt4-32k", 32000, 0.76, 0.83, 1.57)
            + comp("authors-gpt-32k", 32000, 0.81, 0.89, 1.03, regex=None, mix=None)
            + train("gpt4-s", nbytes=12e6) + train("gpt4-m", nbytes=12e6) + train("gpt4-256k", nbytes=64e6)
            + train("gpt4-32k", of="gpt4-256k")
            + [{"profile": "paper", "kind": "paper_sweep", "run": "gpt4-32000", "vocab_size": 32000, "metric": "nsl",
                "dataset": "mean:multilingual", "domain": "multilingual", "value": 1.046, "source": "[E-data]"}])
    captured = {}
    monkeypatch.setattr(plots, "save", lambda fig, name, out: captured.update(fig=fig) or [])
    plots.nsl_vs_vocab(pd.DataFrame(rows), "t", tmp_path)
    fig = captured["fig"]
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["code", "english", "multilingual"]
    lines = {line.get_label(): list(map(float, line.get_ydata())) for line in axes[2].get_lines()}
    # the truncations of the 256k run are one line, the separately trained small runs another, never joined
    assert lines["tokstudy gpt4-256k run, truncated to each size (64 MB, t)"] == [1.57, 1.1]
    assert lines["tokstudy gpt4-s/gpt4-m: one run per size (12 MB, t)"] == [1.9, 1.8]
    assert lines["authors' released gpt_32k/64k/80k on our test split (control)"] == [1.03]
    assert lines["paper gpt4 sweep, their test data [[E-data]]"] == [1.046]
    plt.close(fig)


def _capture(monkeypatch):
    captured = {}
    monkeypatch.setattr(plots, "save", lambda fig, name, out: captured.update({name: fig}) or [])
    return captured


def test_one_vocab_label_style_and_no_overlapping_ticks():
    import matplotlib.pyplot as plt

    assert [plots._k(v) for v in (512, 4096, 8192, 16384, 32000, 100277, 256000, 2048.0)] == [
        "512", "4.1k", "8.2k", "16.4k", "32k", "100.3k", "256k", "2k"]
    fig, ax = plt.subplots()
    ax.plot([8192, 10000, 32000, 64000, 80000], [1, 2, 3, 4, 5])
    plots._vocab_axis(ax, [8192, 10000, 32000, 64000, 80000])
    # 10k is a factor 1.22 from 8192 (labels would overlap): dropped; 64k -> 80k (1.25) kept
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8.2k", "32k", "64k", "80k"]
    assert ax.get_xscale() == "log"
    plt.close(fig)


def test_vocab_sweep_draws_points_on_log_axes_not_bars(tmp_path, monkeypatch):
    base = {"profile": "t", "kind": "sweep", "run": "gpt4-256k"}
    rows = [{**base, "metric": m, "vocab_size": v, "value": x} for m, v, x in (
        ("train_seconds_one_run", 256000, 20.0), ("truncate_seconds", 32000, 0.8), ("truncate_seconds", 256000, 2.0),
        ("train_seconds_separate", 32000, 8.0), ("identical", 32000, 1.0))]
    fig = _capture(monkeypatch)
    plots.vocab_sweep(pd.DataFrame(rows), "t", tmp_path)
    ax = fig["vocab_sweep"].axes[0]
    assert len(ax.patches) == 0 and ax.get_yscale() == "log"  # no bar lengths measured from an arbitrary log floor
    lines = {line.get_label(): list(map(float, line.get_ydata())) for line in ax.get_lines()}
    assert lines["truncating that run to the size"] == [0.8, 2.0]
    assert lines["training the size on its own"] == [8.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["32k", "256k"]


def _speed_rows(rounds: bool):
    common = {"profile": "t", "kind": "costs", "run": "costs", "anchor": "a", "source": "random-weights"}
    rows = [{**common, "metric": "speed_measured_ratio", "tokenizer": t, "vocab_size": v, "value": x}
            for t, v, x in (("a", 32000, 1.0), ("b", 64000, 0.6))]
    rows += [{**common, "metric": "speed_predicted_ratio", "tokenizer": t, "vocab_size": v, "value": x,
              "regime": "compute", "primary": True} for t, v, x in (("a", 32000, 1.0), ("b", 64000, 0.5))]
    rows.append({**common, "metric": "speed_prediction_mae", "value": 0.2, "regime": "compute", "primary": True})
    if rounds:  # best round 0.6, others 0.4 and 0.5
        rows += [{**common, "metric": plots.ROUND_METRIC, "tokenizer": "b", "vocab_size": 64000, "value": x,
                  "round": i} for i, x in enumerate((0.4, 0.6, 0.5))]
        rows += [{**common, "metric": plots.ROUND_METRIC, "tokenizer": "a", "vocab_size": 32000, "value": 1.0,
                  "round": i} for i in range(3)]
    return rows


def test_speed_check_has_no_point_labels_and_shows_every_timing_round(tmp_path, monkeypatch):
    fig = _capture(monkeypatch)
    plots.speed_check(pd.DataFrame(_speed_rows(rounds=True)), "t", tmp_path)
    ax = fig["speed_check"].axes[0]
    assert len(ax.texts) == 0  # tokenizer names collided with the lines: the x ticks name the sizes
    labels = [line.get_label() for line in ax.get_lines()]
    assert "measured (random-weights, best of 3 rounds)" in labels
    assert "predicted, compute regime (primary); mean abs. error 20%" in labels
    (bars,) = [c for c in ax.collections if len(c.get_segments())]
    spans = sorted((float(s[0][1]), float(s[1][1])) for s in bars.get_segments())
    assert spans[0] == (0.4, 0.6)  # b's rounds: min 0.4 .. max 0.6, around its best
    fig2 = _capture(monkeypatch)
    plots.speed_check(pd.DataFrame(_speed_rows(rounds=False)), "t", tmp_path)  # records before per-round rows
    assert "measured (random-weights)" in [line.get_label() for line in fig2["speed_check"].axes[0].get_lines()]


def test_speed_vs_nsl_draws_each_run_and_the_spread_of_one_tokenizer(tmp_path, monkeypatch):
    ev = [{"profile": "t", "kind": "evaluate", "run": r, "tokenizer": tok, "metric": "gen_text_bytes_per_s",
           "value": v} for r, tok, v in (("base", "g", 300.0), ("keep-b1", "g", 560.0), ("fvt-b1", "m", 520.0))]
    comp = [{"profile": "t", "kind": "compression", "run": r, "metric": "nsl", "dataset": "mean:code", "value": v}
            for r, v in (("g", 0.93), ("m", 0.89), ("a", 0.76), ("b", 0.74))]
    fig = _capture(monkeypatch)
    plots.speed_vs_nsl(pd.DataFrame(ev + comp + _speed_rows(rounds=True)), "t", tmp_path)
    left, right = fig["speed_vs_nsl"].axes[:2]
    lines = {line.get_label(): list(map(float, line.get_ydata())) for line in left.get_lines()}
    assert lines == {"g (2 runs)": [300.0, 560.0], "m (1 run)": [520.0]}
    (spread,) = left.collections
    assert [(float(s[0][1]), float(s[1][1])) for s in spread.get_segments()] == [(300.0, 560.0)]
    right_lines = {line.get_label(): list(map(float, line.get_xdata())) for line in right.get_lines()}
    assert right_lines["best timing round\n(random weights, one shape)"] == [0.76, 0.74]  # x: each tokenizer's NSL


def test_optimal_vocab_labels_nothing_over_the_points(tmp_path, monkeypatch):
    common = {"profile": "t", "kind": "costs", "run": "costs", "metric": "optimal_vocab_size"}
    rows = [{**common, "objective": "compute", "model": m, "nsl_source": s, "seq_len": 2048, "batch": 1,
             "value": v, "extrapolated": ext} for m, s, v, ext in (
        ("small", "measured", 8000, True), ("small", "paper", 8200, True), ("7b", "measured", 70000, False))]
    rows += [{**common, "objective": "memory", "model": "7b", "nsl_source": "measured", "seq_len": n, "batch": 1,
              "value": v, "extrapolated": False} for n, v in ((1024, 6000), (4096, 12000))]
    fig = _capture(monkeypatch)
    plots.optimal_vocab(pd.DataFrame(rows), "t", tmp_path)
    left = fig["optimal_vocab"].axes[0]
    assert len(left.texts) == 0  # "extrapolated" labels of neighbouring points collided: now one legend entry
    labels = left.get_legend_handles_labels()[1]
    assert "extrapolated (outside fitted V range)" in labels and "Llama 2: 32k" in labels


def test_finetune_bpb_ticks_are_the_budgets_and_the_caption_says_fig6_is_not_drawn(tmp_path, monkeypatch):
    rows = [{"profile": "t", "kind": "evaluate", "metric": "bits_per_byte", "dataset": "mean:code", "run": r,
             "stage": st, "method": me, "tokenizer": tok, "budget_bytes": b, "value": v}
            for r, st, me, tok, b, v in (("base", "pretrain", "keep", "g", None, 2.9),
                                         ("keep-b1", "finetune", "keep", "g", 100_000, 3.0),
                                         ("keep-b2", "finetune", "keep", "g", 300_000, 3.1),
                                         ("random-b1", "finetune", "random", "m", 100_000, 3.7),
                                         ("fvt-b1", "finetune", "fvt", "m", 100_000, 3.4))]
    fig = _capture(monkeypatch)
    plots.finetune_bpb(pd.DataFrame(rows), "t", tmp_path)
    f = fig["finetune_bpb"]
    assert [t.get_text() for t in f.axes[0].get_xticklabels()] == ["100 kB", "300 kB"]
    assert "2 budgets" in f.axes[0].get_title()
    assert any("Fig. 6 is not drawn" in t.get_text() for t in f.texts)
