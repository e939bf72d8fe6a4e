"""tokstudy.tokenmap and tokstudy.transfer on toy vocabularies and tiny random causal LMs (CPU, a few seconds)."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from tokstudy import tokenmap, transfer
from tokstudy.errors import TokenMapError, TransferError
from tokstudy.model import tiny_model
from tokstudy.tokenmap import BYTE_TO_UNICODE, piece_bytes

BYTE_CHARS = [BYTE_TO_UNICODE[b] for b in range(256)]
BYTE_PIECES = [f"<0x{b:02X}>" for b in range(256)]


# --------------------------------------------------------------------------- toy tokenizers


class Handle:
    """A local implementation of the tokstudy.tokenizer.TokenizerHandle contract over a ``tokenizers.Tokenizer``."""

    def __init__(self, tok: Tokenizer, name: str, scheme: str, specials: list[str]):
        self.tokenizer, self.name, self.scheme = tok, name, scheme
        self.vocab_size = tok.get_vocab_size()
        self.special_ids = {tok.token_to_id(s) for s in specials}

    def encode(self, text):
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids):
        return self.tokenizer.decode(ids)

    def token_bytes(self, i):
        return b"" if i in self.special_ids else piece_bytes(self.tokenizer.id_to_token(i), self.scheme)

    def encode_bytes(self, data: bytes):
        out, run = [], []
        for ch in data.decode("utf-8", errors="surrogateescape"):
            if 0xDC80 <= ord(ch) <= 0xDCFF:  # an invalid byte
                if run:
                    out += self.encode("".join(run))
                    run = []
                b = ord(ch) - 0xDC00
                tid = self.tokenizer.token_to_id(f"<0x{b:02X}>")
                out.append(tid if tid is not None else self.tokenizer.token_to_id(BYTE_TO_UNICODE[b]))
            else:
                run.append(ch)
        if run:
            out += self.encode("".join(run))
        return out

    def to_hf(self):
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(self.tokenizer.to_str()))


def bytelevel(tokens: list[str], merges: list[tuple[str, str]], specials: list[str], name: str) -> Handle:
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    return Handle(tok, name, "bytelevel", specials)


def sentencepiece(tokens: list[str], merges: list[tuple[str, str]], name: str) -> Handle:
    """A Llama-2-like vocabulary: <unk> <s> </s>, 256 <0xNN> byte-fallback pieces, ▁ pieces."""
    specials = ["<unk>", "<s>", "</s>"]
    vocab = {t: i for i, t in enumerate(specials + BYTE_PIECES + tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens(specials)
    return Handle(tok, name, "sentencepiece", specials)


def merged_tokens(merges):
    return ["".join(m) for m in merges]


OLD_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>"]
OLD_MERGES = [("d", "e"), ("de", "f"), ("Ġ", "def"), ("r", "e"), ("re", "t"), ("Ġ", "x"), ("Ġ", "ret")]
NEW_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<pad>", "<|fim_prefix|>"]
NEW_EXTRA = [("u", "r"), ("ur", "n"), ("ret", "urn"), ("Ġ", "return"), ("Ċ", "Ġ")]


@pytest.fixture(scope="module")
def old_tok():
    return bytelevel(OLD_SPECIALS + BYTE_CHARS + merged_tokens(OLD_MERGES), OLD_MERGES, OLD_SPECIALS, "old")


@pytest.fixture(scope="module")
def new_tok():
    """Different id layout, extra specials, old merges kept plus new ones (a superset of the old vocab)."""
    merges = OLD_MERGES + NEW_EXTRA
    tokens = merged_tokens(merges)[::-1] + NEW_SPECIALS + BYTE_CHARS[::-1]
    return bytelevel(tokens, merges, NEW_SPECIALS, "new")


@pytest.fixture(scope="module")
def perm_tok():
    """The old vocabulary and merges under a random permutation of ids."""
    tokens = OLD_SPECIALS + BYTE_CHARS + merged_tokens(OLD_MERGES)
    random.Random(0).shuffle(tokens)
    return bytelevel(tokens, OLD_MERGES, OLD_SPECIALS, "perm")


def tid(h: Handle, piece: str) -> int:
    i = h.tokenizer.token_to_id(piece)
    assert i is not None, piece
    return i


def fresh(old_tok, tie=False, seed=0):
    return tiny_model(old_tok.vocab_size, tie=tie, seed=seed)


def logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


# --------------------------------------------------------------------------- bytes and mapping


def test_piece_bytes_bytelevel_sentencepiece_and_byte_fallback():
    assert piece_bytes("Ġdef", "bytelevel") == b" def"
    assert piece_bytes("ĊĠĠ", "bytelevel") == b"\n  "
    assert piece_bytes("Ã©", "bytelevel") == "é".encode()
    assert piece_bytes("▁def", "sentencepiece") == b" def"
    assert piece_bytes("<0x0A>", "sentencepiece") == b"\n"
    assert piece_bytes("<0xC3>", "bytelevel") == b"\xc3"
    assert bytes(tokenmap.UNICODE_TO_BYTE[c] for c in BYTE_CHARS) == bytes(range(256))
    with pytest.raises(TokenMapError, match="sentencepiece"):
        piece_bytes("▁def", "bytelevel")


def test_map_tokens_bytelevel_exact_composed_and_specials(old_tok, new_tok):
    tm = tokenmap.map_tokens(new_tok, old_tok)
    assert len(tm.pieces) == new_tok.vocab_size
    # every old token exists in the new vocab: exact, one old id with the same bytes
    for piece in ("Ġdef", "ret", "Ġx", "d", "Ċ"):
        i = tid(new_tok, piece)
        assert tm.kinds[i] == "exact" and tm.pieces[i] == [tid(old_tok, piece)]
    # new tokens: the old tokenizer's pieces of the same bytes
    assert tm.pieces[tid(new_tok, "Ġreturn")] == [tid(old_tok, p) for p in ("Ġret", "u", "r", "n")]
    assert tm.pieces[tid(new_tok, "urn")] == [tid(old_tok, p) for p in ("u", "r", "n")]
    assert tm.pieces[tid(new_tok, "ĊĠ")] == [tid(old_tok, "Ċ"), tid(old_tok, "Ġ")]
    # specials: same content -> the old special; no counterpart (pad, FIM) -> [] (mean init)
    assert tm.pieces[tid(new_tok, "<|end_of_text|>")] == [tid(old_tok, "<|end_of_text|>")]
    assert tm.kinds[tid(new_tok, "<pad>")] == "special_mean" and tm.pieces[tid(new_tok, "<pad>")] == []
    assert tm.kinds[tid(new_tok, "<|fim_prefix|>")] == "special_mean"
    s = tm.stats()
    assert s["n_composed"] == 5 and s["n_regular"] == new_tok.vocab_size - 4
    assert s["exact_share"] == pytest.approx((s["n_regular"] - 5) / s["n_regular"])
    assert s["n_special_matched"] == 2 and s["n_special_mean"] == 2 and s["n_byte_fallback"] == 0


def test_map_tokens_sentencepiece_old_and_new(new_tok):
    sp_merges = [("▁", "d"), ("▁d", "e"), ("▁de", "f"), ("r", "e"), ("re", "t")]
    sp = sentencepiece(["▁", "d", "e", "f", "r", "t", "u", "n", "x"] + merged_tokens(sp_merges), sp_merges, "sp")
    assert sp.token_bytes(tid(sp, "▁def")) == b" def" and sp.token_bytes(tid(sp, "<0x0A>")) == b"\n"
    # byte-level new -> SentencePiece old (the Llama-2 direction)
    tm = tokenmap.map_tokens(new_tok, sp)
    assert tm.pieces[tid(new_tok, "Ġdef")] == [tid(sp, "▁def")]
    assert tm.pieces[tid(new_tok, "Ċ")] == [tid(sp, "<0x0A>")]
    assert tm.pieces[tid(new_tok, "ĊĠ")] == [tid(sp, "<0x0A>"), tid(sp, "▁")]
    assert tm.pieces[tid(new_tok, "Ã")] == [tid(sp, "<0xC3>")]  # a partial UTF-8 byte-level token
    assert tm.pieces[tid(new_tok, "Ġreturn")] == [tid(sp, p) for p in ("▁", "ret", "u", "r", "n")]
    # specials by role: <|begin_of_text|> -> <s>, <|end_of_text|> -> </s>; <pad> has none
    assert tm.pieces[tid(new_tok, "<|begin_of_text|>")] == [tid(sp, "<s>")]
    assert tm.pieces[tid(new_tok, "<|end_of_text|>")] == [tid(sp, "</s>")]
    assert tm.pieces[tid(new_tok, "<pad>")] == []
    assert tid(new_tok, "Ċ") in tm.byte_fallback and tid(new_tok, "Ġdef") not in tm.byte_fallback
    # SentencePiece new -> byte-level old: ▁def is the old Ġdef, <0x0A> the old Ċ (not the specials)
    back = tokenmap.map_tokens(sp, new_tok)
    assert back.pieces[tid(sp, "▁def")] == [tid(new_tok, "Ġdef")]
    assert back.pieces[tid(sp, "<0x0A>")] == [tid(new_tok, "Ċ")]
    assert back.pieces[tid(sp, "<s>")] == [tid(new_tok, "<|begin_of_text|>")]
    assert back.kinds[tid(sp, "<unk>")] == "special_mean"


def test_duplicate_old_bytes_prefer_the_regular_piece(new_tok):
    """SentencePiece keeps both 'd' and <0x64>: a new 'd' maps to the piece the old tokenizer uses."""
    sp = sentencepiece(["▁", "d", "e", "f"], [], "sp")
    tm = tokenmap.map_tokens(new_tok, sp)
    assert tm.pieces[tid(new_tok, "d")] == [tid(sp, "d")]
    assert tm.pieces[tid(new_tok, "x")] == [tid(sp, "<0x78>")]


def test_old_tokenizer_that_cannot_encode_bytes_raises(new_tok):
    chars = ["Ġ", "d", "e", "f"]
    poor = bytelevel(OLD_SPECIALS + chars, [], OLD_SPECIALS, "poor")
    with pytest.raises(TokenMapError, match="cannot encode the bytes"):
        tokenmap.map_tokens(new_tok, poor)


# --------------------------------------------------------------------------- init and swap


def test_fvt_rows_are_hand_computed_means_on_both_matrices(old_tok, new_tok):
    model = fresh(old_tok, tie=False)
    E = model.get_input_embeddings().weight.detach().clone()
    H = model.get_output_embeddings().weight.detach().clone()
    assert not torch.equal(E, H)
    model, stats = transfer.swap_tokenizer(model, old_tok, new_tok, "fvt")
    E2 = model.get_input_embeddings().weight.detach()
    H2 = model.get_output_embeddings().weight.detach()
    assert E2.shape == (new_tok.vocab_size, 32) and H2.shape == (new_tok.vocab_size, 32)
    assert model.config.vocab_size == new_tok.vocab_size
    o = [tid(old_tok, p) for p in ("Ġret", "u", "r", "n")]
    r = tid(new_tok, "Ġreturn")
    assert torch.equal(E2[r], (E[o[0]] + E[o[1]] + E[o[2]] + E[o[3]]) / 4)
    assert torch.equal(H2[r], (H[o[0]] + H[o[1]] + H[o[2]] + H[o[3]]) / 4)
    assert not torch.equal(E2[r], H2[r])
    nl, sp = tid(old_tok, "Ċ"), tid(old_tok, "Ġ")
    assert torch.equal(E2[tid(new_tok, "ĊĠ")], (E[nl] + E[sp]) / 2)
    # exact matches are copied; the pad (no counterpart) gets the mean of all old rows
    assert torch.equal(E2[tid(new_tok, "Ġdef")], E[tid(old_tok, "Ġdef")])
    assert torch.equal(H2[tid(new_tok, "Ġdef")], H[tid(old_tok, "Ġdef")])
    assert torch.equal(E2[tid(new_tok, "<|begin_of_text|>")], E[tid(old_tok, "<|begin_of_text|>")])
    assert torch.allclose(E2[tid(new_tok, "<pad>")], E.mean(0), atol=1e-7)
    assert not stats.tied and stats.mapping["n_composed"] == 5


def test_tied_model_stays_tied(old_tok, new_tok):
    model = fresh(old_tok, tie=True)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    E = model.get_input_embeddings().weight.detach().clone()
    model, stats = transfer.swap_tokenizer(model, old_tok, new_tok, "fvt", pad_to_multiple_of=64)
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    assert head.weight is emb.weight and head.weight.data_ptr() == emb.weight.data_ptr()
    assert stats.tied and emb.weight.shape[0] == 320
    assert torch.equal(emb.weight[tid(new_tok, "Ġdef")].detach(), E[tid(old_tok, "Ġdef")])


def test_fvt_swap_to_a_permuted_vocab_keeps_the_next_token_distribution(old_tok, perm_tok):
    text = "def ret x\ndef"
    old_ids, new_ids = old_tok.encode(text), perm_tok.encode(text)
    assert [old_tok.tokenizer.id_to_token(i) for i in old_ids] == [perm_tok.tokenizer.id_to_token(i) for i in new_ids]
    # new id -> old id of the same token, to compare full distributions
    perm = torch.tensor([tid(old_tok, perm_tok.tokenizer.id_to_token(i)) for i in range(perm_tok.vocab_size)])
    for tie in (False, True):
        model = fresh(old_tok, tie=tie, seed=3)
        before = torch.log_softmax(logits(model, old_ids), -1)
        model, _ = transfer.swap_tokenizer(model, old_tok, perm_tok, "fvt")
        after = torch.log_softmax(logits(model, new_ids), -1)
        torch.testing.assert_close(after, before[:, perm], rtol=0, atol=1e-6)


def test_fvt_swap_to_a_superset_keeps_logits_of_shared_tokens(old_tok, new_tok):
    text = "def ret x\n def"
    old_ids, new_ids = old_tok.encode(text), new_tok.encode(text)
    assert [old_tok.tokenizer.id_to_token(i) for i in old_ids] == [new_tok.tokenizer.id_to_token(i) for i in new_ids]
    shared = [p for p in old_tok.tokenizer.get_vocab() if tid(old_tok, p) not in old_tok.special_ids]
    model = fresh(old_tok, seed=5)
    before = logits(model, old_ids)[:, [tid(old_tok, p) for p in shared]]
    model, _ = transfer.swap_tokenizer(model, old_tok, new_tok, "fvt")
    after = logits(model, new_ids)[:, [tid(new_tok, p) for p in shared]]
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)
    # the random baseline does change them
    model = fresh(old_tok, seed=5)
    model, _ = transfer.swap_tokenizer(model, old_tok, new_tok, "random")
    assert not torch.allclose(logits(model, new_ids)[:, [tid(new_tok, p) for p in shared]], before, atol=1e-3)


def test_output_bias_is_transferred(old_tok, new_tok):
    model = fresh(old_tok)
    head = model.get_output_embeddings()
    head.bias = torch.nn.Parameter(torch.randn(old_tok.vocab_size, generator=torch.Generator().manual_seed(1)))
    b = head.bias.detach().clone()
    model, _ = transfer.swap_tokenizer(model, old_tok, new_tok, "fvt", pad_to_multiple_of=64)
    b2 = model.get_output_embeddings().bias.detach()
    assert b2.shape == (320,)
    assert b2[tid(new_tok, "Ġdef")] == b[tid(old_tok, "Ġdef")]
    assert torch.equal(b2[tid(new_tok, "urn")], b[[tid(old_tok, p) for p in "urn"]].mean())


def test_random_differs_from_fvt_and_reinitialises_everything(old_tok, new_tok):
    base = fresh(old_tok)
    E = base.get_input_embeddings().weight.detach().clone()
    fvt, _ = transfer.swap_tokenizer(fresh(old_tok), old_tok, new_tok, "fvt")
    rnd, stats = transfer.swap_tokenizer(fresh(old_tok), old_tok, new_tok, "random", seed=1)
    Ef, Er = fvt.get_input_embeddings().weight.detach(), rnd.get_input_embeddings().weight.detach()
    assert not stats.copy_exact
    assert not torch.equal(Er[tid(new_tok, "Ġdef")], E[tid(old_tok, "Ġdef")])  # no copy in the baseline
    assert (Er - Ef).abs().mean() > 0.01
    assert Er.std().item() == pytest.approx(rnd.config.initializer_range, rel=0.1)
    Eh = rnd.get_output_embeddings().weight.detach()
    assert Eh.std().item() == pytest.approx(rnd.config.initializer_range, rel=0.1) and not torch.equal(Er, Eh)
    # the flag brings exact copies back; the seed changes the draw
    cp, _ = transfer.swap_tokenizer(fresh(old_tok), old_tok, new_tok, "random", copy_exact=True)
    assert torch.equal(cp.get_input_embeddings().weight[tid(new_tok, "Ġdef")].detach(), E[tid(old_tok, "Ġdef")])
    r2, _ = transfer.swap_tokenizer(fresh(old_tok), old_tok, new_tok, "random", seed=2)
    assert not torch.equal(r2.get_input_embeddings().weight.detach(), Er)


def test_mean_is_the_global_mean_plus_noise(old_tok, new_tok):
    model = fresh(old_tok)
    E = model.get_input_embeddings().weight.detach().clone()
    mu = E.mean(0)
    model, _ = transfer.swap_tokenizer(model, old_tok, new_tok, "mean", noise_std=1e-3)
    E2 = model.get_input_embeddings().weight.detach()
    r = tid(new_tok, "Ġreturn")
    assert 0 < (E2[r] - mu).abs().max() < 5e-3
    assert (E2[r] - mu).std().item() == pytest.approx(1e-3, rel=0.5)
    assert torch.equal(E2[tid(new_tok, "Ġdef")], E[tid(old_tok, "Ġdef")])
    exact_mean, _ = transfer.swap_tokenizer(fresh(old_tok), old_tok, new_tok, "mean", noise_std=0.0)
    torch.testing.assert_close(exact_mean.get_input_embeddings().weight[r].detach(), mu, rtol=0, atol=1e-7)


def test_pad_to_multiple_records_true_size_and_special_ids(old_tok, new_tok):
    model, stats = transfer.swap_tokenizer(fresh(old_tok), old_tok, new_tok, "fvt", pad_to_multiple_of=64)
    assert model.config.vocab_size == 320 == stats.padded_vocab_size and 320 % 64 == 0
    assert model.get_output_embeddings().weight.shape[0] == 320
    assert model.config.tokstudy_true_vocab_size == new_tok.vocab_size == stats.true_vocab_size
    assert model.config.bos_token_id == tid(new_tok, "<|begin_of_text|>")
    assert model.config.eos_token_id == model.generation_config.eos_token_id == tid(new_tok, "<|end_of_text|>")
    assert model.config.pad_token_id == model.generation_config.pad_token_id == tid(new_tok, "<pad>")
    rows = {r["metric"]: r for r in stats.rows()}
    assert rows["true_vocab_size"]["value"] == new_tok.vocab_size and rows["exact_share"]["tokenizer"] == "new"
    assert rows["exact_share"]["method"] == "fvt"


def test_save_and_reload_round_trip(old_tok, new_tok, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, stats = transfer.swap_tokenizer(fresh(old_tok), old_tok, new_tok, "fvt", pad_to_multiple_of=64)
    out = transfer.save_transferred(model, stats.tokenizer, tmp_path / "m", stats)
    re_model = AutoModelForCausalLM.from_pretrained(out)
    re_tok = AutoTokenizer.from_pretrained(out)
    text = "def return x\n"
    ids = re_tok(text, add_special_tokens=False)["input_ids"]
    assert ids == new_tok.encode(text) and re_tok.decode(ids) == text
    torch.testing.assert_close(logits(re_model, ids), logits(model, ids), rtol=0, atol=0)
    assert re_model.config.vocab_size == 320 and re_model.config.tokstudy_true_vocab_size == new_tok.vocab_size
    assert re_model.config.eos_token_id == tid(new_tok, "<|end_of_text|>")
    assert re_tok.eos_token_id == tid(new_tok, "<|end_of_text|>") and re_tok.pad_token_id == tid(new_tok, "<pad>")
    info = json.loads((out / "transfer.json").read_text())
    assert info["method"] == "fvt" and info["true_vocab_size"] == new_tok.vocab_size
    assert info["mapping"]["n_composed"] == 5


def test_merged_keeps_old_rows_and_appends_fvt_rows(old_tok, new_tok):
    model = fresh(old_tok)
    E = model.get_input_embeddings().weight.detach().clone()
    H = model.get_output_embeddings().weight.detach().clone()
    model, stats = transfer.swap_tokenizer(model, old_tok, new_tok, "merged")
    hf = stats.tokenizer
    V = old_tok.vocab_size
    assert stats.n_added == 5 and stats.true_vocab_size == V + 5 == len(hf)
    E2, H2 = model.get_input_embeddings().weight.detach(), model.get_output_embeddings().weight.detach()
    assert torch.equal(E2[:V], E) and torch.equal(H2[:V], H)
    r = hf.convert_tokens_to_ids(" return")
    assert r >= V
    o = [tid(old_tok, p) for p in ("Ġret", "u", "r", "n")]
    assert torch.equal(E2[r], E[o].mean(0)) and torch.equal(H2[r], H[o].mean(0))
    text = "def return(x)\n"
    ids = hf(text, add_special_tokens=False)["input_ids"]
    assert r in ids and hf.decode(ids) == text
    assert hf("def x", add_special_tokens=False)["input_ids"] == old_tok.encode("def x")  # old ids unchanged


# --------------------------------------------------------------------------- base model


def test_missing_or_incomplete_base_dir_names_the_fix(tmp_path):
    with pytest.raises(TransferError, match=r"04_pretrain_base\.ipynb.*base_model="):
        transfer.load_base(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(TransferError, match=r"incomplete, missing model weights.*04_pretrain_base"):
        transfer.load_base(tmp_path / "half")


def test_load_base_reads_a_saved_model(old_tok, tmp_path):
    model = fresh(old_tok)
    model.save_pretrained(tmp_path / "base")
    loaded = transfer.load_base(tmp_path / "base")
    torch.testing.assert_close(logits(loaded, [5, 6, 7]), logits(model, [5, 6, 7]), rtol=0, atol=0)


@pytest.mark.parametrize("arch", ["BertForMaskedLM", "BertModel"])
def test_an_encoder_model_is_rejected_and_nothing_is_written(arch, old_tok, new_tok, tmp_path, capsys):
    import transformers

    from tokstudy import cli

    config = transformers.BertConfig(vocab_size=old_tok.vocab_size, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64)
    bert_dir = tmp_path / "bert"
    getattr(transformers, arch)(config).save_pretrained(bert_dir)
    old_tok.tokenizer.save(str(bert_dir / "tokenizer.json"))  # the tokenizer is not what is wrong
    new_tok.tokenizer.save(str(tmp_path / "new.json"))
    out = tmp_path / "out"
    capsys.readouterr()  # the progress bars of save_pretrained
    assert cli.main(["transfer", str(bert_dir), str(tmp_path / "new.json"), "--out", str(out)]) == 2
    err = capsys.readouterr().err  # a TransferError is a user-fixable error: one line, exit status 2
    assert err.startswith("error: ") and "not a causal" in err and err.count("\n") == 1
    assert str(bert_dir) in err and arch in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bert", "new.json"]


def test_a_model_dir_without_tokenizer_names_the_old_tokenizer_flag(old_tok, new_tok, tmp_path, capsys):
    from tokstudy import cli

    fresh(old_tok).save_pretrained(tmp_path / "base")
    new_tok.tokenizer.save(str(tmp_path / "new.json"))
    args = ["transfer", str(tmp_path / "base"), str(tmp_path / "new.json"), "--out", str(tmp_path / "out")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "--old-tokenizer" in err and str(tmp_path / "base") in err and "byte fallback" not in err
    assert not (tmp_path / "out").exists()
    old_tok.tokenizer.save(str(tmp_path / "old.json"))  # with the flag it runs
    assert cli.main(["transfer", str(tmp_path / "base"), str(tmp_path / "new.json"), "--old-tokenizer",
                     str(tmp_path / "old.json"), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "config.json").is_file()


def test_corrupt_safetensors_names_the_file(old_tok, tmp_path):
    fresh(old_tok).save_pretrained(tmp_path / "base")
    weights = tmp_path / "base" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated download
    with pytest.raises(TransferError) as e:
        transfer.load_base(tmp_path / "base")
    assert str(weights) in str(e.value) and len(str(e.value).splitlines()) == 1


def test_model_smaller_than_old_vocab_is_rejected(old_tok, new_tok):
    with pytest.raises(TransferError, match="tokenizer the base model was trained with"):
        transfer.swap_tokenizer(tiny_model(100), old_tok, new_tok)


# --------------------------------------------------------------------------- against tokstudy.bpe


def test_swap_between_real_bpe_tokenizers(tmp_path):
    bpe = pytest.importorskip("tokstudy.bpe")
    from tokstudy import params, tokenizer

    texts = [
        "def main(argv):\n    for i in range(10):\n        print(i, argv)\n    return 0\n",
        "The quick brown fox jumps over the lazy dog. Résumé: naïve café.\n",
        "int main(void) {\n    return printf(\"%d\\n\", 42);\n}\n",
    ] * 30
    gpt2 = params.load("smoke").tokenizer("general-m")
    old_v = dataclasses.replace(gpt2, name="old", vocab_size=300)
    new_v = dataclasses.replace(gpt2, name="new", regex="identity", vocab_size=330)
    old = tokenizer.load(bpe.save(bpe.train(texts, old_v), tmp_path / "old", {}))
    new = tokenizer.load(bpe.save(bpe.train(texts, new_v), tmp_path / "new", {}))
    tm = tokenmap.map_tokens(new, old)
    for i in range(new.vocab_size):  # every mapping reproduces the new token's bytes
        if tm.kinds[i] in ("exact", "composed"):
            assert b"".join(old.token_bytes(t) for t in tm.pieces[i]) == new.token_bytes(i)
    assert tm.stats()["n_special_matched"] == len(new.special_ids) and tm.stats()["n_composed"] > 0
    model = tiny_model(old.vocab_size)
    E = model.get_input_embeddings().weight.detach().clone()
    model, stats = transfer.swap_tokenizer(model, old, new, "fvt", pad_to_multiple_of=64)
    E2 = model.get_input_embeddings().weight.detach()
    i = next(i for i, k in enumerate(tm.kinds) if k == "composed")
    assert torch.equal(E2[i], E[tm.pieces[i]].mean(0))
    hf = stats.tokenizer
    assert stats.padded_vocab_size == 384 and model.config.eos_token_id == hf.eos_token_id == 1
    out = transfer.save_transferred(model, hf, tmp_path / "m", stats)
    assert transfer.load_base(out).config.tokstudy_true_vocab_size == 330


# --------------------------------------------------------------------------- focus

AUX_TEXT = "def return x\n def ret urn(x)\n(return our)\n"  # makes return, urn and ur; never Ġreturn or ĊĠ


def aux(texts=(AUX_TEXT * 40,), dim=16, epochs=3, min_count=1, seed=7):
    return transfer.FocusAux(texts=tuple(texts), dim=dim, epochs=epochs, min_count=min_count, seed=seed)


def test_focus_rows_are_hand_computed_sparsemax_mixes_of_overlapping_rows():
    # new ids: 0,1,5,6 exact (old 2,0,1,4); 2 and 4 composed; 3 a mapped special; 7 a special with no counterpart
    tmap = tokenmap.TokenMap(pieces=[[2], [0], [0, 1], [3], [1, 2], [1], [4], []],
                             kinds=["exact", "exact", "composed", "special", "composed", "exact", "exact",
                                    "special_mean"])
    vectors = {0: torch.tensor([1.0, 0.0]), 1: torch.tensor([0.0, 3.0]), 6: torch.tensor([-2.0, 0.0]),
               2: torch.tensor([1.6, 1.2])}  # 5 (exact) and 4 (composed) have no auxiliary vector
    plan = transfer.focus_plan(tmap, vectors)
    # cosines of new 2 with candidates 0, 1, 6: 0.8, 0.6, -0.8. sparsemax: k=2 (1+2*0.6 > 1.4; 1+3*(-0.8) < 0.6),
    # tau = (0.8+0.6-1)/2 = 0.2, weights (0.6, 0.4, 0): candidate 6 drops out, the rows of old 2 and old 0 mix
    assert plan.n_candidates == 3 and plan.random == [4]
    assert sorted(zip(plan.rows.tolist(), plan.cols.tolist(), plan.weights.tolist(), strict=True)) == [
        (2, 0, pytest.approx(0.4)), (2, 2, pytest.approx(0.6))]
    assert plan.stats() == {"n_focus": 1, "n_focus_random": 1, "n_focus_candidates": 3, "focus_mean_support": 2.0}
    old = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0], [10.0, 11.0, 12.0], [0.0, -1.0, 1.0]])
    out = transfer.focus_rows(old, tmap, plan, torch.Generator().manual_seed(3))
    torch.testing.assert_close(out[2], torch.tensor([4.6, 5.6, 6.6]), rtol=0, atol=1e-6)  # 0.6*old[2] + 0.4*old[0]
    for new, o in ((0, 2), (1, 0), (5, 1), (6, 4), (3, 3)):  # overlapping rows and the mapped special: copies
        assert torch.equal(out[new], old[o])
    assert torch.equal(out[7], old.mean(0))
    g = torch.Generator().manual_seed(3)
    assert torch.equal(out[4], torch.normal(old.mean(0), old.std(0), generator=g))  # too rare: N(mean, std)
    bias = transfer.focus_rows(old[:, 0], tmap, plan, torch.Generator().manual_seed(3))  # a 1-D output bias
    assert bias[2].item() == pytest.approx(0.6 * 7 + 0.4 * 1) and bias[0] == 7


def test_focus_plan_needs_overlapping_and_new_tokens_in_the_auxiliary_text():
    tmap = tokenmap.TokenMap(pieces=[[0], [0, 1]], kinds=["exact", "composed"])
    with pytest.raises(TransferError, match="shared by both vocabularies.*more auxiliary text"):
        transfer.focus_plan(tmap, {1: torch.ones(2)})
    with pytest.raises(TransferError, match="every one would be random"):
        transfer.focus_plan(tmap, {0: torch.ones(2)})


def test_focus_swap_mixes_overlapping_rows_on_both_matrices_and_records_its_data(old_tok, new_tok, tmp_path):
    model = fresh(old_tok, tie=False)
    E = model.get_input_embeddings().weight.detach().clone()
    H = model.get_output_embeddings().weight.detach().clone()
    a = aux()
    model, stats = transfer.swap_tokenizer(model, old_tok, new_tok, "focus", focus=a)
    E2, H2 = model.get_input_embeddings().weight.detach(), model.get_output_embeddings().weight.detach()
    tm = stats.token_map
    plan = transfer.focus_plan(tm, transfer.aux_vectors(new_tok, a))
    for i in torch.unique(plan.rows).tolist():  # every FOCUS row: a convex mix of old rows of overlapping tokens
        sel = plan.rows == i
        w, cols = plan.weights[sel], plan.cols[sel]
        assert (w > 0).all() and w.sum().item() == pytest.approx(1.0)
        assert all(tm.kinds[tm.pieces.index([c])] == "exact" for c in cols.tolist())
        torch.testing.assert_close(E2[i], (w[:, None] * E[cols].double()).sum(0).float(), rtol=0, atol=1e-6)
        torch.testing.assert_close(H2[i], (w[:, None] * H[cols].double()).sum(0).float(), rtol=0, atol=1e-6)
    r = tid(new_tok, "return")
    assert r in plan.rows.tolist() and not torch.allclose(E2[r], E[[tid(old_tok, p) for p in ("ret", "u", "r", "n")]]
                                                          .mean(0))  # not FVT's mean
    assert sorted(plan.random) == sorted(tid(new_tok, p) for p in ("Ġreturn", "ĊĠ"))  # never in the text: random
    assert torch.equal(E2[tid(new_tok, "Ġdef")], E[tid(old_tok, "Ġdef")])
    assert torch.equal(H2[tid(new_tok, "Ġdef")], H[tid(old_tok, "Ġdef")])
    f = stats.focus
    assert f["aux_sha256"] == bpe_sha(a.texts) and f["aux_bytes"] == len(AUX_TEXT.encode()) * 40
    assert (f["aux_seed"], f["aux_dim"], f["aux_epochs"], f["aux_min_count"]) == (7, 16, 3, 1)
    assert (f["n_focus"], f["n_focus_random"], stats.mapping["n_composed"]) == (3, 2, 5)
    assert {row["metric"] for row in stats.rows()} >= {"n_focus", "n_focus_random", "aux_bytes"}
    out = transfer.save_transferred(model, stats.tokenizer, tmp_path / "m", stats)
    record = json.loads((out / "transfer.json").read_text())
    assert record["method"] == "focus" and record["focus"]["aux_sha256"] == f["aux_sha256"]


def bpe_sha(texts):
    from tokstudy import bpe

    return bpe.texts_sha256(texts)


def test_focus_same_seed_same_rows_other_seed_or_text_other_rows(old_tok, new_tok):
    def rows(a):
        model, _ = transfer.swap_tokenizer(fresh(old_tok, tie=True), old_tok, new_tok, "focus", focus=a)
        return model.get_input_embeddings().weight.detach().clone()

    first = rows(aux(seed=1))
    assert torch.equal(rows(aux(seed=1)), first)
    assert not torch.equal(rows(aux(seed=2)), first)
    assert not torch.equal(rows(aux(texts=(AUX_TEXT * 40, "x = ret(urn)\n" * 30), seed=1)), first)


def test_focus_auxiliary_vectors_do_not_depend_on_pythonhashseed(tmp_path):
    import subprocess
    import sys

    script = (
        "import hashlib, torch\n"
        "from tokenizers import Tokenizer\n"
        "from tokstudy import transfer\n"
        "from tests.test_transfer import AUX_TEXT, bytelevel, BYTE_CHARS, OLD_SPECIALS, OLD_MERGES, merged_tokens\n"
        "tok = bytelevel(OLD_SPECIALS + BYTE_CHARS + merged_tokens(OLD_MERGES), OLD_MERGES, OLD_SPECIALS, 'old')\n"
        "v = transfer.aux_vectors(tok, transfer.FocusAux((AUX_TEXT * 40,), 16, 3, 1, 5))\n"
        "print(hashlib.sha256(b''.join(v[i].numpy().tobytes() + str(i).encode() for i in sorted(v))).hexdigest())\n"
    )
    root = transfer.paths.ROOT
    outs = {subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(outs) == 1 and len(outs.pop().strip()) == 64


def test_focus_needs_its_auxiliary_text_and_other_methods_refuse_it(old_tok, new_tok):
    with pytest.raises(TransferError, match="--aux-text"):
        transfer.swap_tokenizer(fresh(old_tok), old_tok, new_tok, "focus")
    with pytest.raises(TransferError, match="focus only"):
        transfer.swap_tokenizer(fresh(old_tok), old_tok, new_tok, "fvt", focus=aux())
    with pytest.raises(TransferError, match="no tokens"):
        transfer.swap_tokenizer(fresh(old_tok), old_tok, new_tok, "focus", focus=aux(texts=("",)))
    with pytest.raises(TransferError, match="lower min_count"):  # too little text: nothing reaches min_count
        transfer.swap_tokenizer(fresh(old_tok), old_tok, new_tok, "focus", focus=aux(texts=(AUX_TEXT,), min_count=50))


def test_cli_transfer_focus_on_a_local_causal_lm_and_its_one_line_errors(old_tok, new_tok, tmp_path, capsys):
    from tokstudy import bpe, cli

    base = tmp_path / "base"
    fresh(old_tok).save_pretrained(base)
    old_tok.tokenizer.save(str(base / "tokenizer.json"))
    new_tok.tokenizer.save(str(tmp_path / "new.json"))
    (tmp_path / "aux.txt").write_text(AUX_TEXT * 40, encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    out = tmp_path / "out"
    run = ["transfer", str(base), str(tmp_path / "new.json"), "--out", str(out)]
    capsys.readouterr()
    for extra, needle in (
        (["--method", "focus"], "--aux-text FILE"),
        (["--method", "focus", "--aux-text", str(tmp_path / "nope.txt")], f"--aux-text {tmp_path / 'nope.txt'}"),
        (["--method", "focus", "--aux-text", str(tmp_path / "latin1.txt")], "not UTF-8"),
        (["--method", "fvt", "--aux-text", str(tmp_path / "aux.txt")], "--method focus only"),
        (["--aux-min-count", "5"], "--method focus only"),
        (["--method", "focus", "--aux-text", str(tmp_path / "aux.txt"), "--aux-min-count", "100000"],
         "lower min_count"),
    ):
        assert cli.main(run + extra) == 2, extra
        lines = capsys.readouterr().err.replace("\r", "\n").splitlines()  # the last case shows a weight-loading bar
        assert lines[-1].startswith("error: ") and needle in lines[-1], (extra, lines)
        assert [line for line in lines if "error" in line or "Traceback" in line] == lines[-1:], (extra, lines)
        assert not out.exists(), extra  # nothing written on error
    args = ["--method", "focus", "--aux-text", str(tmp_path / "aux.txt"), "--aux-dim", "16", "--aux-min-count", "1",
            "--seed", "3"]
    assert cli.main(run + args) == 0
    assert "n_focus" in capsys.readouterr().out
    record = json.loads((out / "transfer.json").read_text())["focus"]
    assert record["aux_sha256"] == bpe.texts_sha256([AUX_TEXT * 40]) and record["aux_bytes"] == len(AUX_TEXT) * 40
    assert (record["aux_seed"], record["aux_dim"], record["aux_min_count"], record["n_focus"]) == (3, 16, 1, 3)
    first = (out / "model.safetensors").read_bytes()
    assert cli.main(run + args) == 0 and (out / "model.safetensors").read_bytes() == first  # same seed, same bytes
    loaded = transfer.load_base(out)
    assert loaded.get_input_embeddings().weight.shape[0] == new_tok.vocab_size


def test_focus_to_a_permuted_vocab_only_copies(old_tok, perm_tok):
    model = fresh(old_tok, tie=False)
    E = model.get_input_embeddings().weight.detach().clone()
    model, stats = transfer.swap_tokenizer(model, old_tok, perm_tok, "focus", focus=aux())
    perm = [tid(old_tok, perm_tok.tokenizer.id_to_token(i)) for i in range(perm_tok.vocab_size)]
    assert torch.equal(model.get_input_embeddings().weight.detach(), E[perm])
    assert (stats.focus["n_focus"], stats.focus["n_focus_random"]) == (0, 0)
