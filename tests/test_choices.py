"""Each set of choices is declared once (tokstudy.choices) and every table that implements it holds exactly it."""

from __future__ import annotations

import pytest

from tokstudy import bpe, choices, params, pretok, reference, transfer
from tokstudy.errors import ParamsError


def test_each_implementation_table_holds_exactly_its_choices():
    assert tuple(pretok.PRETOKENIZERS) == choices.REGEXES
    assert tuple(reference.REFERENCES) == choices.REFERENCES
    assert bpe.ENGINES == choices.ENGINES
    assert transfer.METHODS == choices.TRANSFER_METHODS


def test_the_sandbox_and_the_cli_offer_the_same_backends():
    from tokstudy import cli, sandbox

    assert tuple(sandbox.BACKENDS) == choices.SANDBOX_BACKENDS
    evaluate = cli.build_parser()._subparsers._group_actions[0].choices["evaluate"]
    flag = next(a for a in evaluate._actions if "--sandbox" in a.option_strings)
    assert tuple(flag.choices) == choices.SANDBOX_BACKENDS


def test_params_checks_names_against_the_declared_choices(tmp_path):
    text = params.paths.PARAMS_FILE.read_text(encoding="utf-8")
    bad = tmp_path / "params.yaml"
    bad.write_text(text.replace("{regex: gpt4,", "{regex: gtp4,", 1), encoding="utf-8")
    with pytest.raises(ParamsError, match=r"regex: unknown pre-tokenizer 'gtp4'; choose one of .*'gpt4'"):
        params.load(path=bad)
    bad.write_text(text.replace("sandbox: bwrap", "sandbox: docker", 1), encoding="utf-8")
    with pytest.raises(ParamsError, match=r"evaluate\.sandbox: .*'bwrap'"):
        params.load(path=bad)
