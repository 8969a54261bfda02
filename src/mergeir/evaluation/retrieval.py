"""Exact inner-product search: the run {query_id: {doc_id: score}} that evaluation scores.

Ranking order is score descending, ties broken by document id descending — the order trec_eval (and so
pytrec_eval) itself uses — so the `depth` cut, `run.trec` ranks and the metrics all see one ranking.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..errors import MergeirError

Run = dict[str, dict[str, float]]
_PAD = 16  # extra hits fetched so a tie straddling the depth cut is detected


def _matrix(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise MergeirError(f"{what} embeddings must be a non-empty 2-D array, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise MergeirError(f"{what} embeddings must be floating point, got {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise MergeirError(f"{what} embeddings contain NaN or infinite values")
    return x


def _ranked(doc_ids: Sequence[str], scores: np.ndarray, depth: int) -> dict[str, float]:
    pairs = sorted(zip(scores.tolist(), doc_ids), reverse=True)  # score desc, then doc id desc (trec_eval)
    return {d: s for s, d in pairs[:depth]}


def search(
    q_emb: np.ndarray,
    q_ids: Sequence[str],
    d_emb: np.ndarray,
    d_ids: Sequence[str],
    depth: int = 1000,
    candidates: Mapping[str, Sequence[str]] | None = None,
) -> Run:
    """Top-`depth` documents per query by inner product (faiss IndexFlatIP: exact, no approximation).

    With `candidates` {query_id: [doc_id]} each query is scored only against its own candidates
    (re-ranking, e.g. JQaRA); queries without an entry are an error.
    """
    q = _matrix(q_emb, "query")
    d = _matrix(d_emb, "document")
    q_ids, d_ids = [str(i) for i in q_ids], [str(i) for i in d_ids]
    if len(q_ids) != q.shape[0] or len(d_ids) != d.shape[0]:
        raise MergeirError(
            f"ids do not match embeddings: {len(q_ids)} query ids for {q.shape[0]} rows, "
            f"{len(d_ids)} document ids for {d.shape[0]} rows"
        )
    if q.shape[1] != d.shape[1]:
        raise MergeirError(f"query dimension {q.shape[1]} != document dimension {d.shape[1]}")
    if len(set(q_ids)) != len(q_ids) or len(set(d_ids)) != len(d_ids):
        raise MergeirError("duplicate ids among the query or document embeddings")
    if depth < 1:
        raise MergeirError(f"--depth must be >= 1, got {depth}")

    if candidates is not None:
        row = {i: n for n, i in enumerate(d_ids)}
        run: Run = {}
        for qi, qid in enumerate(q_ids):
            if qid not in candidates:
                raise MergeirError(f"query '{qid}' has no candidates")
            cand = [str(c) for c in candidates[qid]]
            missing = [c for c in cand if c not in row]
            if missing:
                raise MergeirError(f"candidate '{missing[0]}' of query '{qid}' has no document embedding")
            scores = d[[row[c] for c in cand]] @ q[qi]
            run[qid] = _ranked(cand, scores, depth)
        return run

    import faiss

    n = d.shape[0]
    index = faiss.IndexFlatIP(d.shape[1])
    index.add(d)
    k = min(n, depth + _PAD)
    scores, idx = index.search(q, k)
    run = {}
    for qi, qid in enumerate(q_ids):
        s, ix = scores[qi], idx[qi]
        if k < n and depth < k and s[k - 1] == s[depth - 1]:
            # the tie at the cut may continue past what faiss returned: rank this query over the whole corpus
            s, ix = index.search(q[qi : qi + 1], n)
            s, ix = s[0], ix[0]
        run[qid] = _ranked([d_ids[j] for j in ix], s, depth)
    return run


def search_collection(collection, split: str, q_emb, q_ids, d_emb, d_ids, depth: int = 1000) -> Run:
    """Search a collection's split as the paper does: its candidates, its shared pool, or the whole corpus."""
    cands = collection.candidates(split)
    pool = collection.pool(split)
    if pool is not None and cands is None:
        row = {str(i): n for n, i in enumerate(d_ids)}
        missing = [p for p in pool if p not in row]
        if missing:
            raise MergeirError(f"pool document '{missing[0]}' of split '{split}' has no document embedding")
        keep = [row[p] for p in pool]
        d_emb, d_ids = np.asarray(d_emb)[keep], pool
    return search(q_emb, q_ids, d_emb, d_ids, depth=depth, candidates=cands)
