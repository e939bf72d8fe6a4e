"""Tokenise and pack text into fixed-length training sequences on disk.

What it does
    :func:`pack` encodes documents with a tokenizer, joins them with the
    ``<|end_of_text|>`` token (appended after every document) and writes the
    token stream as memory-mapped **uint32** shards of fixed-length rows, plus a
    ``meta.json`` that says what was packed (tokenizer sha256, ``seq_len``,
    token and source-byte counts). :class:`PackedDataset` reads them back as a
    torch ``Dataset`` with deterministic per-epoch shuffling and DDP sharding.

What it does not do
    No model code and no CUDA (that is :mod:`tokstudy.training`); no corpus
    reading: which documents a run packs is :func:`tokstudy.stages.train.run_texts`.

Layout (``format: tokstudy-packed-v1``)
    The token stream ``t[0], t[1], ...`` (``doc0 eos doc1 eos ...``) is cut into
    ``n_rows`` rows of ``seq_len + 1`` tokens; row ``i`` holds
    ``t[i*seq_len : (i+1)*seq_len + 1]``, so consecutive rows share one token
    and every stream token after the first is a *target* exactly once
    (``input = row[:-1]``, ``target = row[1:]``). Rows are stored row-major in
    ``shard_00000.bin, shard_00001.bin, ...`` (raw little-endian uint32, no
    header; the shape is in ``meta.json``). ``n_tokens = n_rows * seq_len`` is
    the number of target tokens; the tail that does not fill a row is dropped.
    uint32 because vocabularies of the ``gpu`` profile (128k, 256k) exceed the
    uint16 that nanoGPT uses.

Bytes
    ``n_bytes`` is the UTF-8 size of the source text whose tokens are targets:
    whole documents, plus a token-proportional share of the one document cut by
    ``max_tokens`` or by the dropped tail. ``n_bytes / n_tokens`` is what
    converts a mean per-token loss into bits per byte (see
    :func:`loss_to_bits_per_byte`), the only loss that is comparable across tokenizers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from tokstudy import paths
from tokstudy.errors import DataError

log = logging.getLogger(__name__)

FORMAT = "tokstudy-packed-v1"
DTYPE = np.uint32
EOS_TOKEN = "<|end_of_text|>"
META = "meta.json"


@dataclass(frozen=True)
class PackMeta:
    """What a packed directory holds; written as ``meta.json``."""

    seq_len: int
    n_rows: int
    n_tokens: int  # target tokens = n_rows * seq_len
    n_bytes: int  # UTF-8 bytes of source text behind those targets
    n_docs: int  # documents with at least one token in the rows
    eos_id: int
    tokenizer_sha256: str
    shards: tuple[tuple[str, int], ...]  # (file name, rows)
    texts_sha256: str = ""
    max_tokens: int | None = None
    tokenizer_name: str = ""
    vocab_size: int | None = None
    dtype: str = "uint32"
    format: str = FORMAT

    @property
    def row_len(self) -> int:
        return self.seq_len + 1

    @property
    def bytes_per_token(self) -> float:
        return self.n_bytes / self.n_tokens if self.n_tokens else float("nan")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1) + "\n"

    @classmethod
    def read(cls, directory: str | Path) -> PackMeta:
        path = Path(directory) / META
        if not path.is_file():
            raise DataError(f"no {META} in {directory}: pack the data first with tokstudy.packing.pack(...)")
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            raise DataError(f"{path}: format {raw.get('format')!r} is not {FORMAT!r}; delete the directory and re-pack")
        raw["shards"] = tuple((str(f), int(n)) for f, n in raw["shards"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


# --------------------------------------------------------------------------- tokenizers


def _backend(tokenizer: Any):
    """A ``tokenizers.Tokenizer`` from a path, a Tokenizer, an HF fast tokenizer or a TokenizerHandle."""
    import tokenizers

    if isinstance(tokenizer, tokenizers.Tokenizer):
        return tokenizer
    if isinstance(tokenizer, (str, Path)):
        path = Path(tokenizer)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise DataError(f"no tokenizer at {path}: train it first (notebook 01) or pass a tokenizer.json path")
        return tokenizers.Tokenizer.from_file(str(path))
    if hasattr(tokenizer, "backend_tokenizer"):  # transformers PreTrainedTokenizerFast
        return tokenizer.backend_tokenizer
    if hasattr(tokenizer, "to_hf"):  # tokstudy.tokenizer.TokenizerHandle
        return tokenizer.to_hf().backend_tokenizer
    raise DataError(
        f"cannot use {type(tokenizer).__name__} as a tokenizer: pass a tokenizer.json path, a "
        "tokenizers.Tokenizer, a PreTrainedTokenizerFast or a tokstudy.tokenizer.TokenizerHandle"
    )


def tokenizer_sha256(tokenizer: Any) -> str:
    """sha256 of the tokenizer's canonical JSON serialisation (same for a file and its loaded object)."""
    return _tokenizer_sha(tokenizer)


