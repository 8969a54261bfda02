"""Scoring a run against qrels: pytrec_eval metrics, the authors' JQaRA metric, TREC run files.

Means keep full float precision (BEIR's `EvaluateRetrieval` rounds them to 5 decimals; round when comparing).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..collections import Collection, load_collection
from ..encoding.embeddings import read_embeddings
from ..errors import MergeirError
from ..io import Stage, atomic_dir, atomic_write_text, iter_fields, sha256_file, write_json
from ..provenance import tool_versions
from .retrieval import search_collection

# pytrec_eval measure specs -> the result keys they produce (ndcg_cut.10 -> ndcg_cut_10)
MEASURES = ("ndcg_cut.1,3,5,10,100,1000", "map", "recall.100,1000", "P.10")
JQARA_KEY = "jqara_ndcg@10"
RUN_TAG = "mergeir"
# a results folder's marker: metrics.json names the stage (older ones: the fields every metrics.json has)
EVALUATE_STAGE = Stage("evaluate", "metrics.json", legacy=("per_query", "embeddings_meta", "provenance"))


def _check_run(run: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for q, docs in run.items():
        out[str(q)] = {str(d): float(s) for d, s in docs.items()}
        if not all(math.isfinite(s) for s in out[str(q)].values()):
            raise MergeirError(f"run: query '{q}' has a NaN or infinite score")
    return out


def evaluate(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    candidates: Mapping[str, Sequence[str]] | None = None,
    measures: Sequence[str] = MEASURES,
) -> dict:
    """{"mean": {metric: value}, "per_query": {qid: {metric: value}}} from pytrec_eval (+ JQaRA metric).

    Every judged query counts: one missing from the run scores 0 (trec_eval -c), so an incomplete run can
    not look better than it is. With `candidates`, `jqara_ndcg@10` is added for each question with candidates.
    BEIR's `ignore_identical_ids` (dropping a document whose id equals the query id) is not applied: no
    collection of the paper shares ids between queries and documents.
    """
    import pytrec_eval

    run = _check_run(run)
    qrels = {str(q): {str(d): int(s) for d, s in ds.items()} for q, ds in qrels.items()}
    if not qrels:
        raise MergeirError("qrels are empty: nothing to evaluate")
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, set(measures))
    per_query: dict[str, dict[str, float]] = evaluator.evaluate(run)
    keys = sorted({k for v in per_query.values() for k in v}) or _measure_keys(evaluator, qrels)
    for q in qrels:
        if q not in per_query:
            per_query[q] = {k: 0.0 for k in keys}
    if candidates is not None:
        for q, v in jqara_ndcg(run, qrels, candidates).items():
            per_query.setdefault(q, {})[JQARA_KEY] = v
    per_query = {q: per_query[q] for q in sorted(per_query)}
    mean = {}
    for k in sorted({k for v in per_query.values() for k in v}):
        vals = [v[k] for v in per_query.values() if k in v]
        mean[k] = math.fsum(vals) / len(vals)
    return {"mean": mean, "per_query": per_query}


def _measure_keys(evaluator, qrels) -> list[str]:
    # an empty run yields no keys: evaluate one dummy ranking to learn the names
    q = next(iter(qrels))
    return sorted(evaluator.evaluate({q: {"\x00": 0.0}})[q])


def jqara_ndcg(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    candidates: Mapping[str, Sequence[str]],
    k: int = 10,
) -> dict[str, float]:
    """The authors' JQaRA metric per question: scikit-learn's `ndcg_score(k=10)` over its candidates.

    Linear gains (the label), log2 discount, ties in the scores averaged (McSherry & Najork), 0 for a
    question with no relevant candidate. Candidates missing from the run (cut by depth) share one score
    below all others. Re-implemented here with numpy; tests check it against scikit-learn itself.
    """
    out = {}
    for q, cands in candidates.items():
        cands = list(cands)
        if len(cands) < 2:
            raise MergeirError(f"query '{q}': the JQaRA metric needs at least 2 candidates")
        r = run.get(q, {})
        floor = (min(r.values()) - 1.0) if r else 0.0
        scores = np.array([r.get(d, floor) for d in cands], dtype=np.float64)
        gains = np.array([qrels.get(q, {}).get(d, 0) for d in cands], dtype=np.float64)
        if (gains < 0).any():
            raise MergeirError(f"query '{q}': negative relevance labels are not allowed by ndcg_score")
        out[str(q)] = _ndcg_ties(gains, scores, k)
    return out


def _ndcg_ties(gains: np.ndarray, scores: np.ndarray, k: int) -> float:
    disc = np.zeros(len(gains))
    m = min(k, len(gains))
    disc[:m] = 1.0 / np.log2(np.arange(m) + 2)
    ideal = float(np.sort(gains)[::-1] @ disc)
    if ideal == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    s, g = scores[order], gains[order]
    dcg, start = 0.0, 0
    while start < len(s) and start < k:  # walk tie groups; each gets its mean gain at its ranks' discounts
        end = start + 1
        while end < len(s) and s[end] == s[start]:
            end += 1
        dcg += g[start:end].mean() * disc[start:end].sum()
        start = end
    return dcg / ideal


def write_trec(run: Mapping[str, Mapping[str, float]], path: str | os.PathLike, tag: str = RUN_TAG) -> None:
    """TREC run file `qid Q0 docid rank score tag`, ranks in trec_eval's order (score desc, doc id desc)."""
    lines = []
    for q, docs in run.items():
        ranked = sorted(((float(s), str(d)) for d, s in docs.items()), reverse=True)
        for rank, (s, d) in enumerate(ranked, 1):
            lines.append(f"{q} Q0 {d} {rank} {s!r} {tag}\n")
    atomic_write_text(path, "".join(lines))


