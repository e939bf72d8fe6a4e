"""``python -m tokstudy.stages all``: every dvc.yaml stage's step, in DVC's order, calling what its notebook calls."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import nbformat
from dvc.repo import Repo

from tokstudy.stages import pipeline

ROOT = Path(__file__).resolve().parents[1]
# what notebooks call besides their steps, to show a result: readers, which write nothing
READERS = {"tokenizers.handle", "train.run_dir", "summary.read_metric_folder"}  # reading, not steps


def _step_calls(tree: ast.AST) -> set[str]:
    """``module.function`` of every call on a ``tokstudy.stages`` module imported in ``tree``."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "tokstudy.stages":
            aliases |= {(a.asname or a.name): a.name for a in node.names}
    return {f"{aliases[n.func.value.id]}.{n.func.attr}" for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
            and n.func.value.id in aliases and aliases[n.func.value.id] != "inputs"}


def test_each_notebook_and_its_steps_entry_call_the_same_steps():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert {nb.stem for nb in notebooks} == set(pipeline.STEPS)
    for nb in notebooks:
        cells = [c.source for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code"]
        in_notebook = _step_calls(ast.parse("\n".join(cells))) - READERS
        in_table = _step_calls(ast.parse(inspect.getsource(pipeline.STEPS[nb.stem])))
        assert in_notebook and in_notebook == in_table, (nb.stem, in_notebook, in_table)


def test_stages_come_dependencies_first_with_their_notebook_parameters():
    order = pipeline.stages(ROOT)
    position = {address: i for i, (address, _, _) in enumerate(order)}
    with Repo(str(ROOT)) as repo:
        graph = repo.index.graph
        assert set(position) == {s.addressing for s in repo.index.stages}
        for stage, dep in graph.edges:  # DVC's edges: a stage -> a stage it depends on
            assert position[dep.addressing] < position[stage.addressing], (stage.addressing, dep.addressing)
    by = {address: (notebook, params) for address, notebook, params in order}
    assert by["corpus"] == ("00_corpus", {"profile": "cpu"})
    mix = ["gpt4-80k-eng", "gpt4-80k-code", "gpt4-80k-balanced"]
    assert by["tokenizers_mix"] == ("01_train_tokenizer", {"profile": "cpu", "variants": mix})
    assert by["finetune@fvt-b1"] == ("05_finetune", {"profile": "cpu", "runs": ["fvt-b1"]})


def test_notebook_call_reads_p_and_y_parameters():
    cmd = ('mkdir -p runs/x && papermill --engine tokstudy -k python3 notebooks/02_tokenizer_metrics.ipynb '
           'runs/x/02.ipynb -p profile cpu -p n 3 -y "tokenizers: [llama2, gpt2]"')
    assert pipeline.notebook_call(cmd) == ("02_tokenizer_metrics", {"profile": "cpu", "n": 3,
                                                                    "tokenizers": ["llama2", "gpt2"]})
