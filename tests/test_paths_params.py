import json
import textwrap

import pytest

from tokstudy import params, paths


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
    assert paths.figures_dir(paths.DEFAULT_PROFILE) == paths.FIGURES
    assert paths.figures_dir("smoke") == paths.FIGURES / "smoke"


def test_repo_params_resolve_every_profile():
    for profile in ("smoke", "cpu", "gpu"):
        P = params.load(profile)
        assert P.profile == profile
        assert {"code", "english"} <= {s.domain for s in P.sources.values()}
        for v in P.tokenizers.values():
            assert v.vocab_size >= 256 + len(v.special_tokens), (profile, v)
        # the vocab sweep is ordered by the profile's ladder
        sweep = [P.tokenizer(f"gpt4-{k}").vocab_size for k in ("xs", "s", "m", "l")]
        assert sweep == sorted(sweep) and len(set(sweep)) == 4


def _write(tmp_path, body):
    f = tmp_path / "params.yaml"
    f.write_text(textwrap.dedent(body))
    return f


BASE = """
profile: small
mixes: {m: {code: 0.5, english: 0.5}}
profiles:
  small:
    vocab_sizes: {a: 300}
    tokenizer: {train_bytes: 10}
    metrics: {max_docs: 3}
tokenizers:
  t1: {regex: gpt4, vocab: a, mix: m}
  t2: {regex: punct, vocab: 1000, mix: m, max_token_length: 16}
"""


def test_profile_overrides_and_vocab_ladder(tmp_path):
    P = params.load(path=_write(tmp_path, BASE))
    assert P.profile == "small"
    assert P.tokenizer("t1").vocab_size == 300 and P.tokenizer("t1").train_bytes == 10
    assert P.tokenizer("t2").vocab_size == 1000 and P.tokenizer("t2").max_token_length == 16
    assert P.metrics.max_docs == 3 and P.metrics.renyi_alpha == 2.5


@pytest.mark.parametrize(
    "patch, message",
    [
        (("vocab: a,", "vocab: zz,"), "vocab_sizes"),
        (("mix: m}\n  t2", "mix: nope}\n  t2"), "unknown mix"),
        (("{code: 0.5, english: 0.5}", "{code: 0.5, english: 0.6}"), "sum to 1"),
        (("max_token_length: 16", "max_tok_len: 16"), "unknown key"),
    ],
)
def test_bad_params_name_the_problem(tmp_path, patch, message):
    with pytest.raises(params.ParamsError, match=message):
        params.load(path=_write(tmp_path, BASE.replace(*patch)))


def test_unknown_profile_and_variant(tmp_path):
    f = _write(tmp_path, BASE)
    with pytest.raises(params.ParamsError, match="unknown profile 'gpu'"):
        params.load("gpu", path=f)
    with pytest.raises(params.ParamsError, match="unknown tokenizer variant"):
        params.load(path=f).tokenizer("nope")


def test_section_merges_profile_override(tmp_path):
    f = _write(tmp_path, BASE + "things: {a: 1, b: {c: 2, d: 3}}\n")
    text = f.read_text().replace("    metrics: {max_docs: 3}", "    metrics: {max_docs: 3}\n    things: {b: {d: 4}}")
    f.write_text(text)
    assert dict(params.load(path=f).section("things")) == {"a": 1, "b": {"c": 2, "d": 4}}


def test_source_path_candidates_pick_the_first_that_exists(tmp_path):
    there = tmp_path / "src.zip"
    there.write_bytes(b"")
    spec = params.SourceSpec(name="j", kind="zip", language="java", domain="code",
                             path=[str(tmp_path / "missing.zip"), str(there)])
    assert spec.path == str(there)
    none = params.SourceSpec(name="j", kind="zip", language="java", domain="code", path=["/nope/a.zip", "/nope/b.zip"])
    assert none.path == "/nope/a.zip"  # the corpus build then names the missing file