def _tokenizer_sha(tokenizer: Any) -> str:
    return hashlib.sha256(_backend(tokenizer).to_str().encode("utf-8")).hexdigest()


def texts_sha256(texts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(hashlib.sha256(t.encode("utf-8")).digest())
    return h.hexdigest()


# --------------------------------------------------------------------------- writing


def pack(
    texts: Sequence[str],
    tokenizer: Any,
    out_dir: str | Path,
    seq_len: int,
    *,
    max_tokens: int | None = None,
    eos_id: int | None = None,
    rows_per_shard: int = 1 << 16,
    batch_docs: int = 256,
    overwrite: bool = False,
) -> PackMeta:
    """Encode ``texts`` and write packed rows of ``seq_len + 1`` tokens to ``out_dir``.

    ``max_tokens`` caps the number of *target* tokens (a fine-tuning budget):
    packing stops after ``max_tokens // seq_len`` rows. If ``out_dir`` already
    holds data packed from the same texts, tokenizer, ``seq_len`` and
    ``max_tokens`` it is reused unless ``overwrite``.

    >>> # doc "ab", doc "c"; seq_len 2; eos 1  ->  stream [a b 1 c 1] -> rows [a b 1] [1 c 1]
    """
    if seq_len < 1:
        raise DataError(f"seq_len must be >= 1, got {seq_len}")
    if max_tokens is not None and max_tokens < seq_len:
        raise DataError(f"max_tokens={max_tokens} is less than one row of seq_len={seq_len}; raise the budget")
    backend = _backend(tokenizer)
    if eos_id is None:
        eos_id = backend.token_to_id(EOS_TOKEN)
        if eos_id is None:
            raise DataError(f"the tokenizer has no {EOS_TOKEN!r} token; pass eos_id= explicitly")
    tok_sha = _tokenizer_sha(backend)
    src_sha = texts_sha256(texts)
    out_dir = Path(out_dir)
    if not overwrite and (out_dir / META).is_file():
        old = PackMeta.read(out_dir)
        old_key = (old.tokenizer_sha256, old.seq_len, old.max_tokens, old.texts_sha256)
        if old_key == (tok_sha, seq_len, max_tokens, src_sha):
            log.info("reusing packed data in %s (%d tokens)", out_dir, old.n_tokens)
            return old

    def docs() -> Iterator[tuple[list[int], int]]:
        for start in range(0, len(texts), batch_docs):
            chunk = texts[start : start + batch_docs]
            encoded = backend.encode_batch(list(chunk), add_special_tokens=False)
            for text, enc in zip(chunk, encoded, strict=True):
                yield enc.ids, len(text.encode("utf-8"))

    with paths.atomic_dir(out_dir) as tmp:
        meta = write_rows(
            docs(), tmp, seq_len, eos_id=eos_id, max_tokens=max_tokens, rows_per_shard=rows_per_shard,
            total=len(texts), desc=f"pack {out_dir.parent.name}/{out_dir.name}",
        )
        meta = dataclasses.replace(
            meta,
            tokenizer_sha256=tok_sha,
            texts_sha256=src_sha,
            vocab_size=backend.get_vocab_size(with_added_tokens=True),
            tokenizer_name=str(tokenizer) if isinstance(tokenizer, (str, Path)) else getattr(tokenizer, "name", ""),
        )
        paths.atomic_write(tmp / META, meta.to_json())
    log.info(
        "packed %d docs into %d rows x %d (%d tokens, %.2f bytes/token) in %s",
        meta.n_docs, meta.n_rows, seq_len + 1, meta.n_tokens, meta.bytes_per_token, out_dir,
    )
    return meta


def _target_bytes(doc_spans: Sequence[tuple[int, int, int]], last_target: int) -> tuple[float, int]:
    """Source bytes behind the targets (stream indices 1..``last_target``) and how many documents they touch.

    ``doc_spans``: ``(first stream index, tokens incl. eos, bytes)`` per document; a document cut by the
    last row counts the share of its bytes in proportion to its tokens that are targets.
    """
    total_bytes, n_docs = 0.0, 0
    for start, length, nb in doc_spans:
        lo, hi = max(start, 1), min(start + length - 1, last_target)
        if hi >= lo:
            n_docs += 1
            total_bytes += nb * (hi - lo + 1) / length
    return total_bytes, n_docs


def write_rows(
    docs: Iterable[tuple[Sequence[int], int]],
    out_dir: str | Path,
    seq_len: int,
    *,
    eos_id: int,
    max_tokens: int | None = None,
    rows_per_shard: int = 1 << 16,
    total: int | None = None,
    desc: str | None = None,
) -> PackMeta:
    """Pack already-encoded ``(ids, n_source_bytes)`` documents into shards in ``out_dir``.

    The low-level half of :func:`pack` (no tokenizer, not atomic: callers
    write into a temporary directory). Returns a :class:`PackMeta` with an
    empty ``tokenizer_sha256`` for the caller to fill in.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    row_len = seq_len + 1
    max_rows = None if max_tokens is None else max_tokens // seq_len
    shards: list[tuple[str, int]] = []
    fh, rows_in_shard = None, 0
    buf = np.empty(0, dtype=np.int64)  # stream tokens not yet in a full row (starts at a row boundary)
    # Targets of row i are stream tokens i*seq_len+1 .. (i+1)*seq_len. Track, per document, where its
    # tokens sit in the stream so n_bytes counts exactly the documents (or the share) behind the targets.
    doc_spans: list[tuple[int, int, int]] = []  # (first stream index, n tokens incl. eos, bytes)
    stream_pos, n_rows = 0, 0

    def flush_rows():
        nonlocal buf, fh, rows_in_shard, n_rows
        while len(buf) >= row_len and (max_rows is None or n_rows < max_rows):
            if fh is None:
                name = f"shard_{len(shards):05d}.bin"
                shards.append((name, 0))
                fh = open(out_dir / name, "wb")
            row = buf[:row_len]
            if row.max(initial=0) > np.iinfo(DTYPE).max or row.min(initial=0) < 0:
                raise DataError(f"token id out of uint32 range in row {n_rows}")
            fh.write(row.astype("<u4").tobytes())
            buf = buf[seq_len:]  # the last token of this row starts the next one
            n_rows += 1
            rows_in_shard += 1
            shards[-1] = (shards[-1][0], rows_in_shard)
            if rows_in_shard == rows_per_shard:
                fh.close()
                fh, rows_in_shard = None, 0

    bar = tqdm(docs, total=total, desc=desc or f"pack {out_dir.name}", unit="doc", leave=False)
    try:
        for ids, n_bytes in bar:
            if max_rows is not None and n_rows >= max_rows:
                break
            piece = np.asarray([*ids, eos_id], dtype=np.int64)
            doc_spans.append((stream_pos, len(piece), int(n_bytes)))
            stream_pos += len(piece)
            buf = np.concatenate([buf, piece])
            flush_rows()
    finally:
        bar.close()
        if fh is not None:
            fh.close()
    if n_rows == 0:
        raise DataError(
            f"not enough text for one row of {row_len} tokens ({stream_pos} tokens in total); "
            "add documents or lower seq_len"
        )
    total_bytes, n_docs = _target_bytes(doc_spans, n_rows * seq_len)
    return PackMeta(
        seq_len=seq_len,
        n_rows=n_rows,
        n_tokens=n_rows * seq_len,
        n_bytes=int(round(total_bytes)),
        n_docs=n_docs,
        eos_id=int(eos_id),
        tokenizer_sha256="",
        shards=tuple(shards),
        max_tokens=max_tokens,
    )


# --------------------------------------------------------------------------- reading


class PackedDataset(torch.utils.data.Dataset):
    """Rows of a packed directory as int64 tensors of ``seq_len + 1`` tokens.

    ``ds[i]`` is the ``i``-th row *of this rank* in epoch 0's shuffled order;
    :meth:`sample` takes a position that keeps counting across epochs (epoch
    ``e`` is shuffled with seed ``seed + e``), which is what the training loop
    uses so that a resumed run sees exactly the rows it would have seen.

    Sharding: every rank computes the same permutation of all rows and takes
    ``perm[rank::world_size]``, truncated so every rank has the same length
    (a DDP step must not wait on a rank with no batch). ``shuffle=False``
    keeps file order (validation).

    Checks: pass ``seq_len`` and/or ``tokenizer`` (or ``tokenizer_sha256``) to
    fail loudly when the data was packed for a different setup.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        seq_len: int | None = None,
        tokenizer: Any = None,
        tokenizer_sha256: str | None = None,
    ):
        self.directory = Path(directory)
        self.meta = PackMeta.read(self.directory)
        m = self.meta
        if m.dtype != "uint32":
            raise DataError(f"{self.directory}: dtype {m.dtype!r} unsupported; re-pack with this version")
        if seq_len is not None and seq_len != m.seq_len:
            raise DataError(
                f"{self.directory} was packed with seq_len={m.seq_len}, but seq_len={seq_len} was asked for; "
                "re-pack with tokstudy.packing.pack(..., seq_len=...) or change the training seq_len"
            )
        if tokenizer is not None:
            tokenizer_sha256 = _tokenizer_sha(tokenizer)
        if tokenizer_sha256 is not None and tokenizer_sha256 != m.tokenizer_sha256:
            raise DataError(
                f"{self.directory} was packed with another tokenizer (sha256 {m.tokenizer_sha256[:12]}..., "
                f"expected {tokenizer_sha256[:12]}...); re-pack it with the run's tokenizer"
            )
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is outside world_size {world_size}")
        self.seed, self.shuffle, self.rank, self.world_size = seed, shuffle, rank, world_size
        self._shards = []
        for name, rows in m.shards:
            f = self.directory / name
            expected = rows * m.row_len * np.dtype(DTYPE).itemsize
            if not f.is_file() or f.stat().st_size != expected:
                raise DataError(f"{f} is missing or not {expected} bytes; the packed data is damaged, re-pack it")
            self._shards.append(np.memmap(f, dtype="<u4", mode="r", shape=(rows, m.row_len)))
        self._offsets = np.cumsum([0] + [n for _, n in m.shards])
        self.n_rows = int(self._offsets[-1])
        self.per_rank = self.n_rows // world_size
        if self.per_rank == 0:
            raise DataError(f"{self.n_rows} rows cannot be shared by {world_size} ranks; pack more data")
        self._perms: dict[int, np.ndarray] = {}

    @property
    def seq_len(self) -> int:
        return self.meta.seq_len

    def __len__(self) -> int:
        return self.per_rank

    def row(self, global_index: int) -> np.ndarray:
        """Row ``global_index`` in file order (all ranks)."""
        s = int(np.searchsorted(self._offsets, global_index, side="right") - 1)
        return self._shards[s][global_index - self._offsets[s]]

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            order = (
                np.random.default_rng([self.seed, epoch]).permutation(self.n_rows)
                if self.shuffle
                else np.arange(self.n_rows)
            )
            self._perms[epoch] = order[self.rank :: self.world_size][: self.per_rank]
        return self._perms[epoch]

    def sample(self, position: int) -> torch.Tensor:
        """The row at ``position`` of this rank's endless stream (epoch = position // len)."""
        epoch, i = divmod(int(position), self.per_rank)
        return torch.from_numpy(self.row(int(self._order(epoch)[i])).astype(np.int64))

    def batch(self, start: int, size: int) -> torch.Tensor:
        """Rows ``start .. start+size-1`` of this rank's stream, shape ``(size, seq_len + 1)``."""
        return torch.stack([self.sample(p) for p in range(start, start + size)])

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -self.per_rank <= index < self.per_rank:
            raise IndexError(index)
        return self.sample(index % self.per_rank)


def loss_to_bits_per_byte(mean_loss_nats: float, meta: PackMeta) -> float:
    """Convert a mean per-target-token loss (nats) over ``meta``'s rows into bits per byte.

    ``sum of nats / (ln 2 * bytes) = mean_loss * n_tokens / (ln 2 * n_bytes)``.
    Exact when the mean covers every row; on a subset of rows it assumes that
    subset has the data set's bytes/token. ``eos`` targets (zero bytes) are
    included in the nats. Example: loss ln 2 nats/token at 4 bytes/token is
    0.25 bits/byte.
    """
    if meta.n_bytes <= 0:
        raise DataError("packed data records no source bytes; re-pack it with tokstudy.packing.pack")
    return mean_loss_nats * meta.n_tokens / (math.log(2) * meta.n_bytes)
