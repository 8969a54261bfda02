"""The sweep at scale: weights streamed from host copies (bit-identical to mergekit in chunks), the layer-split cache
(embeddings equal the plain sweep's at every grid point, with the cache cut into chunks), and the memory estimate
(equal to what a tiny model really allocates)."""

import ctypes

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from helpers_merging import TINY_BEIR, bits_equal, build_bert_pair, build_models, state, texts_of
from helpers_threads import one_thread  # noqa: F401 - autouse: one torch thread
from mergeir.collections import load_collection
from mergeir.encoding import encode_split, load_encoder, prepare_split
from mergeir.errors import MergeirError
from mergeir.models import open_checkpoint
from mergeir.sweep import AlphaSweep, MemoryEstimate, sweep_estimate
from mergeir.sweep.alphasweep import plan_bytes
from mergeir.sweep.layercache import cache_chunks, encode_uppers, supported
from mergeir.sweep.memory import activation_bytes, model_bytes

GRID = [0.0, 0.5, 1.0]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("models"))


def test_streamed_chunks_are_bit_identical_to_mergekit(models, tmp_path):
    """Chunks of 1000 elements (not a power of two, so tensors end mid-vector) in bfloat16, after other points."""
    from transformers import AutoModel

    from mergeir.merging import merge

    merge(models["source"], models["domain"], tmp_path / "m", alpha_lower=0.25, alpha_upper=0.75, dtype="bfloat16")
    written = state(tmp_path / "m")
    model = AutoModel.from_pretrained(str(models["source"]), dtype=torch.bfloat16)
    sweep = AlphaSweep(model, models["source"], models["domain"], chunk_elements=1000)
    assert sweep.chunk == 1000 and max(p.numel() for p in sweep.params.values()) > 1000
    for point in ((1.0, 0.0), (0.5, 0.75), (0.25, 0.75)):
        sweep.set(*point)
    got = sweep.state_dict()
    assert sorted(got) == sorted(written)
    assert all(bits_equal(got[k], written[k]) for k in got)
    # the host copies are the files' bytes in their stored dtype, never converted copies
    host = sweep.host["source"].get(next(k for k in sweep.mergeable if k.endswith("up_proj.weight")))
    assert host.dtype == torch.float32 and not host.untyped_storage().resizable()


def _point_embeddings(model, sweep, prepared, al, au):
    sweep.set(al, au)
    emb = encode_split(model, prepared)
    return emb.queries, emb.corpus


def _cached_bytes(rows, hidden_size: int, itemsize: int) -> int:
    """What the cache holds for one padded batch: one hidden state per padded token."""
    return int(rows.ids.shape[0] * rows.ids.shape[1]) * hidden_size * itemsize


