"""A collection: the BEIR layout plus optional per-query candidates and a `collection.json`.

Layout (see docs/interfaces.md): `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`, `text`),
`qrels/<split>.tsv` (header; `query-id corpus-id score`), optional `candidates/<split>.tsv` (header;
`query-id corpus-id`: the only documents that query ranks, JQaRA's 100 per question) and optional
`collection.json` (its optional `pools` {split: "judged"} makes that split rank only the documents judged in
its qrels: MIRACL-ja's evaluation pool). Loading validates everything once, so later stages trust ids and texts.
The same file readers, lenient, read upstream BEIR releases (`beir.py`).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..errors import MergeirError
from ..io import iter_jsonl, iter_lines, read_json, sha256_file

COLLECTION_JSON = "collection.json"
MAX_RELEVANCE = 2**31 - 1  # a qrels score: trec_eval's relevance is a C int
_META_KEYS = {
    "name", "language", "splits", "eval_split", "train_split", "query_instruction", "use_titles", "source",
    "checksums", "pools", "empty_documents",
}
# `pools`: {split: "judged"} — that split's queries rank only the documents judged in its qrels (MIRACL-ja's
# evaluation pool, docs/paper.md quirk 3) while the corpus may hold more (e.g. the train split's passages).
_POOL_KINDS = {"judged"}

# a collection file, or a member of an upstream BEIR zip read in place
PathLike = Path | zipfile.Path

Qrels = dict[str, dict[str, int]]


@dataclass
class Collection:
    """A validated collection folder. `corpus` {id: {"title", "text"}}, `queries` {id: text}, in file order."""

    name: str
    root: Path
    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    language: str | None = None
    query_instruction: str | None = None
    use_titles: bool = True
    splits: list[str] = field(default_factory=list)
    eval_split: str = "test"
    train_split: str | None = None
    source: Any = None
    checksums: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 of that file
    pools: dict[str, str] = field(default_factory=dict)
    # documents whose title and text are both empty (real collections have a few): kept, encoded as special
    # tokens only, and reported as a warning by the stages that encode them
    empty_documents: list[str] = field(default_factory=list)
    _qrels: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict, repr=False)
    _candidates: dict[str, dict[str, list[str]]] = field(default_factory=dict, repr=False)

    @property
    def checksum(self) -> str:
        """sha256 over the data files (names + their sha256): what embeddings and metrics point back to."""
        return combined_checksum(self.checksums)

    def doc_text(self, doc_id: str) -> str:
        """The text a document is encoded as: `title + " " + text`, or text only (no title / titles unused)."""
        d = self.corpus[doc_id]
        if self.use_titles and d["title"]:
            return d["title"] + " " + d["text"]
        return d["text"]

    def _split(self, split: str) -> None:
        if split not in self._qrels:
            raise MergeirError(
                f"collection {self.root}: no qrels for split '{split}' (has: {', '.join(self.splits) or 'none'})"
            )

    def qrels(self, split: str, drop_first: bool = False) -> Qrels:
        """{query_id: {doc_id: relevance}}. `drop_first` drops the file's first judgment (docs/paper.md, quirk 1)."""
        self._split(split)
        rows = self._qrels[split][1:] if drop_first else self._qrels[split]
        out: Qrels = {}
        for q, d, s in rows:
            out.setdefault(q, {})[d] = s
        return out

    def candidates(self, split: str) -> dict[str, list[str]] | None:
        """{query_id: [doc_id, ...]} when the split re-ranks per-query candidates, else None."""
        self._split(split)
        return self._candidates.get(split)

    def pool(self, split: str) -> list[str] | None:
        """Document ids a split's queries rank when restricted to a shared pool (`pools` in collection.json)."""
        self._split(split)
        if self.pools.get(split) != "judged":
            return None
        seen: dict[str, None] = {}
        for _, d, _ in self._qrels[split]:
            seen.setdefault(d, None)
        return list(seen)

    def query_ids(self, split: str) -> list[str]:
        """The split's queries: those judged in its qrels, then any with candidates only; first-seen order."""
        self._split(split)
        seen: dict[str, None] = {}
        for q, _, _ in self._qrels[split]:
            seen.setdefault(q, None)
        for q in self._candidates.get(split) or {}:
            seen.setdefault(q, None)
        return list(seen)


