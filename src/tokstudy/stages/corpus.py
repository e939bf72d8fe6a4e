"""Pipeline step ``corpus`` (notebook 00): build ``data/<profile>/corpus`` from the profile's sources."""

from __future__ import annotations

from pathlib import Path

from tokstudy import corpus, paths, results
from tokstudy.params import Params


def build_corpus(P: Params) -> Path:
    """Build ``data/<profile>/corpus`` (:func:`tokstudy.corpus.build`); run record ``corpus-corpus.json``."""
    specs = corpus.select_sources(P.sources, P.corpus.sources)
    manifest = corpus.build(specs, P.corpus, paths.corpus_dir(P.profile), label=P.profile)
    rows = [{"split": "all", "metric": "documents", "value": manifest["documents"]},
            {"split": "all", "metric": "bytes", "value": manifest["bytes"]}]
    for split, s in manifest["splits"].items():
        rows += [{"split": split, "metric": "documents", "value": s["documents"]},
                 {"split": split, "metric": "bytes", "value": s["bytes"]}]
    return results.write_run(P.profile, "corpus", "corpus", rows, params=P.corpus, seed=P.seed,
                             inputs=[paths.corpus_dir(P.profile)], extra={"sha256": manifest["sha256"]})


__all__ = ["build_corpus"]
