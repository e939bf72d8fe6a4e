"""tokstudy.packing: packing layout, byte accounting, checks, shuffling and sharding."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_bpe
from tokstudy import packing, paths
from tokstudy.errors import DataError
from tokstudy.packing import PackedDataset

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<pad>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"]
TEXTS = [
    "def add(a, b):\n    return a + b\n",
    "The quick brown fox jumps over the lazy dog.",
    "for (int i = 0; i < n; i++) { sum += x[i]; }",
    "import os\nprint(os.getcwd())\n",
    "naïve café — ünïcode ✓",
]


def tiny_tokenizer(vocab_size: int = 300, texts=TEXTS):
    return tiny_bpe(list(texts) * 4, vocab_size, SPECIALS)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def test_write_rows_layout_and_byte_shares(tmp_path):
    # docs [5 6] (2 bytes) and [7] (1 byte), eos 1: stream 5 6 1 7 1, seq_len 2
    # rows [5 6 1] [1 7 1]; targets are stream[1..4] = 6 1 | 7 1
    # doc 0 has 2 of its 3 tokens (6, eos) as targets -> 2 * 2/3 bytes; doc 1 all -> 1 byte
    meta = packing.write_rows([([5, 6], 2), ([7], 1)], tmp_path, 2, eos_id=1)
    assert (meta.n_rows, meta.n_tokens, meta.n_docs) == (2, 4, 2)
    assert meta.n_bytes == round(2 * 2 / 3 + 1)
    rows = np.fromfile(tmp_path / "shard_00000.bin", dtype="<u4").reshape(2, 3)
    assert rows.tolist() == [[5, 6, 1], [1, 7, 1]]


def test_rows_split_across_shards_and_uint32_ids(tmp_path):
    big = [70000 + i for i in range(10)]  # beyond uint16
    meta = packing.write_rows([(big, 10)], tmp_path, 3, eos_id=1, rows_per_shard=2)
    # stream = 10 ids + eos = 11 tokens -> (11 - 1) // 3 = 3 rows, shards of 2 + 1
    assert meta.n_rows == 3 and [n for _, n in meta.shards] == [2, 1]
    (tmp_path / packing.META).write_text(meta.to_json())
    ds = PackedDataset(tmp_path, shuffle=False)
    got = [ds.row(i).tolist() for i in range(3)]
    stream = big + [1]
    assert got == [stream[0:4], stream[3:7], stream[6:10]]


def test_pack_round_trips_text_and_records_meta(tmp_path, tok):
    meta = packing.pack(TEXTS, tok, tmp_path / "p", seq_len=8)
    ds = PackedDataset(tmp_path / "p", shuffle=False, seq_len=8, tokenizer=tok)
    stream = [int(x) for x in ds.row(0)] + [int(t) for i in range(1, ds.n_rows) for t in ds.row(i)[1:]]
    eos = tok.token_to_id("<|end_of_text|>")
    full = []
    for t in TEXTS:
        full += tok.encode(t, add_special_tokens=False).ids + [eos]
    assert stream == full[: len(stream)]
    assert len(stream) == meta.n_tokens + 1 == (len(full) - 1) // 8 * 8 + 1
    on_disk = json.loads((tmp_path / "p" / "meta.json").read_text())
    assert on_disk["tokenizer_sha256"] == packing.tokenizer_sha256(tok) and on_disk["dtype"] == "uint32"
    # everything but a dropped tail of < 8 tokens is covered, so bytes are close to the total
    total = sum(len(t.encode()) for t in TEXTS)
    assert 0.8 * total < meta.n_bytes <= total


def test_max_tokens_caps_the_budget(tmp_path, tok):
    meta = packing.pack(TEXTS * 20, tok, tmp_path / "b", seq_len=8, max_tokens=100)
    assert meta.n_tokens == 100 // 8 * 8 and meta.max_tokens == 100


def test_mismatches_are_clear_errors(tmp_path, tok):
    packing.pack(TEXTS, tok, tmp_path / "m", seq_len=8)
    with pytest.raises(DataError, match="seq_len=8"):
        PackedDataset(tmp_path / "m", seq_len=16)
    other = tiny_tokenizer(280)
    with pytest.raises(DataError, match="another tokenizer"):
        PackedDataset(tmp_path / "m", tokenizer=other)
    with pytest.raises(DataError, match="pack the data first"):
        PackedDataset(tmp_path / "missing")


def test_pack_reuses_matching_data_and_rewrites_on_change(tmp_path, tok):
    out = tmp_path / "r"
    packing.pack(TEXTS, tok, out, seq_len=8)
    stamp = (out / "shard_00000.bin").stat().st_mtime_ns
    packing.pack(TEXTS, tok, out, seq_len=8)
    assert (out / "shard_00000.bin").stat().st_mtime_ns == stamp
    meta = packing.pack(TEXTS, tok, out, seq_len=4)
    assert PackedDataset(out).seq_len == 4 == meta.seq_len


def test_failed_pack_leaves_previous_data(tmp_path, tok, monkeypatch):
    out = tmp_path / "a"
    first = packing.pack(TEXTS, tok, out, seq_len=8)

    def boom(*a, **k):
        raise RuntimeError("killed mid-way")

    monkeypatch.setattr(packing, "write_rows", boom)
    with pytest.raises(RuntimeError):
        packing.pack(TEXTS, tok, out, seq_len=4)
    assert PackedDataset(out).meta == first
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # no temporary directory left


def test_a_killed_pack_leaves_a_temp_folder_that_the_next_pack_removes(tmp_path, tok):
    killed = tmp_path / ".tok.ab12_xyz.tmp"  # what paths.atomic_dir leaves when the process is killed
    killed.mkdir()
    (killed / "shard_00000.bin").write_bytes(b"\0" * 8)
    other = tmp_path / ".tok2.ab12_xyz.tmp"  # another target's temp folder is not ours
    other.mkdir()
    packing.pack(TEXTS, tok, tmp_path / "tok", seq_len=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tok2.ab12_xyz.tmp", "tok"]


def test_pack_fsyncs_every_file_and_the_parent_directory(tmp_path, tok, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(paths.os, "fsync", spy)
    packing.pack(TEXTS, tok, tmp_path / "p", seq_len=8)
    names = {Path(s).name for s in synced}
    assert {"shard_00000.bin", packing.META} <= names  # the files, written in the temp folder
    assert str(tmp_path) in synced  # the parent, after the rename made the folder visible


def _rows_dataset(tmp_path, n_rows=10):
    docs = [(list(range(10 + 3 * i, 12 + 3 * i)), 2) for i in range(n_rows)]  # 2 ids + eos = 3 per doc
    meta = packing.write_rows(docs, tmp_path, 3, eos_id=1)
    meta = packing.PackMeta(**{**meta.__dict__, "tokenizer_sha256": "x"})
    (tmp_path / packing.META).write_text(meta.to_json())
    return meta


def test_shuffle_is_deterministic_and_changes_per_epoch(tmp_path):
    meta = _rows_dataset(tmp_path)
    a, b = PackedDataset(tmp_path, seed=1), PackedDataset(tmp_path, seed=1)
    c = PackedDataset(tmp_path, seed=2)
    n = meta.n_rows
    first = lambda ds, e: [int(ds.sample(e * n + i)[0]) for i in range(n)]  # noqa: E731
    assert first(a, 0) == first(b, 0) != first(c, 0)
    assert first(a, 0) != first(a, 1)
    assert sorted(first(a, 1)) == sorted(first(a, 0))  # every epoch is a permutation of all rows
    plain = PackedDataset(tmp_path, shuffle=False)
    assert [int(plain[i][0]) for i in range(n)] == [int(plain.row(i)[0]) for i in range(n)]


def test_ddp_shards_are_disjoint_and_equal(tmp_path):
    meta = _rows_dataset(tmp_path, n_rows=11)
    shards = [PackedDataset(tmp_path, seed=3, rank=r, world_size=3) for r in range(3)]
    assert {len(s) for s in shards} == {meta.n_rows // 3}
    seen = [tuple(s[i].tolist()) for s in shards for i in range(len(s))]
    assert len(set(seen)) == len(seen) == 3 * (meta.n_rows // 3)
    assert shards[0].batch(0, 2).shape == (2, 4)


def test_bits_per_byte_hand_computed():
    meta = packing.PackMeta(seq_len=4, n_rows=1, n_tokens=4, n_bytes=16, n_docs=1, eos_id=1, tokenizer_sha256="",
                            shards=())
    # ln 2 nats per token at 4 bytes per token -> 1 bit / 4 bytes
    assert math.isclose(packing.loss_to_bits_per_byte(math.log(2), meta), 0.25)
