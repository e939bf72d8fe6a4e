"""The DVC pipeline and params.yaml agree with each other, for every profile.

Stages are resolved by DVC itself (``foreach`` and ``${...}`` expanded against params.yaml, with
``profile`` set to each profile in a temporary copy), so these tests see what ``dvc repro`` runs.
"""

import functools
import shutil
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo

from tokstudy import params

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
PROFILES = ("smoke", "cpu", "gpu", "gpu-dry")


def _copy(dest: Path, profile: str, code: bool = False) -> Path:
    """dvc.yaml, .dvcignore and params.yaml (with ``profile`` set) in ``dest``, a fresh DVC repo (no git)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, dest / name)
    raw = params.read_yaml()
    text = (ROOT / "params.yaml").read_text().replace(f"\nprofile: {raw['profile']}\n", f"\nprofile: {profile}\n", 1)
    assert yaml.safe_load(text)["profile"] == profile
    (dest / "params.yaml").write_text(text)
    if code:
        shutil.copytree(ROOT / "src/tokstudy", dest / "src/tokstudy", ignore=shutil.ignore_patterns("__pycache__"),
                        symlinks=True)  # src/tokstudy/params.yaml stays a link to the copy's params.yaml
        shutil.copytree(ROOT / "notebooks", dest / "notebooks")
    Repo.init(str(dest), no_scm=True).close()
    return dest


@functools.cache
def resolved(profile: str) -> dict[str, dict]:
    """Every stage of dvc.yaml at ``profile``: address -> {cmd, deps, outs, params}."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, Repo(str(_copy(Path(tmp), profile))) as repo:
        out = {}
        for stage in repo.index.stages:
            keys = [f"{k}" for d in stage.deps if hasattr(d, "params") for k in d.params]
            out[stage.name] = {
                "cmd": stage.cmd,
                "deps": [str(d.def_path) for d in stage.deps if not hasattr(d, "params")],
                "outs": [str(o.def_path) for o in stage.outs],
                "params": keys,
            }
        return out


def _group(stages: dict, name: str) -> dict[str, dict]:
    return {a.split("@", 1)[1] if "@" in a else a: s for a, s in stages.items() if a.split("@")[0] == name}


def test_every_stage_runs_an_existing_notebook_through_papermill():
    for address, stage in resolved("cpu").items():
        assert "papermill" in stage["cmd"], address
        nb = next(w for w in stage["cmd"].split() if w.startswith("notebooks/"))
        assert (ROOT / nb).is_file(), nb
        assert nb in stage["deps"], f"{address} must list its notebook as a dep"


@pytest.mark.parametrize("profile", PROFILES)
def test_templating_resolves_for_every_profile(profile):
    """Paths are scoped by the profile and every tracked param exists (dvc repro fails on a missing one)."""
    stages = resolved(profile)
    raw = params.read_yaml()
    for address, stage in stages.items():
        assert "${" not in stage["cmd"] + " ".join(stage["deps"] + stage["outs"] + stage["params"]), address
        for out in stage["outs"]:
            assert out.split("/")[1] == profile, f"{address}: {out} is not under <folder>/{profile}/"
        for key in stage["params"]:
            node = raw
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{address}: params.yaml has no {key}"
                node = node[part]


@pytest.mark.parametrize("profile", PROFILES)
def test_model_stages_are_the_models_section(profile):
    P, stages = params.load(profile), resolved(profile)
    for stage in ("pretrain", "finetune"):
        runs = {n for n, r in P.models.items() if r.stage == stage}
        assert set(_group(stages, stage)) == runs
        assert set(_group(stages, f"evaluate_{stage}")) == runs
    outs = {o for s in stages.values() for o in s["outs"]}
    for name, stage in _group(stages, "finetune").items():
        start = f"data/{profile}/models/{P.model(name).init_model}"
        assert start in stage["deps"] and start in outs, f"finetune@{name} starts from {start}, which no stage writes"
    assert P.model("base").stage == "pretrain" and P.model("base").tokenizer == P.transfer.base_tokenizer
    # every replicate of a run (train.<stage>.seeds) is an output of its stages, in every profile
    for stage in ("pretrain", "finetune"):
        for name, s in _group(stages, stage).items():
            reps = [r for r, _ in P.model(name).replicates(P.seed)]
            assert [o for o in s["outs"] if o.startswith(f"data/{profile}/models/")] == [
                f"data/{profile}/models/{r}" for r in reps], name
            assert [o for o in s["outs"] if "/runs/" in o] == [f"results/{profile}/runs/train-{r}.json" for r in reps]
            assert _group(stages, f"evaluate_{stage}")[name]["outs"] == [
                f"results/{profile}/runs/evaluate-{r}.json" for r in reps]


