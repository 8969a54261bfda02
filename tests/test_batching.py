"""Token-budget batches and in-process halving on out-of-memory: the same embeddings as count batches, and a batch
that runs out of memory is split and finished, down to one text, then exit 75. The failure is injected at the
library's seam (the batch forward passed to encode_prepared), raising torch's own out-of-memory error."""

import numpy as np
import pytest
import torch

from helpers_merging import TINY_BEIR, texts_of
from helpers_threads import one_thread  # noqa: F401 - autouse: one torch thread
from mergeir.encoding import encode_prepared, load_encoder, prepare_texts
from mergeir.encoding.batching import Halving, Rows, check_budget, cut
from mergeir.encoding.encode import batch_forward
from mergeir.errors import MergeirError, OutOfMemory


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    from mergeir.models import build_mistral, build_tokenizer

    texts = texts_of(TINY_BEIR)
    folder = tmp_path_factory.mktemp("enc") / "m"
    build_mistral(folder, seed=3, layout="model", vocab_size=512, tokenizer=build_tokenizer(texts))
    model, tok = load_encoder(folder, device="cpu")
    # every text of the collection plus short query-like ones: lengths from 3 to a few hundred tokens
    return model, tok, texts + [t.split(".")[0][:20] for t in texts]


def test_token_budget_cut_keeps_padded_tokens_within_budget():
    lengths = np.array([5, 40, 3, 40, 17, 8, 8, 2, 30])
    batches = cut(lengths, 1, max_batch_tokens=64)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for b in batches:
        assert len(b) * lengths[b].max() <= 64 and lengths[b[0]] == lengths[b].max()
    assert [b.tolist() for b in batches] == [[1], [3], [8, 4], [5, 6, 0, 2, 7]]  # 40 | 40 | 30 17 | 8 8 5 3 2
    assert [b.tolist() for b in cut(lengths, 4)] == [[1, 3, 8, 4], [5, 6, 0, 2], [7]]  # by count: as before
    with pytest.raises(MergeirError, match="--max-batch-tokens 100 is below --max-length 128"):
        check_budget(4, 100, 128)


def test_token_budget_gives_the_same_embeddings_in_fewer_batches(encoder):
    model, tok, texts = encoder
    by_count = prepare_texts(tok, texts, "last", 256, batch_size=8)
    by_tokens = prepare_texts(tok, texts, "last", 256, batch_size=8, max_batch_tokens=512)
    assert max(ids.numel() for ids, _ in by_tokens.batches) <= 512
    assert max(len(i) for i in by_tokens.index) > 8  # short texts share large batches
    a, b = encode_prepared(model, by_count), encode_prepared(model, by_tokens)
    np.testing.assert_allclose(b, a, rtol=0, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-6)


class FailAbove:
    """The real batch forward, except that a batch above `tokens` padded tokens raises torch's OutOfMemoryError."""

    def __init__(self, forward, tokens):
        self.forward, self.tokens, self.calls = forward, tokens, []

    def __call__(self, rows):
        self.calls.append(rows.tokens)
        if rows.tokens > self.tokens:
            raise torch.OutOfMemoryError(f"injected: {rows.tokens} tokens")
        return self.forward(rows)


def test_out_of_memory_halves_the_batch_and_goes_on(encoder, capsys):
    model, tok, texts = encoder
    prepared = prepare_texts(tok, texts, "last", 256, batch_size=16)
    expect = encode_prepared(model, prepared)
    limit = max(ids.numel() for ids, _ in prepared.batches) // 5
    fail = FailAbove(batch_forward(model, "last"), limit)
    got = encode_prepared(model, prepared, forward=fail)
    np.testing.assert_allclose(got, expect, rtol=0, atol=2e-6)
    assert any(t > limit for t in fail.calls) and "batches were halved" in capsys.readouterr().err
    # once a size has failed, batches as large are split before they are tried: one failure per size, not per batch
    failures = [t for t in fail.calls if t > limit]
    assert len(failures) <= len({ids.numel() for ids, _ in prepared.batches})


def test_halving_splits_trim_padding_and_keep_every_row():
    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 0, 0], [5, 0, 0, 0], [5, 6, 7, 0]])
    mask = (ids != 0).long()
    seen = []

    def fn(rows):
        seen.append(rows.ids.shape)
        if len(rows) > 1:
            raise torch.OutOfMemoryError("injected")
        return rows.index.copy()

    pieces = Halving(fn, release=lambda: None)(Rows(ids, mask, np.array([10, 11, 12, 13])))
    assert [p.index.tolist() for p, _ in pieces] == [[10], [11], [12], [13]]
    assert [tuple(p.ids.shape) for p, _ in pieces] == [(1, 4), (1, 2), (1, 1), (1, 3)]  # each cut to its text
    assert seen[0] == (4, 4)


def test_a_single_text_out_of_memory_gives_up_with_exit_75(encoder, capsys):
    from mergeir.cli import make_app, run

    model, tok, texts = encoder
    prepared = prepare_texts(tok, texts[:6], "last", 256, batch_size=4)
    with pytest.raises(OutOfMemory, match="single text"):
        encode_prepared(model, prepared, forward=FailAbove(batch_forward(model, "last"), 0))
    app = make_app("encode")

    @app.command()
    def main() -> None:
        encode_prepared(model, prepared, forward=FailAbove(batch_forward(model, "last"), 0))

    with pytest.raises(SystemExit) as e:
        run(app, [])
    assert e.value.code == 75
    errs = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(errs) == 1 and "out of memory on a single text" in errs[0]


def test_other_errors_are_not_taken_for_out_of_memory(encoder):
    model, tok, texts = encoder
    prepared = prepare_texts(tok, texts[:4], "last", 256, batch_size=4)

    def broken(rows):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        encode_prepared(model, prepared, forward=broken)
