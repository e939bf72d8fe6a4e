import copy
import dataclasses

import pytest
import yaml

from tokstudy import params, paths

ROOT = paths.ROOT


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a" / "b.json"
    paths.atomic_write(target, "one")
    paths.atomic_write(target, b"two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["b.json"]


def test_atomic_dir_keeps_old_on_failure(tmp_path):
    target = tmp_path / "out"
    with paths.atomic_dir(target) as d:
        (d / "f.txt").write_text("good")
    with pytest.raises(RuntimeError):
        with paths.atomic_dir(target) as d:
            (d / "f.txt").write_text("half")
            raise RuntimeError("crash")
    assert (target / "f.txt").read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_profiles_scope_paths():
    assert paths.tokenizer_dir("smoke", "x") != paths.tokenizer_dir("cpu", "x")
    assert paths.figures_dir(paths.DEFAULT_PROFILE) == paths.FIGURES / paths.DEFAULT_PROFILE
    assert paths.figures_dir("smoke") == paths.FIGURES / "smoke"


def test_repo_params_resolve_every_profile():
    for profile in ("smoke", "cpu", "gpu"):
        P = params.load(profile)
        assert P.profile == profile
        assert {"code", "english"} <= {s.domain for s in P.sources.values()}
        for v in P.tokenizers.values():
            assert v.vocab_size >= 256 + len(v.special_tokens), (profile, v)
        # the model-side ladder and the paper-size sweep are ordered in every profile
        ladder = [P.tokenizer(f"gpt4-{k}").vocab_size for k in ("s", "m", "l")]
        assert ladder == sorted(ladder) and len(set(ladder)) == 3
        sweep = [P.tokenizer(f"gpt4-{k}").vocab_size for k in ("32k", "64k", "80k", "100k", "128k", "256k")]
        assert sweep == sorted(sweep) and len(set(sweep)) == 6
        assert all(P.tokenizer(f"gpt4-{k}").truncate_of == "gpt4-256k" for k in ("32k", "64k", "80k", "100k", "128k"))
        if profile != "smoke":  # the paper's sizes (docs/paper.md#vocabulary-sweep)
            assert sweep == [32000, 64000, 80000, 100000, 128000, 256000]


REPO = params.read_yaml()


def _write(tmp_path, change=None, text=None):
    """A copy of the repo's params.yaml in tmp_path, after ``change(raw)`` (or the given text)."""
    raw = copy.deepcopy(REPO)
    if change is not None:
        change(raw)
    f = tmp_path / "params.yaml"
    f.write_text(text if text is not None else yaml.safe_dump(raw, sort_keys=False))
    return f


def _set(path, value):
    """A change that sets the YAML path ``a.b.c`` (``None``: deletes it)."""
    def change(raw):
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return change


def test_profiles_deep_merge_over_the_top_level_sections():
    cpu, smoke, gpu = params.load("cpu"), params.load("smoke"), params.load("gpu")
    # profiles.cpu.evaluate.bpb sets max_docs / max_bytes; seq_len comes from evaluate.bpb
    assert (cpu.evaluate.bpb.seq_len, cpu.evaluate.bpb.max_docs, cpu.evaluate.bpb.max_bytes) == (128, 100, 10_000)
    assert (cpu.evaluate.humaneval.limit, cpu.evaluate.mbpp.max_new_tokens, cpu.evaluate.sandbox) == (20, 128, "bwrap")
    # greedy pass@1 on cpu, sampled pass@1/10 on gpu (deep-merged over evaluate.humaneval)
    assert (cpu.evaluate.humaneval.n, cpu.evaluate.humaneval.temperature, cpu.evaluate.humaneval.k) == (1, 0.0, (1,))
    assert (gpu.evaluate.humaneval.n, gpu.evaluate.humaneval.top_p, gpu.evaluate.humaneval.k) == (20, 0.95, (1, 10))
    # the values the committed cpu results were made with (train lr 3e-3, fine-tune 1e-3 / 10 warmup)
    pre, fin = cpu.train("pretrain"), cpu.train("finetune")
    assert (pre.lr, pre.warmup_steps, pre.tokens) == (3e-3, 30, 500_000)
    assert (fin.lr, fin.warmup_steps, fin.tokens) == (1e-3, 10, 0)
    assert (pre.size.name, pre.size.d_model, pre.size.pad_vocab_to) == ("cpu", 192, 64)
    # fine-tunes are byte budgets (the same text for every tokenizer), pretraining a token count
    assert (cpu.model("base").tokens, cpu.model("base").bytes) == (500_000, None)
    assert (cpu.model("fvt-b2").tokens, cpu.model("fvt-b2").bytes) == (None, 300_000)
    assert gpu.model("fvt-identity-m-b2").bytes == 60_000_000
    assert cpu.corpus.budget_bytes == 150_000_000 and cpu.corpus.max_line_chars == 1000
    assert cpu.tokenizer("gpt4-m").vocab_size == 8192 and cpu.tokenizer("identity-m").max_token_length == 32
    # smoke: profiles.smoke.train.finetune.lr over train.finetune, whose warmup_steps stays
    assert (smoke.train("finetune").lr, smoke.train("finetune").warmup_steps) == (3e-3, 10)
    assert smoke.evaluate.humaneval.batch_size == 1 and smoke.costs.speed_check_rounds == 1
    assert gpu.train("pretrain").batch_size == 16 and gpu.train("pretrain").grad_accum == 2
    assert gpu.tokenizer("gpt4-m").train_bytes == 80_000_000 and gpu.tokenizer("gpt4-m").engine == "hf"


def test_every_params_dataclass_field_has_no_default():
    classes = [obj for obj in vars(params).values()
               if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == params.__name__]
    assert len(classes) >= 15
    for cls in classes:
        for f in dataclasses.fields(cls):
            assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, (cls, f.name)



@pytest.mark.parametrize(
    "change, profile, ypath, problem",
    [
        (_set("train.lr", None), "cpu", "train.lr", "missing key"),
        (_set("profiles.cpu.train.lrr", 0.1), "cpu", "profiles.cpu.train.lrr", "unknown key"),
        (_set("profiles.cpu.train.lr", -1.0), "cpu", "profiles.cpu.train.lr", "greater than 0"),
        (_set("profiles.cpu.train.batch_size", 0), "cpu", "profiles.cpu.train.batch_size", "greater than 0"),
        (_set("train.finetune.warmup_steps", -3), "cpu", "train.finetune.warmup_steps", "greater than or equal to 0"),
        (_set("profiles.cpu.vocab_sizes", {"m": -512}), "cpu", "profiles.cpu.vocab_sizes.m", "positive integer"),
        (_set("train.sizes.cpu.d_model", -512), "cpu", "train.sizes.cpu.d_model", "greater than 0"),
        (_set("train.sizes.cpu.d_model", 130), "cpu", "train.sizes.cpu", "not a multiple of n_heads"),
        (_set("profiles.cpu.train.size", "huge"), "cpu", "profiles.cpu.train.size", "not a key of train.sizes"),
        (_set("corpus.val_fraction", 1.5), "cpu", "corpus.val_fraction", "less than 1"),
        (_set("profiles.gpu.corpus.budget_bytes", "lots"), "gpu", "profiles.gpu.corpus.budget_bytes", "valid integer"),
        (_set("models.finetune.fvt-b1.tokenizer", "nope"), "cpu", "models.finetune.fvt-b1.tokenizer",
         "unknown tokenizer variant"),
        (_set("models.finetune.fvt-b1.init", "nope"), "cpu", "models.finetune.fvt-b1.init",
         "transfer output 'gpt4-m-fvt-init'"),
        (_set("models.finetune.keep-b1.init", "nope"), "cpu", "models.finetune.keep-b1.init",
         "neither 'scratch' nor a run"),
        (_set("models.finetune.keep-b1.mix", "nope"), "cpu", "models.finetune.keep-b1.mix", "unknown mix"),
        (_set("models.finetune.keep-b1.budget", "b9"), "smoke", "models.finetune.keep-b1.budget",
         "not a key of train.budget_bytes"),
        (_set("profiles.smoke.train.pretrain.tokens", 0), "smoke", "profiles.smoke.train.pretrain.tokens", "positive"),
        (_set("models.finetune.keep-b1.method", "copy"), "cpu", "models.finetune.keep-b1.method",
         "'keep', 'fvt', 'random' or 'focus'"),
        (_set("models.finetune.keep-b1.mix", None), "cpu", "models.finetune.keep-b1.mix", "missing key"),
        (_set("models.finetune.base", {"tokenizer": "general-m", "init": "base", "method": "keep", "mix": "code100",
                                       "budget": "b1"}), "cpu", "models.finetune.base",
         "already used under models.pretrain"),
        (_set("models.finetune.keep-b1.stage", "finetune"), "cpu", "models.finetune.keep-b1.stage", "names the stage"),
        (_set("models.evaluate", {}), "cpu", "models.evaluate", "unknown group"),
        (_set("tokenizers.gpt4-m.mix", "nope"), "cpu", "tokenizers.gpt4-m.mix", "unknown mix"),
        (_set("tokenizers.gpt4-m.regex", "gpt5"), "cpu", "tokenizers.gpt4-m.regex", "unknown pre-tokenizer"),
        (_set("tokenizers.gpt4-m.pattern", r"\w+"), "cpu", "tokenizers.gpt4-m", "exactly one of `regex`"),
        (_set("tokenizers.gpt4-m.vocab", "xxl"), "cpu", "tokenizers.gpt4-m.vocab", "key of vocab_sizes"),
        (_set("tokenizers.gpt4-m.max_tok_len", 16), "cpu", "tokenizers.gpt4-m.max_tok_len", "unknown key"),
        (_set("profiles.gpu.tokenizer.engine", "sentencepiece"), "gpu", "profiles.gpu.tokenizer.engine",
         "'hf', 'bpeasy' or 'rustbpe'"),
        (_set("mixes.code70", {"code": 0.7, "english": 0.4}), "cpu", "mixes.code70", "sum to 1"),
        (_set("transfer.targets", ["gpt4-m", "gpt9"]), "cpu", "transfer.targets", "['gpt9']"),
        (_set("transfer.base_tokenizer", "nope"), "cpu", "transfer.base_tokenizer", "unknown name"),
        (_set("transfer.methods", ["fvt", "magic"]), "cpu", "transfer.methods",
         "'fvt', 'mean', 'random', 'merged' or 'focus'"),
        (_set("analysis.sweep_variant", "nope"), "cpu", "analysis.sweep_variant", "unknown name"),
        (_set("profiles.smoke.analysis.overlap", ["gpt4-m", "gpt7"]), "smoke", "profiles.smoke.analysis.overlap",
         "['gpt7']"),
        (_set("metrics.references", ["llama2", "llama9"]), "cpu", "metrics.references", "['llama9']"),
        (_set("costs.sweep", ["gpt4-s", "nope"]), "cpu", "costs.sweep", "['nope']"),
        (_set("truncations.gpt4-32k.of", "nope"), "cpu", "truncations.gpt4-32k.of", "is not a variant of `tokenizers`"),
        (_set("truncations.gpt4-32k.vocab", 300_000), "cpu", "truncations.gpt4-32k.vocab",
         "300000 exceeds the vocab_size 256000 of 'gpt4-256k'"),
        (_set("truncations.gpt4-32k.mix", "code30"), "cpu", "truncations.gpt4-32k.mix", "unknown key"),
        (_set("truncations.gpt4-m", {"of": "gpt4-256k", "vocab": "m"}), "cpu", "truncations.gpt4-m",
         "name already in `tokenizers`"),
        (_set("profiles.smoke.costs.domain", "math"), "smoke", "profiles.smoke.costs.domain",
         "'english' or 'multilingual'"),
        (_set("evaluate.sandbox", "docker"), "cpu", "evaluate.sandbox", "'bwrap' or 'guard'"),
        (_set("profiles.cpu.evaluate.humaneval.limit", -4), "cpu", "profiles.cpu.evaluate.humaneval.limit",
         "greater than 0"),
        (_set("profiles.cpu.evaluate.bpb.windows", 3), "cpu", "profiles.cpu.evaluate.bpb.windows", "unknown key"),
        (_set("sources.c.domain", "prose"), "cpu", "sources.c.domain", "'english' or 'multilingual'"),
        (_set("sources.c.kind", None), "cpu", "sources.c.kind", "missing key"),
        (_set("tokenizer.engine", None), "cpu", "tokenizer.engine", "missing key"),
        (_set("profile", "laptop"), "cpu", "profile", "unknown profile 'laptop'"),
        (_set("profiles.cpu.transfer", {"noise_std": 0.1}), "cpu", "profiles.cpu.transfer", "may override"),
        (_set("reference_tokenizers", {"default": ["gpt2"]}), "cpu", "reference_tokenizers", "unknown top-level key"),
        (_set("seed", "1234"), "cpu", "seed", "must be an integer"),
    ],
)
def test_bad_params_name_the_yaml_path_and_the_file(tmp_path, change, profile, ypath, problem):
    f = _write(tmp_path, change)
    with pytest.raises(params.ParamsError) as info:
        params.load(profile, path=f)
    message = str(info.value)
    assert message.startswith(f"{f}: {ypath}: ") and problem in message, message
    assert "\n" not in message


def test_unknown_profile_names_the_profiles_and_the_file(tmp_path):
    f = _write(tmp_path)
    with pytest.raises(params.ParamsError,
                       match=r"params\.yaml: profiles: unknown profile 'tpu'; .*\['cpu', 'gpu', 'gpu-dry', 'smoke'\]"):
        params.load("tpu", path=f)
    with pytest.raises(params.ParamsError, match="unknown tokenizer variant 'nope'"):
        params.load("smoke", path=f).tokenizer("nope")
    with pytest.raises(params.ParamsError, match="unknown model run 'nope'"):
        params.load("smoke", path=f).model("nope")


def test_yaml_syntax_error_is_one_sentence_with_file_and_line(tmp_path):
    text = "profile: cpu\nseed: 1\nmixes: {code70: {code: 0.7, english: 0.3}\nprofiles: {}\n"
    f = _write(tmp_path, text=text)
    with pytest.raises(params.ParamsError) as info:
        params.load(path=f)
    message = str(info.value)
    assert message.startswith(f"{f}, line 4: YAML syntax error") and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_raw_pattern_replaces_the_regex_name(tmp_path):
    def change(raw):
        raw["tokenizers"]["gpt4-m"] = {"pattern": r" ?\w+| ?[^\w\s]+|\s+", "vocab": "m", "mix": "code70"}
    v = params.load("cpu", path=_write(tmp_path, change)).tokenizer("gpt4-m")
    assert (v.regex, v.pattern, v.vocab_size) == (None, r" ?\w+| ?[^\w\s]+|\s+", 8192)


def test_source_path_candidates_pick_the_first_that_exists(tmp_path):
    there = tmp_path / "src.zip"
    there.write_bytes(b"")
    rest = dict(fetch=None, sha256=None, root=None, include="**/*.java", exclude=(), package="jdk")
    spec = params.SourceSpec(name="j", kind="zip", language="java", domain="code",
                             path=[str(tmp_path / "missing.zip"), str(there)], **rest)
    assert (spec.path, spec.include, spec.package) == (str(there), ("**/*.java",), ("jdk",))
    none = params.SourceSpec(name="j", kind="zip", language="java", domain="code", path=["/nope/a.zip", "/nope/b.zip"],
                             **rest)
    assert none.path == "/nope/a.zip"  # the corpus build then names the missing file


def test_a_sandbox_limit_under_which_correct_code_fails_is_refused_at_load(tmp_path):
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    assert "memory_mb: 1024" in text
    bad = tmp_path / "params.yaml"
    bad.write_text(text.replace("memory_mb: 1024", "memory_mb: 10", 1), encoding="utf-8")
    with pytest.raises(params.ParamsError, match=r"evaluate\.humaneval.*memory_mb 10 is under 64: .*read 0"):
        params.load("cpu", path=bad)
