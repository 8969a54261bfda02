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
from mergeir.alphasweep import AlphaSweep, plan_bytes
from mergeir.collections import load_collection
from mergeir.encoding import encode_split, load_encoder, prepare_split
from mergeir.errors import MergeirError
from mergeir.layercache import encode_uppers, supported
from mergeir.memory import MemoryEstimate, activation_bytes, model_bytes
from mergeir.models import open_checkpoint

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


@pytest.mark.parametrize("family", ["mistral", "bert"])
def test_layer_cache_equals_the_plain_sweep_at_every_point(models, tmp_path, family):
    """Budget of one byte: every batch is its own chunk, so the upper half is re-mixed per chunk (reversed order)."""
    if family == "mistral":
        source, domain, pooling, k = models["source"], models["domain"], "last", 1
    else:
        from mergeir.tiny import build_tokenizer

        pair = build_bert_pair(tmp_path, with_position_ids=False)
        source, domain, pooling, k = pair["source"], pair["domain"], "mean", 2
        for folder in pair.values():
            build_tokenizer(texts_of(TINY_BEIR), out=folder, vocab_size=64)
    model, tok = load_encoder(source, device="cpu")
    prepared = prepare_split(tok, load_collection(TINY_BEIR), "train", pooling=pooling, max_length=48, batch_size=5)
    sweep = AlphaSweep(model, source, domain, split_layer=k)
    assert supported(model, k)
    plain = {(al, au): _point_embeddings(model, sweep, prepared, al, au) for al in GRID for au in GRID}
    n_batches = len(prepared.queries.batches) + len(prepared.corpus.batches)
    for i, al in enumerate(GRID):
        uppers = GRID if i % 2 == 0 else GRID[::-1]
        before = sweep.rewritten
        cached = encode_uppers(model, sweep, prepared, al, uppers, budget_bytes=1)
        assert sorted(cached) == sorted(GRID)
        for au in GRID:
            for got, want in zip(cached[au], plain[(al, au)]):
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        assert sweep.rewritten - before >= n_batches  # one chunk per batch: the upper half re-mixed per chunk
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

    from mergeir.tiny import build_mistral, build_tokenizer

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
    for rows, width in ((16, 128), (4, 512)):
        ids = torch.randint(3, 500, (rows, width))
        mask = torch.ones_like(ids)
        mask[1:, width // 2:] = 0  # padded rows: the mask path the sweep's batches take
        with torch.inference_mode(), PeakMalloc() as peak:
            model(input_ids=ids, attention_mask=mask, use_cache=False)
        estimate = activation_bytes(config, rows, width, torch.float32)
        assert 0.9 * estimate <= peak.peak <= 1.1 * estimate, (rows, width, peak.peak, estimate)


def test_memory_check_refuses_a_sweep_that_does_not_fit():
    est = MemoryEstimate("cuda:0", model_bytes=14 << 30, mix_bytes=1 << 28, activation_bytes=2 << 30,
                         cache_bytes=4 << 30, host_bytes=28 << 30, batch_tokens=16384, available_bytes=16 << 30)
    assert "model 14.00 GiB" in est.describe() and "host: source+domain 28.00 GiB" in est.describe()
    with pytest.raises(MergeirError, match="needs 20.25 GiB on cuda:0 but 16.00 GiB is free"):
        est.check()
    MemoryEstimate("cpu", 1, 1, 1, 1, 1, 1, None).check()  # unknown free memory: nothing to compare