@pytest.mark.parametrize("profile", PROFILES)
def test_names_dvc_cannot_interpolate_match_params(profile):
    """A list cannot be interpolated into a dvc command or outs: the copies there must equal params.yaml."""
    P, stages = params.load(profile), resolved(profile)
    refs = stages["reference_metrics"]
    assert f'-y "tokenizers: [{", ".join(P.metrics.references)}]"' in refs["cmd"]
    assert refs["outs"] == [f"results/{profile}/runs/compression-{r}.json" for r in P.metrics.references]
    T, transfer = P.transfer, stages["transfer"]
    assert f'-y "targets: [{", ".join(T.targets)}]"' in " ".join(transfer["cmd"].split())
    assert transfer["outs"] == [f"data/{profile}/models/{t}-{m}-init" for t in T.targets for m in T.methods] + [
        f"results/{profile}/runs/transfer-{t}-{m}.json" for t in T.targets for m in T.methods]
    assert {f"data/{profile}/tokenizers/{t}" for t in [*T.targets, T.base_tokenizer]} <= set(transfer["deps"])
    # every trained variant in exactly one family stage, with its params key and its three outputs
    families = {a: s for a, s in stages.items() if a.startswith("tokenizers_")}
    listed = []
    for address, stage in families.items():
        names = yaml.safe_load(stage["cmd"].split(" -y ", 1)[1].strip().strip('"'))["variants"]
        listed += names
        assert stage["outs"] == [f for n in names for f in (f"data/{profile}/tokenizers/{n}",
                                                            f"results/{profile}/runs/tokenizer_train-{n}.json",
                                                            f"results/{profile}/runs/compression-{n}.json")], address
        assert {f"tokenizers.{n}" for n in names} <= set(stage["params"]), address
        assert not {k for k in stage["params"] if k.startswith("tokenizers.")} - {f"tokenizers.{n}" for n in names}
    assert sorted(listed) == sorted(n for n, v in P.tokenizers.items() if not v.truncate_of)
    cut = [n for n, v in P.tokenizers.items() if v.truncate_of]
    truncate = stages["truncate_tokenizers"]
    assert f'-y "variants: [{", ".join(cut)}]"' in " ".join(truncate["cmd"].split())
    assert truncate["outs"] == [f for n in cut for f in (f"data/{profile}/tokenizers/{n}",
                                                          f"results/{profile}/runs/tokenizer_train-{n}.json",
                                                          f"results/{profile}/runs/compression-{n}.json")]
    parents = {f"data/{profile}/tokenizers/{P.tokenizer(n).truncate_of}" for n in cut}
    assert parents == {d for d in truncate["deps"] if d.startswith(f"data/{profile}/tokenizers/")}


def test_transfer_covers_every_model_side_tokenizer_variant_but_the_base_ones():
    P = params.load("cpu")
    T = P.transfer
    model_side = {n for n, v in P.tokenizers.items() if v.vocab in ("xs", "s", "m", "l")}
    assert set(T.targets) == model_side - {T.base_tokenizer}
    assert set(T.methods) == {"fvt", "random", "mean", "merged", "focus"}


def test_fewer_stages_than_items():
    """Five tokenizer families, the truncations, the references and the transfers one kernel each; one per model
    run and per evaluation (gpu: minutes each); corpus, costs, vocab analysis, model ablations and figures."""
    P, stages = params.load("cpu"), resolved("cpu")
    families = [a for a in stages if a.startswith("tokenizers_")]
    assert len(families) == 5 and len(stages) == 5 + 1 + 1 + 1 + 2 * len(P.models) + 5


def test_editing_a_module_changes_the_code_dep_of_the_stages_that_run_it_and_bytecode_changes_nothing(tmp_path):
    """What ``dvc status`` compares: the hash DVC records for each stage's code deps."""
    _copy(tmp_path, "cpu", code=True)

    def hashes():
        with Repo(str(tmp_path)) as repo:
            return {
                (s.name, str(d.def_path)): d.get_hash()
                for s in repo.index.stages
                for d in s.deps
                if str(d.def_path).startswith(("src/", "notebooks/"))
            }

    before = hashes()
    cache = tmp_path / "src/tokstudy/__pycache__"
    cache.mkdir()
    (cache / "bpe.cpython-312.pyc").write_bytes(b"\0" * 16)
    assert hashes() == before, ".dvcignore must keep __pycache__ out of the code deps"
    assert (tmp_path / "src/tokstudy/params.yaml").is_symlink()
    params_file = tmp_path / "params.yaml"
    params_file.write_text(params_file.read_text().replace("\nseed: 1234\n", "\nseed: 4321\n", 1))
    assert "seed: 4321" in (tmp_path / "src/tokstudy/params.yaml").read_text()
    assert hashes() == before, ".dvcignore must keep the packaged params.yaml link out of the code deps"
    with open(tmp_path / "src/tokstudy/bpe.py", "a") as fh:
        fh.write("\n# edited\n")
    after = hashes()
    changed = {(a, p) for (a, p), h in after.items() if h != before[(a, p)]}
    assert {p for _, p in changed} == {"src/tokstudy/bpe.py"}
    runs_bpe = {a for a, s in resolved("cpu").items() if "src/tokstudy/bpe.py" in s["deps"]}
    assert {a for a, _ in changed} == runs_bpe and runs_bpe, "only the stages that run bpe.py see the edit"
    assert not any(a.startswith(("pretrain", "finetune", "evaluate", "figures")) for a in runs_bpe)


def test_params_yaml_parses_with_libyaml_as_dvc_reads_it():
    """DVC re-reads params.yaml once per stage (41 times in `dvc status`) with ruamel's "safe" loader, which is
    libyaml's C parser when ruamel.yaml.clib is installed (pinned: 7.6 s -> 2.5 s). libyaml is stricter than the
    pure-Python parser (a `:` inside a plain scalar of a {flow} mapping is an error), so the file must stay in the
    subset both read, giving the same mapping; a fall-back to the slow parser would fail here too."""
    from ruamel.yaml import YAML
    from ruamel.yaml.main import CParser

    text = (ROOT / "params.yaml").read_text()
    loader = YAML(typ="safe")
    assert loader.Parser is CParser
    assert loader.load(text) == yaml.safe_load(text) == params.read_yaml()
