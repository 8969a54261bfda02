"""Shared by the CPU benchmarks: a small BEIR collection cut from SciFact (train queries, the documents they judge,
more documents as distractors) and a random Mistral pair with a word-level tokenizer over its texts."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"


def write_subset(scifact: Path, out: Path, n_queries: int, n_docs: int) -> Path:
    """queries.jsonl, corpus.jsonl and qrels/{train,test}.tsv of the first `n_queries` train queries, the
    documents they judge and the corpus' first documents up to `n_docs`."""
    lines = (scifact / "qrels" / "train.tsv").read_text().splitlines()[1:]
    qrels: dict[str, list[str]] = {}
    for ln in lines:
        q, d, _ = ln.split("\t")
        if q in qrels or len(qrels) < n_queries:
            qrels.setdefault(q, []).append(d)
    judged = {d for ds in qrels.values() for d in ds}
    docs = []
    with open(scifact / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            if o["_id"] in judged or len(docs) < n_docs - len(judged):
                docs.append(o)
    queries = [json.loads(ln) for ln in (scifact / "queries.jsonl").read_text().splitlines() if ln.strip()]
    queries = [q for q in queries if q["_id"] in qrels]
    (out / "qrels").mkdir(parents=True)
    (out / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (out / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    head = "query-id\tcorpus-id\tscore\n"
    rows = [f"{q}\t{d}\t1\n" for q, ds in qrels.items() for d in ds]
    (out / "qrels" / "train.tsv").write_text(head + "".join(rows))
    (out / "qrels" / "test.tsv").write_text(head + rows[0])  # the collection needs an evaluation split
    return out


def texts(collection: Path) -> list[str]:
    out = []
    for name in ("corpus.jsonl", "queries.jsonl"):
        for line in (collection / name).read_text(encoding="utf-8").splitlines():
            o = json.loads(line)
            out.append(o.get("title", "") + " " + o["text"])
    return out


def build_pair(root: Path, collection: Path, **shape) -> tuple[Path, Path]:
    """A random MistralModel source and MistralForCausalLM domain (as e5-mistral and BioMistral) sharing a
    word-level tokenizer over the collection's texts."""
    from mergeir.models import build_mistral, build_tokenizer

    tok = build_tokenizer(texts(collection) + ["Instruct: Query:"])
    vocab = 1 << (len(tok) - 1).bit_length()
    build_mistral(root / "source", seed=0, layout="model", vocab_size=vocab, tokenizer=tok, **shape)
    build_mistral(root / "domain", seed=1, layout="causal", vocab_size=vocab, tokenizer=tok, **shape)
    return root / "source", root / "domain"
