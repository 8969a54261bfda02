#!/usr/bin/env python3
"""The α sweep with the layer-split cache vs without it (today's plain sweep), in one run on CPU: the same 5 x 5
grid on the same random Mistral pair and SciFact subset, both through `mergeir.sweep.run_sweep`, end to end
(load, encode, search, score), alternately `--repeats` times. Goal: >= 1.5x, the same metrics at every point.

With K = n/2 the cache runs 5 lower halves + 25 upper halves instead of 25 whole models: at most 25/15 = 1.67x on
the encoding; search and scoring are the same work either way.

    .venv/bin/python benchmarks/sweep_cache.py [--queries 40 --docs 200 --hidden 128 --layers 6 --threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _scifact_subset import SCIFACT, build_pair, write_subset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scifact", type=Path, default=SCIFACT)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steady on a shared machine)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each, alternating (best kept)")
    args = ap.parse_args()
    import torch
    from transformers.utils import logging as hf_logging

    from mergeir.sweep import run_sweep

    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    root = Path(tempfile.mkdtemp(prefix="sweep-cache-"))
    coll = write_subset(args.scifact, root / "collection", args.queries, args.docs)
    source, domain = build_pair(root, coll, hidden_size=args.hidden, intermediate_size=4 * args.hidden,
                                num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2)
    common = dict(max_length=args.max_length, batch_size=args.batch_size, device="cpu", dtype="float32",
                  log=lambda line: print(line, flush=True))
    results = {}
    for r in range(args.repeats):  # alternately, best time kept: a shared machine's load hits both alike
        for name, cache in (("plain", False), ("cache", True))[:: 1 if r % 2 == 0 else -1]:
            t = time.perf_counter()
            doc = run_sweep(source, domain, coll, root / name, layer_cache=cache, force=True, **common)
            seconds = time.perf_counter() - t
            results[name] = (min(seconds, results.get(name, (seconds,))[0]), doc)
            print(f"{name}: {seconds:.1f} s, {doc['tensors_rewritten']} tensor rewrites, layer_cache "
                  f"{doc['layer_cache']}", flush=True)
    (tp, plain), (tc, cached) = results["plain"], results["cache"]
    worst = 0.0
    for p, c in zip(plain["points"], cached["points"]):
        assert (p["alpha_lower"], p["alpha_upper"]) == (c["alpha_lower"], c["alpha_upper"])
        mp = json.loads((root / "plain" / p["dir"] / "metrics.json").read_text())["per_query"]
        mc = json.loads((root / "cache" / c["dir"] / "metrics.json").read_text())["per_query"]
        worst = max([worst] + [abs(mp[q][m] - mc[q][m]) for q in mp for m in mp[q]])
    best = max(cached["points"], key=lambda p: p["ndcg_cut_10"])
    print(f"\n{len(plain['points'])} points, {plain['n_queries']} queries, {plain['n_ranked_docs']} documents, "
          f"{args.layers} layers (K={plain['split_layer']}), hidden {args.hidden}, torch threads {args.threads}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"plain sweep {tp:.1f} s, layer-split cache {tc:.1f} s: ratio {tp / tc:.2f}x; largest per-query metric "
          f"difference {worst:.2g}; best nDCG@10 {best['ndcg_cut_10']:.4f} at ({best['alpha_lower']}, "
          f"{best['alpha_upper']})")
    if worst > 1e-9:
        sys.exit("the two sweeps' metrics differ")


if __name__ == "__main__":
    main()