@pytest.mark.parametrize("family", ["mistral", "bert"])
def test_layer_cache_equals_the_plain_sweep_at_every_point(models, tmp_path, family):
    """A budget of about a third of the split's hidden states: chunks of several batches, each within the budget,
    and the upper half re-mixed once per chunk and alpha_upper (the chunks visit the uppers in reversed order)."""
    if family == "mistral":
        source, domain, pooling, k = models["source"], models["domain"], "last", 1
    else:
        from mergeir.models import build_tokenizer

        pair = build_bert_pair(tmp_path, with_position_ids=False)
        source, domain, pooling, k = pair["source"], pair["domain"], "mean", 2
        for folder in pair.values():
            build_tokenizer(texts_of(TINY_BEIR), out=folder, vocab_size=64)
    model, tok = load_encoder(source, device="cpu")
    prepared = prepare_split(tok, load_collection(TINY_BEIR), "train", pooling=pooling, max_length=48, batch_size=5)
    sweep = AlphaSweep(model, source, domain, split_layer=k)
    assert supported(model, k)
    dim, itemsize = model.config.hidden_size, next(model.parameters()).element_size()
    batches = [(side, idx.tolist()) for side, p in (("queries", prepared.queries), ("corpus", prepared.corpus))
               for idx in p.index]
    budget = sum(ids.shape[0] * ids.shape[1] for p in (prepared.queries, prepared.corpus)
                 for ids, _ in p.batches) * dim * itemsize // 3
    plan = cache_chunks(prepared, dim, itemsize, budget)
    assert [(side, r.index.tolist()) for c in plan for side, r in c] == batches  # every batch once, in order
    sizes = [[_cached_bytes(r, dim, itemsize) for _, r in c] for c in plan]
    assert len(plan) > 1 and max(map(len, plan)) > 1
    for i, c in enumerate(sizes):
        assert sum(c) <= budget or len(c) == 1, (i, sizes, budget)  # a batch over the budget alone may exceed it
        assert i + 1 == len(sizes) or sum(c) + sizes[i + 1][0] > budget  # a chunk ends only when the next is full
    plain = {(al, au): _point_embeddings(model, sweep, prepared, al, au) for al in GRID for au in GRID}
    n_upper = sum(sweep.targets(0.5, 0.0)[key] != sweep.targets(0.5, 1.0)[key] for key in sweep.mergeable)
    for i, al in enumerate(GRID):
        uppers = GRID if i % 2 == 0 else GRID[::-1]
        sweep.set(al, uppers[0])  # from here on only the upper half changes
        before = sweep.rewritten
        cached = encode_uppers(model, sweep, prepared, al, uppers, budget_bytes=budget)
        assert sorted(cached) == sorted(GRID)
        for au in GRID:
            for got, want in zip(cached[au], plain[(al, au)]):
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        # per chunk, the upper half is re-mixed for every alpha_upper but the one the previous chunk ended at
        assert sweep.rewritten - before == len(plan) * (len(uppers) - 1) * n_upper
    assert not supported(model, 0)  # K = 0: nothing below the split to cache


class PeakMalloc(TorchDispatchMode):
    """Peak bytes the C allocator holds above its level at entry, sampled after every torch operation."""

    class _Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                   "fsmblks", "uordblks", "fordblks", "keepcost")]

    _libc = ctypes.CDLL("libc.so.6")
    _libc.mallinfo2.restype = _Info

    def _in_use(self):
        m = self._libc.mallinfo2()
        return m.uordblks + m.hblkhd

    def __enter__(self):
        self.base, self.peak = self._in_use(), 0
        return super().__enter__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, self._in_use() - self.base)
        return out


