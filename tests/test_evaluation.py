"""Search and scoring: faiss search vs brute force, metrics vs pytrec_eval and scikit-learn, evaluate.py's contract."""

import json
import re
import shutil

import numpy as np
import pytest
import pytrec_eval
from sklearn.metrics import ndcg_score

from helpers_cli import assert_one_error, run_bin
from helpers_collections import UPSTREAM, random_embeddings
from mergeir.collections import load_collection, prepare_collection
from mergeir.errors import MergeirError
from mergeir.evaluation import (MEASURES, evaluate, evaluate_embeddings, jqara_ndcg, parse_tags, read_trec, search,
                                write_trec)

EXPECTED_KEYS = {"ndcg_cut_1", "ndcg_cut_3", "ndcg_cut_5", "ndcg_cut_10", "ndcg_cut_100", "ndcg_cut_1000", "map",
                 "recall_100", "recall_1000", "P_10"}


def unit(rng, n, dim):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(q, qids, d, dids, depth, candidates=None):
    """Independent ranking: every score with numpy, sorted by (score desc, doc id desc) as trec_eval does."""
    run = {}
    for i, qid in enumerate(qids):
        pool = candidates[qid] if candidates else dids
        rows = [dids.index(x) for x in pool]
        s = (d[rows] @ q[i]).astype(np.float32)
        ranked = sorted(zip(s.tolist(), pool), key=lambda t: t[1], reverse=True)  # doc id desc ...
        ranked.sort(key=lambda t: -t[0])  # ... then score desc (stable sort keeps the id order within ties)
        run[qid] = ranked[:depth]
    return run


def test_search_equals_brute_force_with_ties_at_the_cut():
    rng = np.random.default_rng(1)
    d = unit(rng, 300, 16)
    d[100:140] = d[0]  # 41 identical documents: a tie group that straddles depth=20
    q = unit(rng, 6, 16)
    q[0] = d[0]
    qids = [f"q{i}" for i in range(6)]
    dids = [f"d{i:03d}" for i in range(300)]
    for depth in (1, 20, 300, 5000):
        run = search(q, qids, d, dids, depth=depth)
        ref = brute_force(q, qids, d, dids, depth)
        for qid in qids:
            assert list(run[qid]) == [x for _, x in ref[qid]], (depth, qid)
            np.testing.assert_allclose(list(run[qid].values()), [s for s, _ in ref[qid]], rtol=0, atol=1e-6)
    top = list(search(q, qids, d, dids, depth=20)["q0"])
    assert top == sorted(["d000"] + [f"d{i}" for i in range(100, 140)], reverse=True)[:20]


def test_search_honours_candidates():
    rng = np.random.default_rng(2)
    d, q = unit(rng, 50, 8), unit(rng, 3, 8)
    qids, dids = ["a", "b", "c"], [f"d{i}" for i in range(50)]
    cands = {"a": ["d1", "d7", "d9"], "b": [f"d{i}" for i in range(20, 45)], "c": ["d49", "d0"]}
    run = search(q, qids, d, dids, depth=10, candidates=cands)
    ref = brute_force(q, qids, d, dids, 10, cands)
    assert {k: list(v) for k, v in run.items()} == {k: [x for _, x in v] for k, v in ref.items()}
    with pytest.raises(MergeirError, match="query 'a' has no candidates"):
        search(q, qids, d, dids, candidates={"b": ["d1"], "c": ["d2"]})
    with pytest.raises(MergeirError, match="candidate 'zz' of query 'a'"):
        search(q, qids, d, dids, candidates={**cands, "a": ["zz"]})


def test_search_rejects_bad_embeddings():
    rng = np.random.default_rng(3)
    d, q = unit(rng, 5, 4), unit(rng, 2, 4)
    with pytest.raises(MergeirError, match="dimension"):
        search(q, ["a", "b"], unit(rng, 5, 3), list("vwxyz"))
    with pytest.raises(MergeirError, match="ids do not match"):
        search(q, ["a"], d, list("vwxyz"))
    d[2, 1] = np.nan
    with pytest.raises(MergeirError, match="NaN"):
        search(q, ["a", "b"], d, list("vwxyz"))


