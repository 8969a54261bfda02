#!/usr/bin/env python3
"""Scoring SciFact: our search + evaluate vs the authors' way, in one run; prints both times and the ratio.

The authors' way (their `scifact_cal.py` / `scifact_evaluate.py`): a Python loop over every (query, document)
pair computing `(q @ d.T) * 100` with torch and `.item()`, a full score table (1.55M rows on SciFact), sorted,
turned row by row into a results dict, scored by pytrec_eval over every document (BEIR's EvaluateRetrieval).
Their pandas `iloc` look-ups per pair and the CSV round trip are left out, which only makes the baseline faster.
Ours: faiss exact inner-product search (depth 1000) + pytrec_eval. Both must give the same nDCG@10 (1e-6).

    .venv/bin/python benchmarks/score.py [--collection ../shared/data/scifact] [--embeddings DIR] [--dim 384]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    import mergeir  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "src"))

import numpy as np

from mergeir.collections import load_collection
from mergeir.evaluation import evaluate, search_collection


def random_unit(rng, n, dim):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def synthetic(coll, split, qids, dids, dim, seed, signal=0.2):
    """Random unit vectors, each query nudged towards its relevant documents so nDCG@10 is far from 0
    (pure noise scores ~0 on both sides, which would make the equality check meaningless)."""
    rng = np.random.default_rng(seed)
    d = random_unit(rng, len(dids), dim)
    q = random_unit(rng, len(qids), dim)
    row = {x: i for i, x in enumerate(dids)}
    qrels = coll.qrels(split)
    for i, qid in enumerate(qids):
        rel = [row[x] for x, s in qrels.get(qid, {}).items() if s > 0]
        if rel:
            q[i] += signal * d[rel].mean(0)
    return q / np.linalg.norm(q, axis=1, keepdims=True), d


def authors_way(q_emb, qids, d_emb, dids, qrels):
    import pandas as pd
    import pytrec_eval
    import torch

    q_t = [torch.from_numpy(q_emb[i : i + 1]) for i in range(len(qids))]
    d_t = [torch.from_numpy(d_emb[j : j + 1]) for j in range(len(dids))]
    t0 = time.perf_counter()
    query_ids, doc_ids, scores = [], [], []
    for i, q in enumerate(q_t):
        for j, d in enumerate(d_t):
            query_ids.append(qids[i])
            doc_ids.append(dids[j])
            scores.append(((q @ d.T) * 100).item())
    df = pd.DataFrame({"query_id": query_ids, "doc_id": doc_ids, "score": scores})
    df = df.sort_values(by=["query_id", "score"], ascending=[True, False])
    results: dict[str, dict[str, float]] = {}
    for _, row in df.iterrows():
        results.setdefault(str(row["query_id"]), {})[str(row["doc_id"])] = float(row["score"])
    ks = "1,3,5,10,100,1000"
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {f"map_cut.{ks}", f"ndcg_cut.{ks}", f"recall.{ks}", f"P.{ks}"})
    per_query = evaluator.evaluate(results)
    ndcg10 = sum(v["ndcg_cut_10"] for v in per_query.values()) / len(per_query)
    return time.perf_counter() - t0, ndcg10


def ours(coll, split, q_emb, qids, d_emb, dids, depth):
    t0 = time.perf_counter()
    run = search_collection(coll, split, q_emb, qids, d_emb, dids, depth=depth)
    m = evaluate(run, coll.qrels(split))
    return time.perf_counter() - t0, m["mean"]["ndcg_cut_10"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--collection", default=str(ROOT.parent / "shared" / "data" / "scifact"))
    ap.add_argument("--embeddings", help="an embeddings folder from bin/encode.py (default: random unit vectors)")
    ap.add_argument("--dim", type=int, default=384, help="dimension of the random vectors (MiniLM: 384)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--depth", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3, help="ours is timed as the best of this many runs")
    args = ap.parse_args()

    coll = load_collection(args.collection)
    split = coll.eval_split
    qids = coll.query_ids(split)
    if args.embeddings:
        from mergeir.encoding import read_embeddings

        emb = read_embeddings(args.embeddings)
        row = {q: i for i, q in enumerate(emb.query_ids)}
        q_emb, d_emb, dids = emb.queries[[row[q] for q in qids]], emb.corpus, list(emb.corpus_ids)
        what = f"embeddings {args.embeddings}"
    else:
        dids = list(coll.corpus)
        q_emb, d_emb = synthetic(coll, split, qids, dids, args.dim, args.seed)
        what = f"synthetic unit vectors, dim {args.dim}, seed {args.seed}"
    print(f"{coll.name} {split}: {len(qids)} queries x {len(dids)} documents = {len(qids) * len(dids):,} pairs ({what})")

    t_ours, n_ours = min(ours(coll, split, q_emb, qids, d_emb, dids, args.depth) for _ in range(args.repeats))
    print(f"ours    (faiss + pytrec_eval, depth {args.depth}): {t_ours:8.3f} s  nDCG@10 = {n_ours:.6f}", flush=True)
    t_auth, n_auth = authors_way(q_emb, qids, d_emb, dids, coll.qrels(split))
    print(f"authors (pair loop + score table + pytrec_eval):  {t_auth:8.3f} s  nDCG@10 = {n_auth:.6f}")
    diff = abs(n_ours - n_auth)
    print(f"ratio {t_auth / t_ours:.0f}x faster (goal >= 100x); |nDCG@10 difference| = {diff:.2e} (must be <= 1e-6)")
    if diff > 1e-6:
        raise SystemExit("nDCG@10 differs by more than 1e-6")


if __name__ == "__main__":
    main()
