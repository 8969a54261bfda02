"""Hard-negative mining on graded judgments: which judged documents are positives, which may be negatives."""

import json
import shutil

from helpers_training import TINY_BEIR, build_tiny_retriever, one_thread


def test_mine_takes_judgments_of_zero_as_non_relevant(tmp_path):
    """Relevance 0 means judged not relevant: never a positive, a negative like any other (k = the corpus)."""
    from mergeir.collections import load_collection
    from mergeir.training.mining import mine_hard_negatives

    shutil.copytree(TINY_BEIR, tmp_path / "coll")
    qrels = tmp_path / "coll" / "qrels" / "train.tsv"
    judged: dict = {}
    for line in qrels.read_text().splitlines()[1:]:
        q, d, score = line.split("\t")
        judged.setdefault(q, {})[d] = int(score)
    corpus = [json.loads(x)["_id"] for x in (TINY_BEIR / "corpus.jsonl").read_text().splitlines() if x.strip()]
    with open(qrels, "a") as f:  # two more judgments per query, both "not relevant"
        for q, docs in judged.items():
            for d in [d for d in corpus if d not in docs][:2]:
                f.write(f"{q}\t{d}\t0\n")
                docs[d] = 0
    with one_thread():
        model = build_tiny_retriever(tmp_path / "model")
        examples, _ = mine_hard_negatives(load_collection(tmp_path / "coll"), model, k=len(corpus), max_length=64)
    assert [e.query_id for e in examples] == list(judged)
    for e in examples:
        relevant = [d for d, score in judged[e.query_id].items() if score > 0]
        assert [p.docid for p in e.positives] == relevant
        assert sorted(p.docid for p in e.negatives) == sorted(set(corpus) - set(relevant))