def test_metrics_equal_pytrec_eval_called_directly(tiny_beir):
    c = load_collection(tiny_beir)
    rng = np.random.default_rng(4)
    q, d = unit(rng, len(c.queries), 8), unit(rng, len(c.corpus), 8)
    qrels = c.qrels("test")
    run = search(q, list(c.queries), d, list(c.corpus), depth=30)
    run = {k: v for k, v in run.items() if k in qrels}
    del run[next(iter(run))]  # a judged query missing from the run counts as 0, not as absent
    got = evaluate(run, qrels)
    ref = pytrec_eval.RelevanceEvaluator(qrels, set(MEASURES)).evaluate(run)
    assert set(got["mean"]) == EXPECTED_KEYS
    missing = next(iter(qrels.keys() - run.keys()))
    assert got["per_query"][missing] == {k: 0.0 for k in EXPECTED_KEYS}
    for qid, m in ref.items():
        assert got["per_query"][qid] == m
    for k in EXPECTED_KEYS:
        assert got["mean"][k] == pytest.approx(sum(m[k] for m in ref.values()) / len(qrels), abs=1e-15)
    assert 0 < got["mean"]["ndcg_cut_10"] < 1


def test_jqara_metric_equals_sklearn_with_ties_and_graded_labels():
    rng = np.random.default_rng(5)
    run, qrels, cands, ref = {}, {}, {}, {}
    for i in range(40):
        qid, docs = f"q{i}", [f"p{i}_{j}" for j in range(25)]
        scores = np.round(rng.random(25), 1)  # 1 decimal: many ties, inside and across the top 10
        labels = rng.choice([0, 0, 0, 1, 2], size=25) if i % 7 else np.zeros(25, int)
        cands[qid] = docs
        run[qid] = dict(zip(docs, scores.tolist()))
        qrels[qid] = {d: int(l) for d, l in zip(docs, labels) if l > 0}
        ref[qid] = ndcg_score([labels], [scores], k=10)
    got = jqara_ndcg(run, qrels, cands)
    for qid in ref:
        assert got[qid] == pytest.approx(ref[qid], abs=1e-12)
    assert got["q0"] == 0.0  # no relevant candidate
    m = evaluate(run, {k: v for k, v in qrels.items() if v}, candidates=cands)
    assert m["mean"]["jqara_ndcg@10"] == pytest.approx(np.mean(list(ref.values())), abs=1e-12)


def test_trec_round_trip_and_bad_lines(tmp_path):
    run = {"q1": {"d1": 0.5, "d2": 0.25000001, "d3": 0.5}, "q2": {"d9": -1.0}}
    write_trec(run, tmp_path / "run.trec")
    lines = (tmp_path / "run.trec").read_text().splitlines()
    assert lines[0] == "q1 Q0 d3 1 0.5 mergeir" and lines[1] == "q1 Q0 d1 2 0.5 mergeir"
    assert read_trec(tmp_path / "run.trec") == run
    (tmp_path / "bad.trec").write_text("q1 Q0 d1 1 0.5 x\nq1 Q0 d2 2 nan? x\n")
    with pytest.raises(MergeirError, match="bad.trec:2: score"):
        read_trec(tmp_path / "bad.trec")


def test_parse_tags():
    assert parse_tags(["arm=merge", "alpha_lower=0.75", "trial=3", "setting=v01"]) == {
        "arm": "merge", "alpha_lower": 0.75, "trial": 3, "setting": "v01"}
    with pytest.raises(MergeirError, match="KEY=VALUE"):
        parse_tags(["novalue"])


# ---------------------------------------------------------------- bin/evaluate.py


def _pytrec_on_file(run_file, qrels):
    run = read_trec(run_file)
    return pytrec_eval.RelevanceEvaluator(qrels, set(MEASURES)).evaluate(run)


