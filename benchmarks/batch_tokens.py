#!/usr/bin/env python3
"""Token-budget batches (`--max-batch-tokens`) vs count batches (`--batch-size`, today's), in one run on CPU: the
same SciFact queries and documents encoded by the same random Mistral, longest first either way.

Prints the time of each (best of `--repeats`, run alternately), the ratio, the largest difference between the two
embeddings, and the spread of padded tokens per batch: a budget keeps every batch's size, hence a GPU's memory use,
within one bound, while count batches of short queries waste the device and count batches of long documents are
the ones that run out of memory.

    .venv/bin/python benchmarks/batch_tokens.py [--queries 300 --docs 300 --batch-size 16 --max-batch-tokens 4096]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _scifact_subset import SCIFACT, build_pair, texts, write_subset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scifact", type=Path, default=SCIFACT)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-batch-tokens", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import numpy as np
    import torch
    from transformers.utils import logging as hf_logging

    from mergeir.encoding import encode_prepared, load_encoder, prepare_texts

    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    root = Path(tempfile.mkdtemp(prefix="batch-tokens-"))
    coll = write_subset(args.scifact, root / "collection", args.queries, args.docs)
    source, _ = build_pair(root, coll, hidden_size=args.hidden, intermediate_size=4 * args.hidden,
                           num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2)
    model, tok = load_encoder(source, device="cpu")
    items = texts(coll)
    plans = {"count": prepare_texts(tok, items, "last", args.max_length, args.batch_size),
             "tokens": prepare_texts(tok, items, "last", args.max_length, args.batch_size, args.max_batch_tokens)}
    best, out = {k: float("inf") for k in plans}, {}
    encode_prepared(model, prepare_texts(tok, items[:8], "last", args.max_length, 8))  # warm-up
    for _ in range(args.repeats):
        for name, plan in plans.items():
            t = time.perf_counter()
            out[name] = encode_prepared(model, plan)
            best[name] = min(best[name], time.perf_counter() - t)
    diff = float(np.abs(out["count"] - out["tokens"]).max())
    print(f"{len(items)} texts ({args.docs} documents, {len(items) - args.docs} queries), {plans['count'].n_tokens} "
          f"tokens, max length {args.max_length}; hidden {args.hidden}, {args.layers} layers, torch threads "
          f"{args.threads}, load average {os.getloadavg()[0]:.2f}")
    for name, plan in plans.items():
        sizes = np.array([ids.numel() for ids, _ in plan.batches])
        label = f"--batch-size {args.batch_size}" if name == "count" else f"--max-batch-tokens {args.max_batch_tokens}"
        print(f"{label:<24} {len(plan.batches):>4} batches, padded tokens per batch {sizes.min()}..{sizes.max()} "
              f"(mean {sizes.mean():.0f}), {best[name]:.2f} s")
    print(f"ratio count / token budget = {best['count'] / best['tokens']:.2f}x; "
          f"largest embedding difference {diff:.2g}")


if __name__ == "__main__":
    main()
