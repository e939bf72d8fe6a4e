"""Pipeline step ``corpus`` (notebook 00): build ``data/<profile>/corpus`` from the profile's sources."""

from __future__ import annotations

from pathlib import Path

from tokstudy import corpus, paths, results
from tokstudy.params import Params


def build_corpus(P: Params) -> Path:
    """Build ``data/<profile>/corpus`` (:func:`tokstudy.corpus.build`); run record ``corpus-corpus.json``
    (documents and bytes per split, verbatim-line overlap with train per dataset and domain)."""
    specs = corpus.select_sources(P.sources, P.corpus.sources)
    manifest = corpus.build(specs, P.corpus, paths.corpus_dir(P.profile), label=P.profile)
    rows = [{"split": "all", "metric": "documents", "value": manifest["documents"]},
            {"split": "all", "metric": "bytes", "value": manifest["bytes"]}]
    for split, s in manifest["splits"].items():
        rows += [{"split": split, "metric": "documents", "value": s["documents"]},
                 {"split": split, "metric": "bytes", "value": s["bytes"]}]
    # share of a split's bytes in long lines that appear verbatim in train (tokstudy.corpus.verbatim_overlap)
    for split, o in manifest["overlap"].items():
        rows += [{"split": split, "dataset": lang, "domain": e["domain"], "metric": "verbatim_overlap",
                  "value": e["share"]} for lang, e in o["datasets"].items()]
        rows += [{"split": split, "domain": dom, "metric": "verbatim_overlap", "value": e["share"]}
                 for dom, e in o["domains"].items()]
    return results.write_run(P.profile, "corpus", "corpus", rows, params=P.corpus, seed=P.seed,
                             inputs=[paths.corpus_dir(P.profile)],
                             extra={"sha256": manifest["sha256"], "overlap": manifest["overlap"]})


__all__ = ["build_corpus"]