def test_cli_evaluate_matches_pytrec_eval_on_its_run(tiny_beir, tmp_path):
    c = load_collection(tiny_beir)
    emb = random_embeddings(tmp_path / "emb", c, seed=7, ties=True)
    out = tmp_path / "res"
    p = run_bin("evaluate.py", "--embeddings", emb, "--collection", tiny_beir, "--out", out, "--depth", "10",
                "--tag", "arm=merge", "--tag", "alpha_upper=1.0", check=True)
    assert "ndcg_cut_10=" in p.stdout
    m = json.loads((out / "metrics.json").read_text())
    ref = _pytrec_on_file(out / "run.trec", c.qrels("test"))
    assert m["per_query"] == ref
    assert m["mean"]["ndcg_cut_10"] == pytest.approx(np.mean([v["ndcg_cut_10"] for v in ref.values()]), abs=1e-15)
    assert m["split"] == "test" and m["collection"] == "tiny-beir" and m["tags"] == {"arm": "merge", "alpha_upper": 1.0}
    assert m["provenance"]["collection_checksum"] == c.checksum and m["provenance"]["depth"] == 10
    assert m["embeddings_meta"]["collection_checksum"] == c.checksum
    run = read_trec(out / "run.trec")
    assert set(run) == set(c.query_ids("test")) and all(len(v) == 10 for v in run.values())
    # same ranking as an independent brute-force search
    q, d = np.load(emb / "queries.npy"), np.load(emb / "corpus.npy")
    qids, dids = list(c.queries), list(c.corpus)
    ref_run = brute_force(q, qids, d, dids, 10)
    assert all(list(run[k]) == [x for _, x in ref_run[k]] for k in run)

    p = run_bin("evaluate.py", "--embeddings", emb, "--collection", tiny_beir, "--out", tmp_path / "res2",
                "--split", "train", "--drop-first-qrel", check=True)
    m2 = json.loads((tmp_path / "res2" / "metrics.json").read_text())
    assert m2["per_query"] == _pytrec_on_file(tmp_path / "res2" / "run.trec", c.qrels("train", drop_first=True))
    assert m2["provenance"]["drop_first_qrel"] is True


def test_cli_evaluate_candidates_reports_jqara_metric(tmp_path):
    c = prepare_collection("jqara", tmp_path / "jq", source=str(UPSTREAM / "jqara" / "test.jsonl"))
    emb = random_embeddings(tmp_path / "emb", c, seed=3)
    run_bin("evaluate.py", "--embeddings", emb, "--collection", c.root, "--out", tmp_path / "res", check=True)
    m = json.loads((tmp_path / "res" / "metrics.json").read_text())
    q, d = np.load(emb / "queries.npy"), np.load(emb / "corpus.npy")
    qrow = {x: i for i, x in enumerate((emb / "queries.ids").read_text().split())}
    drow = {x: i for i, x in enumerate((emb / "corpus.ids").read_text().split())}
    qrels, ref = c.qrels("test"), {}
    for qid, docs in c.candidates("test").items():
        labels = [qrels.get(qid, {}).get(x, 0) for x in docs]
        scores = [float(d[drow[x]] @ q[qrow[qid]]) for x in docs]
        ref[qid] = ndcg_score([labels], [scores], k=10)
    assert {k: v["jqara_ndcg@10"] for k, v in m["per_query"].items()} == pytest.approx(ref, abs=1e-6)
    assert m["mean"]["jqara_ndcg@10"] == pytest.approx(np.mean(list(ref.values())), abs=1e-6)
    run = read_trec(tmp_path / "res" / "run.trec")
    assert {k: set(v) for k, v in run.items()} == {k: set(v) for k, v in c.candidates("test").items()}
    assert m["per_query"]["QA2020-0003"] == {"jqara_ndcg@10": 0.0}  # no relevant candidate: 0, but counted

    # encode.py embeds judged queries only: the question without a relevant candidate may be absent
    qids = (emb / "queries.ids").read_text().split()
    keep = [i for i, x in enumerate(qids) if x != "QA2020-0003"]
    np.save(emb / "queries.npy", q[keep])
    (emb / "queries.ids").write_text("".join(f"{qids[i]}\n" for i in keep))
    meta = json.loads((emb / "meta.json").read_text())
    (emb / "meta.json").write_text(json.dumps({**meta, "n_queries": len(keep)}))
    run_bin("evaluate.py", "--embeddings", emb, "--collection", c.root, "--out", tmp_path / "res2", check=True)
    m2 = json.loads((tmp_path / "res2" / "metrics.json").read_text())
    assert m2["mean"] == m["mean"] and m2["per_query"] == m["per_query"]


def test_cli_evaluate_ranks_only_the_judged_pool(tmp_path):
    from helpers_collections import miracl_tree

    c = prepare_collection("miracl-ja", tmp_path / "m", source=str(miracl_tree(tmp_path)))
    emb = random_embeddings(tmp_path / "emb", c)
    run_bin("evaluate.py", "--embeddings", emb, "--collection", c.root, "--out", tmp_path / "res", check=True)
    run = read_trec(tmp_path / "res" / "run.trec")
    assert set(run) == {"3", "13", "29"}
    assert all(set(v) == set(c.pool("dev")) for v in run.values())  # train passages are not in the dev pool


