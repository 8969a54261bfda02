"""Collections: the layout's validation, checksums, and the loaders on upstream-format fixtures."""

import json
import shutil
from pathlib import Path

import pytest

from helpers_cli import assert_one_error, run_bin
from helpers_collections import UPSTREAM, beir_zip, jqara_hub, jqara_rows, miracl_tree
from mergeir.collections import BEIR_MD5, PRESETS, load_collection, prepare_collection, write_collection
from mergeir.errors import MergeirError
from mergeir.io import md5_file


def copy(src: Path, tmp: Path) -> Path:
    dst = tmp / src.name
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------- the layout


def test_plain_beir_folder_gets_documented_defaults(tiny_beir):
    c = load_collection(tiny_beir)
    assert (c.name, c.use_titles, c.query_instruction, c.eval_split, c.train_split) == (
        "tiny-beir", True, None, "test", "train")
    assert c.splits == ["test", "train"] and c.candidates("test") is None and c.pool("test") is None
    first = json.loads((tiny_beir / "corpus.jsonl").read_text().splitlines()[0])
    assert c.doc_text(first["_id"]) == first["title"] + " " + first["text"]
    rows = [ln.split("\t") for ln in (tiny_beir / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    qrels = c.qrels("test")
    assert sum(len(v) for v in qrels.values()) == len(rows)
    assert all(qrels[q][d] == int(s) for q, d, s in rows)
    assert c.query_ids("test") == list(dict.fromkeys(r[0] for r in rows))


def test_no_train_split_without_train_qrels(tiny_beir, tmp_path):
    c = copy(tiny_beir, tmp_path)
    (c / "qrels" / "train.tsv").unlink()
    assert load_collection(c).train_split is None


def test_checksum_is_stable_and_tracks_content(tiny_beir, tmp_path):
    c = copy(tiny_beir, tmp_path)
    a = load_collection(c).checksum
    assert a == load_collection(tiny_beir).checksum and len(a) == 64
    with open(c / "qrels" / "test.tsv", "a") as f:
        f.write("q00\td01\t2\n")
    assert load_collection(c).checksum != a


def test_drop_first_drops_exactly_the_first_judgment(tiny_beir):
    c = load_collection(tiny_beir)
    q, d, _ = (tiny_beir / "qrels" / "test.tsv").read_text().splitlines()[1].split("\t")
    full, dropped = c.qrels("test"), c.qrels("test", drop_first=True)
    assert d in full[q] and d not in dropped.get(q, {})
    assert sum(map(len, full.values())) - 1 == sum(map(len, dropped.values()))


def test_write_collection_round_trip(tmp_path):
    c = write_collection(
        tmp_path / "c", corpus={"d1": {"title": "T", "text": "one"}, "d2": {"title": "", "text": "two"}},
        queries={"q1": "first?", "q2": "second?"}, qrels={"test": [("q1", "d2", 2), ("q2", "d1", 0)]},
        candidates={"test": {"q1": ["d2", "d1"], "q2": ["d1", "d2"]}}, name="mini", language="en",
        query_instruction="Find it", use_titles=False)
    assert c.qrels("test") == {"q1": {"d2": 2}, "q2": {"d1": 0}}
    assert c.candidates("test") == {"q1": ["d2", "d1"], "q2": ["d1", "d2"]}
    assert (c.name, c.query_instruction, c.doc_text("d1"), c.language) == ("mini", "Find it", "one", "en")
    meta = json.loads((tmp_path / "c" / "collection.json").read_text())
    assert set(meta["checksums"]) == {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "candidates/test.tsv"}


def _bad(tmp_path, tiny_beir, edit):
    c = copy(tiny_beir, tmp_path)
    edit(c)
    return c


def _append(path, text):
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


BAD = {
    "malformed": (lambda c: _append(c / "corpus.jsonl", '{"_id": "zz", "text": \n'), "corpus.jsonl:49: malformed"),
    "dup_doc": (lambda c: _append(c / "corpus.jsonl", '{"_id": "d00", "title": "", "text": "x"}\n'),
                "duplicate document id 'd00'"),
    "dup_query": (lambda c: _append(c / "queries.jsonl", '{"_id": "q01", "text": "x"}\n'), "duplicate query id 'q01'"),
    # (a document with an empty title and text is accepted: tests/test_bad_input_accepted.py)
    "not_utf8": (lambda c: open(c / "corpus.jsonl", "ab").write(b'{"_id": "d99", "text": "caf\xe9"}\n'),
                 "corpus.jsonl:49: not UTF-8 text (byte 0xe9"),
    "empty_query": (lambda c: _append(c / "queries.jsonl", '{"_id": "q99", "text": ""}\n'),
                    "query 'q99' has an empty text"),
    "qrels_doc": (lambda c: _append(c / "qrels" / "test.tsv", "q00\tnope\t1\n"), "document id 'nope' is not in"),
    "qrels_query": (lambda c: _append(c / "qrels" / "test.tsv", "qX\td00\t1\n"), "query id 'qX' is not in"),
    "qrels_score": (lambda c: _append(c / "qrels" / "test.tsv", "q00\td00\thigh\n"), "is not an integer"),
    "missing_corpus": (lambda c: (c / "corpus.jsonl").unlink(), "missing corpus.jsonl"),
    "missing_qrels": (lambda c: shutil.rmtree(c / "qrels"), "missing qrels"),
    "cand_doc": (lambda c: ((c / "candidates").mkdir(), (c / "candidates" / "test.tsv").write_text(
        "query-id\tcorpus-id\nq02\tghost\n")), "document id 'ghost' is not in"),
    "cand_missing_query": (lambda c: ((c / "candidates").mkdir(), (c / "candidates" / "test.tsv").write_text(
        "query-id\tcorpus-id\nq02\td00\n")), "has no candidates"),
    "bad_meta_key": (lambda c: (c / "collection.json").write_text('{"use_title": false}'), "unknown key(s) use_title"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_collection_raises_naming_the_fault(case, tiny_beir, tmp_path):
    edit, fragment = BAD[case]
    c = _bad(tmp_path, tiny_beir, edit)
    with pytest.raises(MergeirError) as e:
        load_collection(c)
    assert fragment in str(e.value)


def test_collection_json_checksums_catch_edited_files(tiny_beir, tmp_path):
    c = prepare_collection(f"beir:{tiny_beir}", tmp_path / "c")
    _append(c.root / "queries.jsonl", '{"_id": "q77", "text": "new"}\n')
    with pytest.raises(MergeirError, match="queries.jsonl: contents changed"):
        load_collection(c.root)


@pytest.mark.parametrize("case", ["malformed", "dup_doc", "not_utf8", "qrels_doc", "missing_corpus", "cand_doc"])
def test_cli_bad_collection_one_error_line_nothing_written(case, tiny_beir, tmp_path):
    edit, fragment = BAD[case]
    bad = _bad(tmp_path, tiny_beir, edit)
    out = tmp_path / "out" / "coll"
    p = run_bin("download.py", "collection", f"beir:{bad}", "--out", out)
    assert_one_error(p, fragment)
    assert p.returncode == 2 and not out.exists() and list((tmp_path / "out").iterdir()) == []


def test_cli_unwritable_out(tiny_beir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    p = run_bin("download.py", "collection", f"beir:{tiny_beir}", "--out", blocker / "c")
    assert_one_error(p, str(blocker))


def test_cli_unknown_collection(tmp_path):
    assert_one_error(run_bin("download.py", "collection", "msmarco", "--out", tmp_path / "c"), "unknown collection")
    assert not (tmp_path / "c").exists()


# ---------------------------------------------------------------- loaders


def test_beir_local_keeps_data_and_defaults(tiny_beir, tmp_path):
    c = prepare_collection(f"beir:{tiny_beir}", tmp_path / "c")
    orig = load_collection(tiny_beir)
    assert c.corpus == orig.corpus and c.queries == orig.queries and c.qrels("test") == orig.qrels("test")
    assert (c.name, c.use_titles, c.query_instruction, c.train_split) == ("tiny-beir", True, None, "train")
    for f in ("qrels/test.tsv", "qrels/train.tsv"):  # judgments are copied byte for byte
        assert (c.root / f).read_bytes() == (tiny_beir / f).read_bytes()


def test_scifact_zip_md5_is_checked(tmp_path):
    z = beir_zip(tmp_path)
    out = tmp_path / "out" / "scifact"
    with pytest.raises(MergeirError, match=f"md5 {md5_file(z)} differs from BEIR's published {BEIR_MD5['scifact']}"):
        prepare_collection("scifact", out, source=str(z))
    assert not out.exists()
    p = run_bin("download.py", "collection", "scifact", "--out", out, "--source", z)
    assert_one_error(p, "--no-check-md5")
    assert not out.exists()


def test_scifact_from_beir_zip(tmp_path):
    z = beir_zip(tmp_path)
    p = run_bin("download.py", "collection", "scifact", "--out", tmp_path / "sf", "--source", z, "--no-check-md5",
                check=True)
    assert "6 documents, 4 queries" in p.stdout
    c = load_collection(tmp_path / "sf")
    src = UPSTREAM / "beir" / "scifact"
    upstream = [json.loads(line) for line in (src / "corpus.jsonl").read_text().splitlines()]
    assert c.corpus == {d["_id"]: {"title": d["title"], "text": d["text"]} for d in upstream}
    assert "metadata" not in (c.root / "corpus.jsonl").read_text()
    assert c.query_instruction == PRESETS["scifact"]["query_instruction"]
    assert (c.language, c.use_titles, c.eval_split, c.train_split) == ("en", True, "test", "train")
    assert (c.root / "qrels" / "test.tsv").read_bytes() == (src / "qrels" / "test.tsv").read_bytes()
    meta = json.loads((c.root / "collection.json").read_text())
    assert meta["source"]["md5"] == md5_file(z) and meta["source"]["md5_checked"] is False
    assert meta["source"]["tools"]["pytrec_eval"]


def test_scifact_from_extracted_folder_matches_zip(tmp_path):
    a = prepare_collection("scifact", tmp_path / "a", source=str(UPSTREAM / "beir"))  # folder holding scifact/
    b = prepare_collection("scifact", tmp_path / "b", source=str(beir_zip(tmp_path)), check_md5=False)
    assert a.checksum == b.checksum


def test_miracl_ja_judged_passages_only(tmp_path):
    src = miracl_tree(tmp_path, train=False)
    c = prepare_collection("miracl-ja", tmp_path / "m", source=str(src))
    dev = (UPSTREAM / "miracl" / "miracl-v1.0-ja" / "qrels" / "qrels.miracl-v1.0-ja-dev.tsv").read_text().split("\n")
    rows = [ln.split("\t") for ln in dev if ln]
    assert list(c.corpus) == list(dict.fromkeys(r[2] for r in rows))  # judged only, rel 0 included
    assert "1#0" not in c.corpus and "9002#0" not in c.corpus
    assert c.corpus["102#0"] == {"title": "", "text": "北海道の面積は約8万3千平方キロメートルで、都道府県の中で最も広い。"}
    assert c.doc_text("102#0") == c.corpus["102#0"]["text"]
    assert c.queries == {"3": "北海道の面積はどれくらい？", "13": "日本で一番高い山は？", "29": "織田信長が亡くなった年は？"}
    assert (c.eval_split, c.train_split, c.use_titles, c.language) == ("dev", None, False, "ja")
    assert c.query_instruction == "Given a question, retrieve Wikipedia passages that answer the question"
    got = [ln.split("\t") for ln in (c.root / "qrels" / "dev.tsv").read_text().splitlines()[1:]]
    assert got == [[r[0], r[2], r[3]] for r in rows]  # upstream order kept: --drop-first-qrel drops the same row
    assert c.pool("dev") == list(c.corpus)


def test_miracl_ja_with_train_keeps_the_dev_pool(tmp_path):
    c = prepare_collection("miracl-ja", tmp_path / "m", source=str(miracl_tree(tmp_path)))
    assert c.train_split == "train" and {"888#0", "888#1", "2044#5"} <= set(c.corpus)
    assert "888#0" not in c.pool("dev") and set(c.pool("train")) == {"888#0", "888#1", "2044#0", "2044#5"}
    assert set(c.pool("dev")) == {d for ds in c.qrels("dev").values() for d in ds}


def test_miracl_ja_missing_passage(tmp_path):
    src = miracl_tree(tmp_path, train=False)
    (src / "miracl-corpus-v1.0-ja" / "docs-1.jsonl.gz").unlink()
    out = tmp_path / "out" / "m"
    p = run_bin("download.py", "collection", "miracl-ja", "--out", out, "--source", src)
    assert_one_error(p, "3 judged passages not found", "(first: '2044#0')")
    assert not out.exists()


def test_miracl_ja_malformed_topics(tmp_path):
    src = miracl_tree(tmp_path, train=False)
    t = src / "miracl-v1.0-ja" / "topics" / "topics.miracl-v1.0-ja-dev.tsv"
    _append(t, "no tab here\n")
    with pytest.raises(MergeirError, match=r"topics.miracl-v1.0-ja-dev.tsv:4: expected 'qid<TAB>query'"):
        prepare_collection("miracl-ja", tmp_path / "m", source=str(src))


def _check_jqara(c):
    rows = jqara_rows()
    cands = {}
    for r in rows:
        cands.setdefault(r["q_id"], []).append(r["passage_row_id"])
    assert c.candidates("test") == cands  # every row a candidate, row order kept
    assert c.qrels("test") == {"QA2020-0001": {"p1001": 1, "p1004": 1}, "QA2020-0002": {"p2002": 1}}
    assert c.query_ids("test") == ["QA2020-0001", "QA2020-0002", "QA2020-0003"]
    assert len(c.corpus) == len({r["passage_row_id"] for r in rows}) == 10
    assert all(d["title"] == "" for d in c.corpus.values()) and c.use_titles is False
    assert c.corpus["p2002"]["text"] == "金閣寺は京都市北区にある寺院である。"
    assert c.queries["QA2020-0002"] == "金閣寺がある都市は？"


def test_jqara_from_jsonl_and_parquet(tmp_path):
    a = prepare_collection("jqara", tmp_path / "a", source=str(UPSTREAM / "jqara" / "test.jsonl"))
    _check_jqara(a)
    pytest.importorskip("pyarrow")
    b = prepare_collection("jqara", tmp_path / "b", source=str(jqara_hub(tmp_path)))
    _check_jqara(b)
    assert a.checksum == b.checksum


def test_jqara_from_datasets_save_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    d = datasets.DatasetDict({"test": datasets.Dataset.from_list(jqara_rows())})
    d.save_to_disk(str(tmp_path / "saved"))
    _check_jqara(prepare_collection("jqara", tmp_path / "c", source=str(tmp_path / "saved")))


def test_jqara_conflicting_passage_text(tmp_path):
    rows = jqara_rows()
    rows[-1]["passage_row_id"] = "p1001"  # same id, other text
    src = tmp_path / "test.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    p = run_bin("download.py", "collection", "jqara", "--out", tmp_path / "c", "--source", src)
    assert_one_error(p, f"{src}:{len(rows)}", "passage 'p1001' has two different texts")
    assert not (tmp_path / "c").exists()


def test_cli_model_copies_a_local_source_with_provenance(tmp_path):
    from mergeir.models import build_mistral

    build_mistral(tmp_path / "src", seed=0, layout="model", num_hidden_layers=2)
    out = tmp_path / "m"
    p = run_bin("download.py", "model", "mergeir/tiny", "--revision", "seed-0", "--out", out, "--source",
                tmp_path / "src", check=True)
    assert "mergeir/tiny@seed-0" in p.stdout
    prov = json.loads((out / "provenance.json").read_text())
    assert (prov["repo_id"], prov["revision"]) == ("mergeir/tiny", "seed-0")
    weights = (out / "model.safetensors").read_bytes()
    assert weights == (tmp_path / "src" / "model.safetensors").read_bytes()
    p = run_bin("download.py", "model", "mergeir/tiny", "--revision", "x", "--out", tmp_path / "m2",
                "--source", tmp_path / "nope")
    assert_one_error(p, "nope")
    assert not (tmp_path / "m2").exists()