def combined_checksum(checksums: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(checksums):
        h.update(f"{rel}\t{checksums[rel]}\n".encode())
    return h.hexdigest()


def data_files(root: Path) -> list[str]:
    files = ["corpus.jsonl", "queries.jsonl"]
    for sub in ("qrels", "candidates"):
        d = root / sub
        if d.is_dir():
            files += sorted(f"{sub}/{p.name}" for p in d.iterdir() if p.suffix == ".tsv" and p.is_file())
    return files


def _str_id(value: Any, path: PathLike, n: int, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MergeirError(f"{path}:{n}: '{key}' must be a string, got {value!r}")
    text = str(value)
    if not text or text != text.strip() or any(c in text for c in "\t\n\r"):
        raise MergeirError(f"{path}:{n}: invalid id {value!r} (empty, or contains whitespace at the ends/tab/newline)")
    return text


def _text(obj: dict, key: str, path: PathLike, n: int, required: bool) -> str:
    if key not in obj or obj[key] is None:
        if required:
            raise MergeirError(f"{path}:{n}: missing '{key}'")
        return ""
    value = obj[key]
    if not isinstance(value, str):
        raise MergeirError(f"{path}:{n}: '{key}' must be a string")
    return value


def read_records(path: PathLike, kind: str, strict: bool = True) -> dict:
    """corpus.jsonl as {id: {"title", "text"}} (`kind` "document") or queries.jsonl as {id: text} ("query").

    `strict` is the layout's own check (load_collection): clean string ids, string titles, non-empty query texts,
    no empty file. Off, an upstream BEIR file (a folder or a zip member) is read as published: ids through str(),
    a missing title as "", other fields (BEIR's `metadata`) dropped; write_collection then checks it strictly.
    """
    records: dict = {}
    first_line: dict[str, int] = {}
    for n, obj in iter_jsonl(path):
        if "_id" not in obj:
            raise MergeirError(f"{path}:{n}: missing '_id'")
        record_id = _str_id(obj["_id"], path, n, "_id") if strict else str(obj["_id"])
        if record_id in records:
            first = f" (first on line {first_line[record_id]})" if strict else ""
            raise MergeirError(f"{path}:{n}: duplicate {kind} id '{record_id}'{first}")
        title = ""
        if kind == "document":
            title = _text(obj, "title", path, n, False)  # missing or null: "" (both modes); else a string
        text = _text(obj, "text", path, n, True) if strict else obj.get("text")
        if not isinstance(text, str):
            raise MergeirError(f"{path}:{n}: '{kind}' '{record_id}' has no string 'text'")
        if kind == "query" and strict and not text.strip():
            raise MergeirError(f"{path}:{n}: query '{record_id}' has an empty text")
        records[record_id] = {"title": title, "text": text} if kind == "document" else text
        first_line[record_id] = n
    if strict and not records:
        raise MergeirError(f"{path}: no {'documents' if kind == 'document' else 'queries'}")
    return records


def _iter_tsv(path: PathLike, header: tuple[str, ...], strict: bool) -> Iterator[tuple[int, list[str]]]:
    """Rows of a BEIR tsv. `strict`: line 1 must be the header (checked by its first column name) and the file
    is not empty; off, a header on line 1 is skipped when there (upstream files)."""
    has_header = False
    for n, line in iter_lines(path):
        line = line.rstrip("\r\n")
        cols = line.split("\t")
        if n == 1 and (strict or cols[0] == header[0]):
            if cols[0] != header[0]:
                raise MergeirError(
                    f"{path}:1: expected a header line starting '{header[0]}' ({' '.join(header)}), "
                    f"got {line[:60]!r}"
                )
            has_header = True
            continue
        if not line.strip():
            continue
        if len(cols) != len(header):
            raise MergeirError(f"{path}:{n}: expected {len(header)} tab-separated columns, got {len(cols)}")
        yield n, cols
    if strict and not has_header:
        raise MergeirError(f"{path}: empty file (expected a header line)")


def _check_ids(path: Path, n: int, query_id: str, doc_id: str, corpus: Mapping, queries: Mapping) -> None:
    if query_id not in queries:
        raise MergeirError(f"{path}:{n}: query id '{query_id}' is not in queries.jsonl")
    if doc_id not in corpus:
        raise MergeirError(f"{path}:{n}: document id '{doc_id}' is not in corpus.jsonl")


def read_qrels(path: PathLike, corpus: Mapping | None = None, queries: Mapping | None = None,
               strict: bool = True) -> list[tuple[str, str, int]]:
    """qrels/<split>.tsv as (query, document, score) rows in file order. `strict` (load_collection, which
    passes `corpus` and `queries`): the header, known ids, no repeated judgment, some judgment; off, an
    upstream file's integer scores only (write_collection checks the rest)."""
    rows: list[tuple[str, str, int]] = []
    seen: set[tuple[str, str]] = set()
    for n, (query_id, doc_id, score) in _iter_tsv(path, ("query-id", "corpus-id", "score"), strict):
        shown = repr(score) if len(score) <= 30 else f"{score[:24]!r}... ({len(score)} characters)"
        try:
            relevance = int(score)
        except ValueError:
            raise MergeirError(f"{path}:{n}: score {shown} is not an integer") from None
        if abs(relevance) > MAX_RELEVANCE:  # pytrec_eval (C) raised a SystemError on a 40-digit one
            raise MergeirError(f"{path}:{n}: score {shown} is out of range (at most {MAX_RELEVANCE} in size)")
        if strict:
            _check_ids(path, n, query_id, doc_id, corpus, queries)
            if (query_id, doc_id) in seen:
                raise MergeirError(f"{path}:{n}: duplicate judgment for query '{query_id}', document '{doc_id}'")
            seen.add((query_id, doc_id))
        rows.append((query_id, doc_id, relevance))
    if strict and not rows:
        raise MergeirError(f"{path}: no judgments")
    return rows


def _read_candidates(path: Path, corpus: Mapping, queries: Mapping) -> dict[str, list[str]]:
    cands: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()
    for n, (query_id, doc_id) in _iter_tsv(path, ("query-id", "corpus-id"), strict=True):
        _check_ids(path, n, query_id, doc_id, corpus, queries)
        if (query_id, doc_id) in seen:
            raise MergeirError(f"{path}:{n}: duplicate candidate '{doc_id}' for query '{query_id}'")
        seen.add((query_id, doc_id))
        cands.setdefault(query_id, []).append(doc_id)
    if not cands:
        raise MergeirError(f"{path}: no candidates")
    return cands


def _check_meta(meta: Any, path: Path) -> dict:
    if not isinstance(meta, dict):
        raise MergeirError(f"{path}: expected a JSON object")
    unknown = sorted(set(meta) - _META_KEYS)
    if unknown:
        raise MergeirError(f"{path}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_META_KEYS))})")
    types = {
        "name": str, "language": (str, type(None)), "eval_split": str, "train_split": (str, type(None)),
        "query_instruction": (str, type(None)), "use_titles": bool, "splits": list, "checksums": dict,
        "pools": dict,
    }
    for k, t in types.items():
        if k in meta and not isinstance(meta[k], t):
            raise MergeirError(f"{path}: '{k}' has the wrong type ({type(meta[k]).__name__})")
    for split, kind in meta.get("pools", {}).items():
        if kind not in _POOL_KINDS:
            raise MergeirError(f"{path}: pools.{split} must be one of {sorted(_POOL_KINDS)}, got {kind!r}")
    return meta


def load_collection(path: str | os.PathLike) -> Collection:
    """Read and validate a collection folder; any problem raises MergeirError naming the file (and line/id)."""
    root = Path(path)
    if not root.is_dir():
        raise MergeirError(f"collection folder not found: {root}")
    meta: dict = {}
    if (root / COLLECTION_JSON).exists():
        meta = _check_meta(read_json(root / COLLECTION_JSON, COLLECTION_JSON), root / COLLECTION_JSON)
    for f in ("corpus.jsonl", "queries.jsonl"):
        if not (root / f).is_file():
            raise MergeirError(f"collection {root}: missing {f}")
    qrels_dir = root / "qrels"
    if not qrels_dir.is_dir() or not any(p.suffix == ".tsv" for p in qrels_dir.iterdir()):
        raise MergeirError(f"collection {root}: missing qrels/<split>.tsv")

    corpus = read_records(root / "corpus.jsonl", "document")
    queries = read_records(root / "queries.jsonl", "query")
    found = sorted(p.stem for p in qrels_dir.iterdir() if p.suffix == ".tsv" and p.is_file())
    splits = meta.get("splits", found)
    for s in splits:
        if s not in found:
            raise MergeirError(f"{root / COLLECTION_JSON}: split '{s}' listed but "
                               f"{qrels_dir / (s + '.tsv')} is missing")
    qrels = {s: read_qrels(qrels_dir / f"{s}.tsv", corpus, queries) for s in splits}
    candidates = {}
    cdir = root / "candidates"
    if cdir.is_dir():
        for p in sorted(cdir.iterdir()):
            if p.suffix != ".tsv":
                continue
            if p.stem not in qrels:
                raise MergeirError(f"{p}: candidates for split '{p.stem}' which has no qrels/{p.stem}.tsv")
            cands = _read_candidates(p, corpus, queries)
            missing = [q for q in dict.fromkeys(q for q, _, _ in qrels[p.stem]) if q not in cands]
            if missing:
                raise MergeirError(f"{p}: judged query '{missing[0]}' has no candidates ({len(missing)} such queries)")
            candidates[p.stem] = cands

    use_titles = meta.get("use_titles", True)
    coll = Collection(
        name=meta.get("name", root.resolve().name),
        root=root,
        corpus=corpus,
        queries=queries,
        language=meta.get("language"),
        query_instruction=meta.get("query_instruction") or None,
        use_titles=use_titles,
        splits=list(splits),
        eval_split=meta.get("eval_split", "test"),
        train_split=meta.get("train_split", "train" if "train" in qrels else None),
        source=meta.get("source"),
        pools=dict(meta.get("pools", {})),
        _qrels=qrels,
        _candidates=candidates,
    )
    for s in (coll.eval_split, coll.train_split, *coll.pools):
        if s is not None and s not in qrels and meta:
            raise MergeirError(f"{root / COLLECTION_JSON}: split '{s}' has no qrels/{s}.tsv")
    coll.empty_documents = [i for i in corpus if not coll.doc_text(i).strip()]

    coll.checksums = {rel: sha256_file(root / rel) for rel in data_files(root)}
    recorded = meta.get("checksums")
    if recorded:
        for rel, digest in coll.checksums.items():
            if rel in recorded and recorded[rel] != digest:
                raise MergeirError(f"{root / rel}: contents changed since collection.json was written "
                                   "(sha256 mismatch)")
        gone = sorted(set(recorded) - set(coll.checksums))
        if gone:
            raise MergeirError(f"collection {root}: {gone[0]} is listed in collection.json but missing")
    return coll