def _emb_variants(tiny_beir, tmp_path):
    c = load_collection(tiny_beir)
    base = random_embeddings(tmp_path / "base", c)

    def variant(name, edit):
        v = tmp_path / name
        shutil.copytree(base, v)
        edit(v)
        return v

    meta = json.loads((base / "meta.json").read_text())
    qids = list(c.queries)
    drop = qids.index(c.query_ids("test")[0])
    return {
        "other_collection": (variant("oc", lambda v: (v / "meta.json").write_text(
            json.dumps({**meta, "collection": "scifact", "collection_checksum": "ab" * 32}))), "were made for"),
        "missing_query": (variant("mq", lambda v: (
            np.save(v / "queries.npy", np.delete(np.load(v / "queries.npy"), drop, axis=0)),
            (v / "queries.ids").write_text("".join(f"{i}\n" for i in qids[:drop] + qids[drop + 1:])),
            (v / "meta.json").write_text(json.dumps({**meta, "n_queries": len(c.queries) - 1})))),
            "no embedding for query"),
        "unknown_doc": (variant("ud", lambda v: (v / "corpus.ids").write_text(
            (v / "corpus.ids").read_text().replace("d00\n", "x00\n"))), "document 'x00' is not in"),
        "rows_vs_ids": (variant("rv", lambda v: np.save(v / "corpus.npy", np.load(v / "corpus.npy")[:-1])),
                        "rows but corpus.ids has"),
        "missing_file": (variant("mf", lambda v: (v / "corpus.npy").unlink()), "not found"),
        "pickled": (variant("pk", lambda v: np.save(v / "corpus.npy", np.array([{"a": 1}], dtype=object),
                                                    allow_pickle=True)), "corpus.npy"),
    }


def test_evaluate_refuses_bad_embeddings_and_writes_nothing(tiny_beir, tmp_path):
    for case, (emb, fragment) in _emb_variants(tiny_beir, tmp_path).items():
        out = tmp_path / "results" / case
        with pytest.raises(MergeirError, match=re.escape(fragment)):
            evaluate_embeddings(emb, tiny_beir, out)
        assert not out.exists(), case
    with pytest.raises(MergeirError, match="no qrels for split 'dev'"):
        evaluate_embeddings(tmp_path / "base", tiny_beir, tmp_path / "results" / "x", split="dev")
    assert not (tmp_path / "results").exists()  # refused before anything was created


def test_cli_evaluate_bad_inputs_one_error_line(tiny_beir, tmp_path):
    variants = _emb_variants(tiny_beir, tmp_path)
    good = tmp_path / "base"
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    for args, fragment in [
        (["--embeddings", variants["other_collection"][0], "--collection", tiny_beir], "were made for"),
        (["--embeddings", variants["missing_file"][0], "--collection", tiny_beir], "not found"),
        (["--embeddings", good, "--collection", tmp_path / "nope"], "collection folder not found"),
        (["--embeddings", good, "--collection", tiny_beir, "--depth", "0"], "--depth"),
    ]:
        out = tmp_path / "results" / "x"
        p = run_bin("evaluate.py", "--out", out, *args)
        assert_one_error(p, fragment)
        assert p.returncode == 2 and not (tmp_path / "results").exists()
    p = run_bin("evaluate.py", "--embeddings", good, "--collection", tiny_beir, "--out", blocker / "res")
    assert_one_error(p, str(blocker))


@pytest.mark.slow
def test_scifact_ndcg_matches_pytrec_eval_on_real_qrels(scifact, tmp_path):
    """Real SciFact qrels and ids with random embeddings: the full path equals pytrec_eval on our run."""
    c = load_collection(scifact)
    emb = random_embeddings(tmp_path / "emb", c, dim=32)
    run_bin("evaluate.py", "--embeddings", emb, "--collection", scifact, "--out", tmp_path / "r", check=True)
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    ref = _pytrec_on_file(tmp_path / "r" / "run.trec", c.qrels("test"))
    assert len(m["per_query"]) == 300 and m["per_query"] == ref
