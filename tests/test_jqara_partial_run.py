"""The JQaRA metric when the run is shorter than the candidate list (a `--depth` below 100): candidates cut from
the run rank below every ranked one, as scikit-learn's `ndcg_score` scores them when given one score below all
others (tied among themselves, so their gains are averaged)."""

import json

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from helpers_cli import run_bin
from helpers_collections import UPSTREAM, random_embeddings
from mergeir.collections import prepare_collection
from mergeir.evaluation import JQARA_KEY, evaluate, jqara_ndcg


def _sklearn_cut(run_q: dict, cands: list, qrels_q: dict, above: bool = False) -> float:
    """ndcg_score(k=10) with every candidate missing from the run scored below the lowest ranked one (`above`:
    above the highest, the bug this file guards against; used to show each case tells the two apart)."""
    floor = max(run_q.values()) + 1.0 if above else min(run_q.values()) - 1.0
    scores = [run_q.get(d, floor) for d in cands]
    labels = [qrels_q.get(d, 0) for d in cands]
    return float(ndcg_score([labels], [scores], k=10))


def _cut(full: dict, depth: int) -> dict:
    return dict(sorted(full.items(), key=lambda kv: (-kv[1], kv[0]))[:depth])


@pytest.mark.parametrize("depth", [3, 8, 30])
def test_cut_candidates_rank_below_the_ranked_ones(depth):
    """100 candidates per question, the run keeps the top `depth`; relevant candidates are placed both inside and
    outside the cut, so ranking the missing ones anywhere but last changes the value."""
    rng = np.random.default_rng(depth)
    run, qrels, cands, ref, wrong = {}, {}, {}, {}, {}
    for i in range(30):
        qid, docs = f"q{i}", [f"p{i}_{j:03d}" for j in range(100)]
        scores = rng.normal(size=100)  # some negative: the floor must go below them too
        order = np.argsort(-scores)
        labels = np.zeros(100, int)
        labels[order[rng.integers(0, depth)]] = 1                    # one relevant inside the cut
        labels[order[rng.integers(depth, 100, size=3)]] = rng.integers(1, 3, size=3)  # graded ones outside it
        cands[qid] = docs
        run[qid] = _cut(dict(zip(docs, scores.tolist())), depth)
        qrels[qid] = {d: int(g) for d, g in zip(docs, labels) if g > 0}
        ref[qid] = _sklearn_cut(run[qid], docs, qrels[qid])
        wrong[qid] = _sklearn_cut(run[qid], docs, qrels[qid], above=True)
    assert sum(abs(ref[q] - wrong[q]) > 1e-3 for q in ref) >= 20
    got = jqara_ndcg(run, qrels, cands)
    assert got == pytest.approx(ref, abs=1e-12)
    m = evaluate(run, qrels, candidates=cands)
    assert m["mean"][JQARA_KEY] == pytest.approx(np.mean(list(ref.values())), abs=1e-12)
    assert {q: v[JQARA_KEY] for q, v in m["per_query"].items()} == pytest.approx(ref, abs=1e-12)


def test_question_missing_from_the_run_scores_as_all_tied():
    """No ranked candidate at all: every candidate shares one score, sklearn averages the gains over all ranks."""
    cands = {"q": [f"d{j}" for j in range(20)]}
    qrels = {"q": {"d3": 1, "d15": 2}}
    labels = [qrels["q"].get(d, 0) for d in cands["q"]]
    assert jqara_ndcg({}, qrels, cands)["q"] == pytest.approx(ndcg_score([labels], [[0.0] * 20], k=10), abs=1e-12)


def test_cli_depth_below_the_candidates(tmp_path):
    """bin/evaluate.py --depth 2 cuts each question's 4 candidates: run.trec holds 2 per question and
    metrics.json's jqara_ndcg@10 equals sklearn on the full list with the cut candidates scored last."""
    depth = 2
    c = prepare_collection("jqara", tmp_path / "jq", source=str(UPSTREAM / "jqara" / "test.jsonl"))
    emb = random_embeddings(tmp_path / "emb", c, seed=11)
    out = tmp_path / "res"
    run_bin("evaluate.py", "--embeddings", emb, "--collection", c.root, "--out", out, "--depth", depth, check=True)
    m = json.loads((out / "metrics.json").read_text())
    q, d = np.load(emb / "queries.npy"), np.load(emb / "corpus.npy")
    qrow = {x: i for i, x in enumerate((emb / "queries.ids").read_text().split())}
    drow = {x: i for i, x in enumerate((emb / "corpus.ids").read_text().split())}
    qrels, ref, wrong = c.qrels("test"), {}, {}
    for qid, docs in c.candidates("test").items():
        full = {x: float(d[drow[x]] @ q[qrow[qid]]) for x in docs}
        ranked = _cut(full, depth)
        ref[qid] = _sklearn_cut(ranked, docs, qrels.get(qid, {}))
        wrong[qid] = _sklearn_cut(ranked, docs, qrels.get(qid, {}), above=True)
    assert ref != pytest.approx(wrong, abs=1e-3)  # these embeddings cut a relevant candidate
    lines = (out / "run.trec").read_text().splitlines()
    assert len(lines) == depth * len(ref)
    assert {k: v[JQARA_KEY] for k, v in m["per_query"].items()} == pytest.approx(ref, abs=1e-6)
    assert m["mean"][JQARA_KEY] == pytest.approx(np.mean(list(ref.values())), abs=1e-6)
