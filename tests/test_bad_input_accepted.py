"""Bad input class 5: correct inputs that used to be refused are accepted, with the same results as their
plain form: documents with an empty title and text (encoded as special tokens only, counted as a warning), a
UTF-8 byte-order mark, float64 embeddings from another tool, older outputs without the newer fields."""

import json
import shutil

import numpy as np
import pytest

from helpers_bad_input import Snapshot, assert_ok, assert_refused, cli, make_world, stderr_lines


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory, "accepted", "results")


def _with_empty_docs(world, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(world.collection, src)
    with open(src / "corpus.jsonl", "a", encoding="utf-8") as f:
        f.write('{"_id": "e1", "title": "", "text": ""}\n{"_id": "e2", "text": "  "}\n')
    return src


def test_documents_with_empty_title_and_text_are_accepted_and_counted(world, tmp_path):
    from helpers_training import embed_one
    from mergeir.encoding import load_encoder, read_embeddings

    coll = tmp_path / "coll"
    assert_ok(cli("download.py", "collection", f"beir:{_with_empty_docs(world, tmp_path)}", "--out", coll))
    assert json.loads((coll / "collection.json").read_text())["empty_documents"] == 2
    p = cli("encode.py", "--model", world.models["source"], "--collection", coll, "--out", tmp_path / "emb",
            "--device", "cpu", "--no-progress", "--max-length", "64")
    assert_ok(p)
    assert [ln for ln in stderr_lines(p.stderr) if ln.startswith("warning: 2 documents")], p.stderr
    emb = read_embeddings(tmp_path / "emb")
    assert emb.meta["n_empty_documents"] == 2
    model, tok = load_encoder(world.models["source"])
    expected = np.array(embed_one(model, tok, ""), dtype=np.float32)  # BOS + EOS alone, pooled at EOS
    for d in ("e1", "e2"):
        np.testing.assert_allclose(emb.corpus[emb.corpus_ids.index(d)], expected, atol=1e-5)
    assert_ok(cli("evaluate.py", "--embeddings", tmp_path / "emb", "--collection", coll, "--out", tmp_path / "res"))


def test_an_empty_query_is_still_refused(world, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(world.collection, src)
    with open(src / "queries.jsonl", "a", encoding="utf-8") as f:
        f.write('{"_id": "q99", "text": " "}\n')
    snap = Snapshot(world.root, tmp_path)
    assert_refused(cli("download.py", "collection", f"beir:{src}", "--out", tmp_path / "coll"),
                   f"{src / 'queries.jsonl'}:", "query 'q99' has an empty text", snapshot=snap)


def test_a_byte_order_mark_is_accepted(world, tmp_path):
    from mergeir.collections import load_collection

    src = tmp_path / "src"
    shutil.copytree(world.collection, src)
    (src / "collection.json").write_text(json.dumps({"name": "tiny", "use_titles": True}))
    for rel in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "qrels/train.tsv", "collection.json"):
        (src / rel).write_bytes(b"\xef\xbb\xbf" + (src / rel).read_bytes())
    assert_ok(cli("download.py", "collection", f"beir:{src}", "--out", tmp_path / "coll"))
    plain, bom = load_collection(world.collection), load_collection(tmp_path / "coll")
    assert (bom.corpus, bom.queries, bom.name) == (plain.corpus, plain.queries, "tiny")
    assert all(bom.qrels(s) == plain.qrels(s) for s in ("test", "train"))

    row = {"query_id": "q1", "query": "a query", "positive_passages": [{"docid": "d", "text": "x"}]}
    train = tmp_path / "train.jsonl"
    train.write_bytes(b"\xef\xbb\xbf" + json.dumps(row).encode() + b"\n")
    assert_ok(cli("prepare_training.py", "trials", "--train", train, "--out", tmp_path / "t", "--trials", "1",
                  "--queries", "1"))
    assert json.loads((tmp_path / "t" / "trials.json").read_text())["trials"][0]["query_ids"] == ["q1"]


def test_float64_embeddings_score_exactly_like_float32(world, tmp_path):
    emb = tmp_path / "emb64"
    shutil.copytree(world.embeddings, emb)
    for name in ("queries.npy", "corpus.npy"):
        np.save(emb / name, np.load(emb / name).astype(np.float64))
    assert_ok(cli("evaluate.py", "--embeddings", emb, "--collection", world.collection, "--out", tmp_path / "res"))
    got = json.loads((tmp_path / "res" / "metrics.json").read_text())
    want = json.loads((world.results / "metrics.json").read_text())
    assert (got["mean"], got["per_query"]) == (want["mean"], want["per_query"])
    assert (tmp_path / "res" / "run.trec").read_bytes() == (world.results / "run.trec").read_bytes()


def test_float64_embeddings_with_nan_are_still_refused(world, tmp_path):
    emb = tmp_path / "emb64"
    shutil.copytree(world.embeddings, emb)
    corpus = np.load(emb / "corpus.npy").astype(np.float64)
    corpus[3, 1] = np.nan
    np.save(emb / "corpus.npy", corpus)
    snap = Snapshot(world.root, tmp_path)
    assert_refused(cli("evaluate.py", "--embeddings", emb, "--collection", world.collection, "--out",
                       tmp_path / "res"), str(emb / "corpus.npy"), "NaN", snapshot=snap)


def _without(folder, tmp_path, *path):
    """A copy of an output as an older mergeir wrote it: without the field at `path` in its metrics.json."""
    old = tmp_path / folder.name
    shutil.copytree(folder, old)
    doc = json.loads((old / "metrics.json").read_text())
    node = doc
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    (old / "metrics.json").write_text(json.dumps(doc))
    return old


def test_old_results_without_qrels_identity_are_reported_with_a_warning(world, tmp_path):
    old = _without(world.results, tmp_path, "provenance", "qrels")
    p = cli("report.py", "build", "--results", old, "--out", tmp_path / "report")
    assert_ok(p)
    assert "warning: 1 result(s) do not record their qrels file" in p.stderr


def test_an_older_output_of_the_same_stage_is_still_replaced(world, tmp_path):
    """Outputs written before markers named their stage are recognised by their fields."""
    old = _without(world.results, tmp_path, "stage")
    assert_ok(cli("evaluate.py", "--embeddings", world.embeddings, "--collection", world.collection, "--out", old,
                  "--tag", "arm=again"))
    assert json.loads((old / "metrics.json").read_text())["tags"] == {"arm": "again"}
