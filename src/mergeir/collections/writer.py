"""Writing the collection layout (layout.py) from ids and texts in memory; what is written is loaded back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import MergeirError
from ..io import dumps_json, sha256_file
from .layout import COLLECTION_JSON, Collection, data_files, load_collection


def _tsv_line(*cols: str) -> str:
    for c in cols:
        if "\t" in c or "\n" in c:
            raise MergeirError(f"id {c!r} contains a tab or newline")
    return "\t".join(cols) + "\n"


def write_collection(
    out: str | os.PathLike,
    *,
    corpus: Mapping[str, Mapping[str, str]],
    queries: Mapping[str, str],
    qrels: Mapping[str, Iterable[tuple[str, str, int]] | Mapping[str, Mapping[str, int]]],
    candidates: Mapping[str, Mapping[str, list[str]]] | None = None,
    name: str,
    language: str | None = None,
    query_instruction: str | None = None,
    use_titles: bool = True,
    eval_split: str = "test",
    train_split: str | None = None,
    source: Any = None,
    pools: Mapping[str, str] | None = None,
) -> Collection:
    """Write the layout into the (existing, empty) folder `out`, then load it back to validate it.

    Callers wanting atomicity pass a folder from `mergeir.io.atomic_dir`. qrels per split are either rows
    (query, doc, score) in file order or {query: {doc: score}}.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
        for i, d in corpus.items():
            row = {"_id": i, "title": d.get("title", "") or "", "text": d["text"]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
        for i, t in queries.items():
            f.write(json.dumps({"_id": i, "text": t}, ensure_ascii=False) + "\n")
    (out / "qrels").mkdir(exist_ok=True)
    for split, rows in qrels.items():
        if isinstance(rows, Mapping):
            rows = [(q, d, s) for q, ds in rows.items() for d, s in ds.items()]
        with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for q, d, s in rows:
                f.write(_tsv_line(str(q), str(d), str(int(s))))
    if candidates:
        (out / "candidates").mkdir(exist_ok=True)
        for split, cands in candidates.items():
            with open(out / "candidates" / f"{split}.tsv", "w", encoding="utf-8") as f:
                f.write("query-id\tcorpus-id\n")
                for q, ds in cands.items():
                    for d in ds:
                        f.write(_tsv_line(str(q), str(d)))
    meta = {
        "name": name,
        "language": language,
        "splits": list(qrels),
        "eval_split": eval_split,
        "train_split": train_split,
        "query_instruction": query_instruction,
        "use_titles": use_titles,
        "source": source,
        "checksums": {rel: sha256_file(out / rel) for rel in data_files(out)},
    }
    if pools:
        meta["pools"] = dict(pools)
    empty = sum(1 for d in corpus.values() if not ((d.get("title") or "") + (d["text"] or "")).strip())
    if empty:
        meta["empty_documents"] = empty
    (out / COLLECTION_JSON).write_text(dumps_json(meta), encoding="utf-8")
    return load_collection(out)
