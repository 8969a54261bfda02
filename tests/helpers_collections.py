"""Builders for the collection/evaluation tests: upstream packages from tests/fixtures/upstream, embeddings."""

import gzip
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np

UPSTREAM = Path(__file__).resolve().parent / "fixtures" / "upstream"


def beir_zip(tmp: Path, name: str = "scifact") -> Path:
    """A zip laid out like BEIR's release: `<name>/`, `<name>/corpus.jsonl`, `<name>/qrels/test.tsv`, ..."""
    src = UPSTREAM / "beir" / name
    out = tmp / f"{name}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{name}/", "")
        z.writestr(f"{name}/qrels/", "")
        for p in sorted(src.rglob("*")):
            if p.is_file():
                z.write(p, f"{name}/{p.relative_to(src)}")
    return out


def miracl_tree(tmp: Path, train: bool = True) -> Path:
    """MIRACL's two HF repos side by side, corpus shards gzipped as upstream ships them."""
    out = tmp / "miracl"
    shutil.copytree(UPSTREAM / "miracl" / "miracl-v1.0-ja", out / "miracl-v1.0-ja")
    if not train:
        for p in (out / "miracl-v1.0-ja").rglob("*-train.tsv"):
            p.unlink()
    (out / "miracl-corpus-v1.0-ja").mkdir(parents=True)
    for p in sorted((UPSTREAM / "miracl" / "miracl-corpus-v1.0-ja").glob("docs-*.jsonl")):
        with gzip.open(out / "miracl-corpus-v1.0-ja" / (p.name + ".gz"), "wb") as f:
            f.write(p.read_bytes())
    return out


def jqara_rows() -> list[dict]:
    return [json.loads(line) for line in (UPSTREAM / "jqara" / "test.jsonl").read_text(encoding="utf-8").splitlines()]


def jqara_hub(tmp: Path) -> Path:
    """The HF hub snapshot layout: data/test-00000-of-00001.parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp / "JQaRA"
    (out / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(jqara_rows()), out / "data" / "test-00000-of-00001.parquet")
    return out


def random_embeddings(out: Path, collection, dim: int = 8, seed: int = 0, split: str | None = None,
                      ties: bool = False) -> Path:
    """An embeddings folder as encode.py writes it, with random unit vectors (for search/evaluate tests).

    ties=True gives documents pairwise-identical vectors so ranking ties occur."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    qids, dids = list(collection.queries), list(collection.corpus)
    q = rng.standard_normal((len(qids), dim)).astype(np.float32)
    d = rng.standard_normal((len(dids), dim)).astype(np.float32)
    if ties:
        d[1::2] = d[0::2][: len(d[1::2])]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    np.save(out / "queries.npy", q, allow_pickle=False)
    np.save(out / "corpus.npy", d, allow_pickle=False)
    (out / "queries.ids").write_text("".join(f"{i}\n" for i in qids), encoding="utf-8")
    (out / "corpus.ids").write_text("".join(f"{i}\n" for i in dids), encoding="utf-8")
    meta = {"collection": collection.name, "collection_checksum": collection.checksum, "n_queries": len(qids),
            "n_corpus": len(dids), "split": split or collection.eval_split, "pooling": "random"}
    (out / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return out