def read_trec(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """Read a TREC run file back into {qid: {docid: score}}; malformed lines name file:line."""
    path = Path(path)
    if not path.is_file():
        raise MergeirError(f"run file not found: {path}")
    run: dict[str, dict[str, float]] = {}
    for n, (q, _, d, _, s, _) in iter_fields(path, ("qid", "Q0", "docid", "rank", "score", "tag")):
        try:
            score = float(s)
        except ValueError:
            raise MergeirError(f"{path}:{n}: score {s!r} is not a number") from None
        if not math.isfinite(score):
            raise MergeirError(f"{path}:{n}: score {s!r} is not finite")
        if d in run.setdefault(q, {}):
            raise MergeirError(f"{path}:{n}: document '{d}' listed twice for query '{q}'")
        run[q][d] = score
    return run


# ---------------------------------------------------------------- embeddings -> run.trec + metrics.json


def parse_tags(items: Sequence[str]) -> dict:
    """`KEY=VALUE` strings -> dict; numbers/booleans become JSON values (alpha_lower=0.75 -> 0.75)."""
    tags: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MergeirError(f"--tag {item!r}: expected KEY=VALUE")
        if key.strip() in tags:  # the last one would silently win (an arm or alpha recorded wrongly)
            raise MergeirError(f"--tag {item!r}: {key.strip()!r} is given twice")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        if isinstance(parsed, float) and not math.isfinite(parsed):  # json reads NaN, Infinity
            raise MergeirError(f"--tag {item!r}: not a finite number")
        tags[key.strip()] = parsed if isinstance(parsed, (int, float, bool)) else value
    return tags


def qrels_identity(split: str, sha256: str | None, drop_first_qrel: bool, n_judgments: int | None) -> dict:
    """What a result was scored against; equal identities mean the same judgments."""
    return {"split": split, "sha256": sha256, "drop_first_qrel": bool(drop_first_qrel), "n_judgments": n_judgments}


def check_embeddings(emb, collection, split: str, where: str = "embeddings") -> None:
    """Refuse embeddings made for another collection: checksum (when recorded) and ids must match."""
    recorded = emb.meta.get("collection_checksum")
    if recorded is not None and recorded != collection.checksum:
        raise MergeirError(
            f"{where} were made for collection '{emb.meta.get('collection')}' with checksum {str(recorded)[:12]}..., "
            f"not {collection.root} ({collection.checksum[:12]}...)"
        )
    unknown_q = [q for q in emb.query_ids if q not in collection.queries]
    if unknown_q:
        raise MergeirError(f"{where}: query '{unknown_q[0]}' is not in collection {collection.root}")
    unknown_d = [d for d in emb.corpus_ids if d not in collection.corpus]
    if unknown_d:
        raise MergeirError(f"{where}: document '{unknown_d[0]}' is not in collection {collection.root}")
    have_q = set(emb.query_ids)
    # judged queries must be there; a candidates-only question (no relevant candidate) may be absent: its
    # JQaRA nDCG is 0 whatever the ranking, and pytrec_eval never sees it
    missing_q = [q for q in collection.qrels(split) if q not in have_q]
    if missing_q:
        raise MergeirError(f"{where}: no embedding for query '{missing_q[0]}' of split '{split}' "
                           f"({len(missing_q)} missing)")
    cands = collection.candidates(split)
    needed = ({d for ds in cands.values() for d in ds} if cands is not None
              else collection.pool(split) or collection.corpus)
    have_d = set(emb.corpus_ids)
    missing_d = [d for d in needed if d not in have_d]
    if missing_d:
        raise MergeirError(f"{where}: no embedding for document '{missing_d[0]}' ({len(missing_d)} missing)")


def results_record(metrics: Mapping, coll: Collection, collection_root: str | os.PathLike, split: str, *,
                   tags: Mapping | None, embeddings_meta: Mapping, run_path: Path, depth: int, n_queries: int,
                   provenance: Mapping | None = None, **fields) -> dict:
    """The metrics.json of one scored run (evaluate.py's results and the sweep's grid points): `evaluate()`'s
    metrics, what was scored (split, collection, tags, the embeddings' meta) and the provenance every such file
    has; `provenance` adds the writer's own provenance fields, `fields` its own top-level ones."""
    return {
        **metrics,
        "split": split,
        "collection": coll.name,
        "tags": dict(tags or {}),
        "embeddings_meta": embeddings_meta,
        "provenance": {
            "collection_root": str(Path(collection_root).resolve()),
            "collection_checksum": coll.checksum,
            "run_sha256": sha256_file(run_path),
            "depth": depth,
            "n_queries": n_queries,
            "tools": tool_versions(),
            **(provenance or {}),
        },
        **fields,
    }


def evaluate_embeddings(
    embeddings: str | os.PathLike,
    collection: str | os.PathLike,
    out: str | os.PathLike,
    split: str | None = None,
    depth: int = 1000,
    drop_first_qrel: bool = False,
    tags: Mapping | None = None,
    force: bool = False,
) -> dict:
    """Search + score one embeddings folder against its collection; writes `run.trec` and `metrics.json`.

    `provenance.qrels` ({split, sha256 of qrels/<split>.tsv, drop_first_qrel, n_judgments}) and
    `provenance.collection_checksum` identify what was scored: the report refuses a table mixing two."""
    coll = load_collection(collection)
    split = split or coll.eval_split
    emb = read_embeddings(embeddings)
    check_embeddings(emb, coll, split, where=f"embeddings {embeddings}")
    row = {q: i for i, q in enumerate(emb.query_ids)}
    qids = [q for q in coll.query_ids(split) if q in row]
    q_emb = emb.queries[[row[q] for q in qids]]
    run = search_collection(coll, split, q_emb, qids, emb.corpus, emb.corpus_ids, depth=depth)
    cands = coll.candidates(split)
    metrics = evaluate(run, coll.qrels(split, drop_first=drop_first_qrel), candidates=cands)
    qrels_rel = f"qrels/{split}.tsv"
    with atomic_dir(out, stage=EVALUATE_STAGE, inputs={"--embeddings": embeddings, "--collection": collection},
                    force=force) as tmp:
        write_trec(run, tmp / "run.trec")
        ranked = ("each query's candidates" if cands is not None else
                  f"the judged pool of {split}" if coll.pool(split) is not None else "the whole corpus")
        provenance = {
            "collection_checksum_verified": emb.meta.get("collection_checksum") == coll.checksum,
            "qrels": qrels_identity(split, coll.checksums.get(qrels_rel), drop_first_qrel,
                                    sum(map(len, coll.qrels(split, drop_first=drop_first_qrel).values()))),
            "embeddings": str(Path(embeddings).resolve()),
            "embeddings_sha256": {f: sha256_file(Path(embeddings) / f) for f in
                                  ("queries.npy", "corpus.npy", "queries.ids", "corpus.ids", "meta.json")},
            "drop_first_qrel": drop_first_qrel,
            "search": f"faiss IndexFlatIP (exact); ties: doc id descending (trec_eval order); ranked: {ranked}",
        }
        metrics = results_record(metrics, coll, collection, split, tags=tags, embeddings_meta=emb.meta,
                                 run_path=tmp / "run.trec", depth=depth, n_queries=len(qids),
                                 provenance=provenance, stage=EVALUATE_STAGE.name)
        write_json(tmp / "metrics.json", metrics)
    return metrics
