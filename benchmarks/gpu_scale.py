#!/usr/bin/env python3
"""The paper's scale on the current device, no download: a random model with e5-mistral's shapes (MistralConfig:
32 layers, hidden 4096, 14336 intermediate, 32 heads / 8 KV heads, vocab 32000) in bfloat16, and a perturbed copy
as the domain model. Measures, and prints as one table:

  encode      tokens/s over texts of 32..512 tokens in token-budget batches, the achieved fraction of the device's
              bfloat16 peak (FLOPs = 2 x non-embedding parameters x padded tokens + 4 x layers x width^2 x hidden
              per sequence for attention), peak memory
  sweep       seconds per grid point of a 3 x 3 grid with and without the layer-split cache (bin/sweep.py's
              code, end to end: mixing, encoding, search, scoring), the sweep's memory estimate and the peak
  merge       one mergekit linear merge of the pair (bin/merge.py's code, bfloat16)
  lora        one optimizer step of the paper's LoRA recipe (r 16, group 16 = 1 positive + 15 negatives, 512
              tokens, gradient checkpointing, 4 queries per device)

Made to finish within 8 minutes on one H100/H200 (the two 14.5 GB checkpoints are written to --workdir, which
needs ~60 GB free). `--scale tiny` runs the same code on a small model (the test suite runs it on CPU).

    .venv/bin/python benchmarks/gpu_scale.py [--scale e5-mistral|tiny] [--device cuda] [--workdir DIR]
                                             [--skip merge,lora] [--peak-tflops 989]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

SCALES = {
    "e5-mistral": dict(
        model=dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                   num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768),
        encode=dict(texts=640, min_len=32, max_len=512, max_batch_tokens=32768),
        sweep=dict(docs=160, queries=16, words=220, max_length=512, max_batch_tokens=32768),
        lora=dict(group_size=16, per_device_batch=4, max_length=512),
    ),
    "tiny": dict(
        model=dict(vocab_size=512, hidden_size=64, intermediate_size=224, num_hidden_layers=4,
                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024),
        encode=dict(texts=48, min_len=8, max_len=64, max_batch_tokens=512),
        sweep=dict(docs=24, queries=6, words=30, max_length=64, max_batch_tokens=512),
        lora=dict(group_size=4, per_device_batch=2, max_length=32),
    ),
}
GRID = (0.0, 0.5, 1.0)
# dense bfloat16 tensor-core peaks (TFLOP/s), by the name torch reports; first match wins
PEAKS = (("H200", 989.4), ("H100 NVL", 835.0), ("H100 PCIe", 756.0), ("H100", 989.4), ("A100", 312.0),
         ("L40S", 362.1), ("L4", 121.0), ("A10", 125.0))


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _size(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _peak(device) -> str:
    import torch

    if device.type == "cuda":
        return f"{_size(torch.cuda.max_memory_allocated(device))} (allocated)"
    return f"{_size(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)} (process max RSS)"


def peak_tflops(device, given: float | None) -> float | None:
    import torch

    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((p for key, p in PEAKS if key in name), None)


def build_models(root: Path, shape: dict, device, words: list[str]) -> tuple[Path, Path]:
    """source: random MistralModel (e5-mistral's layout); domain: the source x (1 + 0.02 noise), both bfloat16,
    with a word-level tokenizer over `words`."""
    import torch
    from transformers import AutoModel, MistralConfig

    from mergeir.models import build_tokenizer

    config = MistralConfig(**shape, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, sliding_window=None)
    tok = build_tokenizer([" ".join(words)])
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModel.from_config(config, dtype=torch.bfloat16)
    for name in ("source", "domain"):
        if name == "domain":
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(1 + 0.02 * torch.randn_like(p))
        model.save_pretrained(str(root / name), safe_serialization=True)
        tok.save_pretrained(str(root / name))
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return root / "source", root / "domain"


def write_collection(root: Path, words: list[str], docs: int, queries: int, length: int, seed: int = 0) -> Path:
    import random

    rng = random.Random(seed)
    (root / "qrels").mkdir(parents=True)
    text = lambda n: " ".join(rng.choice(words) for _ in range(n))  # noqa: E731
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": "", "text": text(
        rng.randint(length // 4, length))}) + "\n" for i in range(docs)))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": text(12)}) + "\n"
                                                for i in range(queries)))
    head = "query-id\tcorpus-id\tscore\n"
    (root / "qrels" / "train.tsv").write_text(head + "".join(f"q{i}\td{(7 * i) % docs}\t1\n" for i in range(queries)))
    (root / "qrels" / "test.tsv").write_text(head + "q0\td0\t1\n")
    return root


def bench_encode(source: Path, device, cfg: dict, peak: float | None, rows: list) -> None:
    import numpy as np

    from mergeir.encoding import Prepared, encode_prepared, load_encoder
    from mergeir.encoding.batching import cut
    from mergeir.encoding.tokenization import _pad

    model, _ = load_encoder(source, dtype="bfloat16", device=str(device))
    rng = np.random.default_rng(0)
    lengths = rng.integers(cfg["min_len"], cfg["max_len"] + 1, cfg["texts"])
    vocab = model.config.vocab_size
    seqs = [[1, *rng.integers(3, vocab, n - 2).tolist(), 2] for n in lengths]
    index = cut(lengths, 16, cfg["max_batch_tokens"])
    prepared = Prepared("last", cfg["max_len"], 16, len(seqs), int(lengths.sum()),
                        [_pad([seqs[i] for i in idx], 0) for idx in index], index, cfg["max_batch_tokens"])
    warm = Prepared("last", cfg["max_len"], 16, len(index[0]), 0, prepared.batches[:1], [np.arange(len(index[0]))])
    encode_prepared(model, warm)
    _sync(device)
    _reset_peak(device)
    t = time.perf_counter()
    encode_prepared(model, prepared)
    _sync(device)
    seconds = time.perf_counter() - t
    c = model.config
    params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)
    padded = sum(ids.numel() for ids, _ in prepared.batches)
    attention = sum(4 * c.num_hidden_layers * ids.shape[0] * ids.shape[1] ** 2 * c.hidden_size
                    for ids, _ in prepared.batches)
    flops = 2 * params * padded + attention
    rows += [("encode: texts / real tokens / padded tokens", f"{len(seqs)} / {prepared.n_tokens} / {padded}"),
             ("encode: tokens/s (real)", f"{prepared.n_tokens / seconds:,.0f}"),
             ("encode: achieved TFLOP/s", f"{flops / seconds / 1e12:.3g}"),
             ("encode: fraction of bf16 peak", f"{flops / seconds / 1e12 / peak:.1%} of {peak} TFLOP/s"
              if peak else "n/a (no known peak for this device: --peak-tflops)"),
             ("encode: peak memory", _peak(device))]
    del model


def bench_sweep(source: Path, domain: Path, coll: Path, root: Path, device, cfg: dict, rows: list) -> None:
    from mergeir.sweep import run_sweep

    times = {}
    for name, cache in (("plain", False), ("cache", True)):
        _reset_peak(device)
        t = time.perf_counter()
        doc = run_sweep(source, domain, coll, root / f"grid-{name}", grid=GRID, layer_cache=cache,
                        dtype="bfloat16", device=str(device), max_length=cfg["max_length"],
                        max_batch_tokens=cfg["max_batch_tokens"], log=lambda line: print(line, flush=True))
        _sync(device)
        times[name] = (time.perf_counter() - t) / len(doc["points"])
        rows.append((f"sweep: s/point, {'layer-split cache' if cache else 'plain (no cache)'}",
                     f"{times[name]:.2f} ({len(doc['points'])} points, {doc['n_queries']} queries, "
                     f"{doc['n_ranked_docs']} docs)"))
        rows.append((f"sweep ({name}): memory estimate / peak", f"{_size(doc['memory']['device_bytes'])} "
                     f"estimated (host {_size(doc['memory']['host_bytes'])} mapped) / {_peak(device)}"))
        shutil.rmtree(root / f"grid-{name}")
    rows.append(("sweep: ratio plain / cache", f"{times['plain'] / times['cache']:.2f}x"))


def bench_merge(source: Path, domain: Path, root: Path, device, rows: list) -> None:
    from mergeir.merging import merge

    t = time.perf_counter()
    merge(source, domain, root / "merged", alpha_lower=0.5, alpha_upper=0.75, dtype="bfloat16", device=device.type)
    rows.append(("merge: one linear merge (mergekit, bfloat16, verified)", f"{time.perf_counter() - t:.1f} s"))
    shutil.rmtree(root / "merged")


def bench_lora(source: Path, device, cfg: dict, words: list[str], rows: list) -> None:
    import random

    import torch

    from mergeir.encoding import load_encoder
    from mergeir.training.recipe import Recipe
    from mergeir.training.trainer import group_loss, lora_model

    recipe = Recipe(group_size=cfg["group_size"], per_device_batch=cfg["per_device_batch"],
                    query_max_length=cfg["max_length"], passage_max_length=cfg["max_length"])
    model, tok = load_encoder(source, dtype="bfloat16", device=str(device))
    model = lora_model(model, recipe)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=recipe.lr)
    rng = random.Random(0)
    q = [" ".join(rng.choice(words) for _ in range(24)) for _ in range(recipe.per_device_batch)]
    p = [" ".join(rng.choice(words) for _ in range(2 * recipe.passage_max_length))
         for _ in range(recipe.per_device_batch * recipe.group_size)]
    _sync(device)
    _reset_peak(device)
    t = time.perf_counter()
    loss = group_loss(model, tok, q, p, recipe, device=device)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    _sync(device)
    rows += [(f"lora: one step (r {recipe.lora_r}, group {recipe.group_size}, {recipe.passage_max_length} tokens, "
              f"{recipe.per_device_batch} queries, checkpointing {recipe.gradient_checkpointing})",
              f"{time.perf_counter() - t:.2f} s, loss {loss.item():.3f}"),
             ("lora: peak memory", _peak(device))]
    del model, opt


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="e5-mistral")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--workdir", type=Path, default=None, help="where the checkpoints go [default: system temp]")
    ap.add_argument("--skip", default="", help="comma-separated parts to leave out: encode,sweep,merge,lora")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak, if not known")
    args = ap.parse_args(argv)
    import torch
    from transformers.utils import logging as hf_logging

    from mergeir.encoding import resolve_device

    hf_logging.set_verbosity_error()
    device = resolve_device(args.device)
    scale = SCALES[args.scale]
    skip = set(filter(None, args.skip.split(",")))
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="gpu-scale-", dir=args.workdir))
    words = [f"w{i}" for i in range(min(2000, scale["model"]["vocab_size"] - 8))]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    rows = [("device", f"{name}; torch {torch.__version__}, CUDA {torch.version.cuda}"),
            ("model", f"{args.scale}: " + ", ".join(f"{k}={v}" for k, v in scale["model"].items()) + ", bfloat16")]
    try:
        t = time.perf_counter()
        source, domain = build_models(root, scale["model"], device, words)
        rows.append(("build + save source and domain", f"{time.perf_counter() - t:.1f} s"))
        if "encode" not in skip:
            bench_encode(source, device, scale["encode"], peak_tflops(device, args.peak_tflops), rows)
        if "sweep" not in skip:
            s = scale["sweep"]
            coll = write_collection(root / "collection", words, s["docs"], s["queries"], s["words"])
            bench_sweep(source, domain, coll, root, device, s, rows)
        if "merge" not in skip:
            bench_merge(source, domain, root, device, rows)
        if "lora" not in skip:
            bench_lora(source, device, scale["lora"], words, rows)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows.append(("total wall time", f"{time.perf_counter() - started:.0f} s (load average "
                 f"{os.getloadavg()[0]:.2f})"))
    width = max(len(k) for k, _ in rows)
    print("\n" + "\n".join(f"| {k:<{width}} | {v} |" for k, v in rows))
    return rows


if __name__ == "__main__":
    main()