def test_memory_estimate_matches_what_a_tiny_model_allocates(tmp_path):
    from transformers import AutoConfig

    from mergeir.models import build_mistral, build_tokenizer

    kw = dict(vocab_size=512, hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2)
    tok = build_tokenizer(texts_of(TINY_BEIR))
    build_mistral(tmp_path / "source", seed=0, layout="model", tokenizer=tok, **kw)
    build_mistral(tmp_path / "domain", seed=1, layout="causal", tokenizer=tok, **kw)
    src, dom = open_checkpoint(tmp_path / "source"), open_checkpoint(tmp_path / "domain")
    config = AutoConfig.from_pretrained(str(tmp_path / "source"))
    for dtype in (torch.float32, torch.bfloat16):
        model, _ = load_encoder(tmp_path / "source", dtype=str(dtype).split(".")[1], device="cpu")
        real = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
        assert model_bytes(config, dtype) == real
        sweep = AlphaSweep(model, tmp_path / "source", tmp_path / "domain")
        host, mix = plan_bytes(src, dom, dtype, restore=True)
        stored = sum(sweep.host[r].get(k).nbytes for r, keys in (("source", sweep.mergeable), ("domain", [
            k for k, role in sweep.mergeable.items() if role[0] != "embed"])) for k in keys)
        assert host == sweep.host_bytes() == stored  # the float32 files as stored; no embeddings of the domain
        assert mix == sweep.device_scratch_bytes() >= sweep._scratch.numel() * 4
    model, _ = load_encoder(tmp_path / "source", dtype="float32", device="cpu")
    with torch.inference_mode():  # the first sizeable forward's one-time allocations (~2 MB) are no activations
        model(input_ids=torch.randint(3, 500, (16, 128)), use_cache=False)
    for rows, width in ((16, 128), (4, 1024)):
        ids = torch.randint(3, 500, (rows, width))
        mask = torch.ones_like(ids)
        mask[1:, width // 2:] = 0  # padded rows: the mask path the sweep's batches take
        with torch.inference_mode(), PeakMalloc() as peak:
            model(input_ids=ids, attention_mask=mask, use_cache=False)
        estimate = activation_bytes(config, rows, width, torch.float32)
        assert 0.98 * estimate <= peak.peak <= 1.04 * estimate, (rows, width, peak.peak, estimate)
    # the tolerance is narrower than the attention mask's share at the wide batch: the test sees that term
    assert 4 * 1024 * 1024 > 0.1 * activation_bytes(config, 4, 1024, torch.float32)


def test_sweep_estimate_is_its_formula_over_the_model_config(models):
    """The estimate that decides whether a sweep may start, term by term, from the config and the batches."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(models["source"]))
    h, inter, v = config.hidden_size, config.intermediate_size, config.vocab_size
    kv = config.num_key_value_heads * (h // config.num_attention_heads)
    embed = v * h
    # per layer q, o; k, v; gate, up, down; two norms. Then the final norm.
    params = embed + config.num_hidden_layers * (2 * h * h + 2 * h * kv + 3 * h * inter + 2 * h) + h
    model, tok = load_encoder(models["source"], device="cpu")
    rotary = sum(b.numel() * b.element_size() for b in model.buffers())  # float32 in every model dtype
    prepared = prepare_split(tok, load_collection(TINY_BEIR), "train", pooling="last", max_length=48, batch_size=5)
    shapes = [tuple(ids.shape) for p in (prepared.queries, prepared.corpus) for ids, _ in p.batches]
    src, dom = open_checkpoint(models["source"]), open_checkpoint(models["domain"])
    host = 4 * params + 4 * (params - embed)  # float32 files; the domain's embeddings are not read (restored)
    chunk = max(embed, h * inter)  # the largest tensor, below the chunk size
    for dtype in (torch.float32, torch.bfloat16):
        b = dtype.itemsize
        # per padded token 4 hidden + 3 intermediate values, plus the boolean rows x width x width mask
        act = {(r, w): r * w * (4 * h + 3 * inter) * b + r * w * w for r, w in shapes}
        rows, width = max(act, key=act.get)
        # mixing: a float32 accumulator (+ float32 upcasts of source and domain in half precision) and one
        # streamed chunk of source and domain each
        mix = chunk * ((4 if dtype == torch.float32 else 3 * 4) + 2 * b)
        hidden = [r * w * h * b for r, w in shapes]
        middle = (max(hidden) + sum(hidden)) // 2
        for budget, cache in ((1, max(hidden)), (middle, middle), (10 * sum(hidden), sum(hidden)), (None, 0)):
            est = sweep_estimate(src, dom, config, dtype, "cpu", prepared, restore=True,
                                 layer_cache=budget is not None, cache_budget=budget)
            want = (params * b + rotary, mix, act[(rows, width)], cache, host, rows * width)
            got = (est.model_bytes, est.mix_bytes, est.activation_bytes, est.cache_bytes, est.host_bytes,
                   est.batch_tokens)
            assert got == want, (dtype, budget)
            assert est.device_bytes == sum(want[:4])


def test_memory_check_refuses_a_sweep_that_does_not_fit():
    est = MemoryEstimate("cuda:0", model_bytes=14 << 30, mix_bytes=1 << 28, activation_bytes=2 << 30,
                         cache_bytes=4 << 30, host_bytes=28 << 30, batch_tokens=16384, available_bytes=16 << 30)
    assert "model 14.00 GiB" in est.describe() and "host: source+domain 28.00 GiB" in est.describe()
    with pytest.raises(MergeirError, match="needs 20.25 GiB on cuda:0 but 16.00 GiB is free"):
        est.check()
    MemoryEstimate("cpu", 1, 1, 1, 1, 1, 1, None).check()  # unknown free memory: nothing to compare
