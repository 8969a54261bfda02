"""A collection: the BEIR layout plus optional per-query candidates and a `collection.json`.

Layout (see docs/interfaces.md): `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`, `text`),
`qrels/<split>.tsv` (header; `query-id corpus-id score`), optional `candidates/<split>.tsv` (header;
`query-id corpus-id`: the only documents that query ranks, JQaRA's 100 per question) and optional
`collection.json`. Loading validates everything once, so later stages can trust ids and texts.
Loaders that build this layout from upstream releases (BEIR zips, MIRACL, JQaRA) live in `prepare_collection`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import MergeirError
from .io import dumps_json, iter_jsonl, sha256_file

COLLECTION_JSON = "collection.json"
_META_KEYS = {
    "name", "language", "splits", "eval_split", "train_split", "query_instruction", "use_titles", "source",
    "checksums", "pools",
}
# `pools`: {split: "judged"} — that split's queries rank only the documents judged in its qrels (MIRACL-ja's
# evaluation pool, PAPER.md quirk 3) while the corpus may hold more (e.g. the train split's passages).
_POOL_KINDS = {"judged"}

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
        """{query_id: {doc_id: relevance}}. `drop_first` drops the file's first judgment (PAPER.md quirk 1)."""
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


def _data_files(root: Path) -> list[str]:
    files = ["corpus.jsonl", "queries.jsonl"]
    for sub in ("qrels", "candidates"):
        d = root / sub
        if d.is_dir():
            files += sorted(f"{sub}/{p.name}" for p in d.iterdir() if p.suffix == ".tsv" and p.is_file())
    return files


def _str_id(value: Any, path: Path, n: int, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MergeirError(f"{path}:{n}: '{key}' must be a string, got {value!r}")
    s = str(value)
    if not s or s != s.strip() or any(c in s for c in "\t\n\r"):
        raise MergeirError(f"{path}:{n}: invalid id {value!r} (empty, or contains whitespace at the ends/tab/newline)")
    return s


def _text(obj: dict, key: str, path: Path, n: int, required: bool) -> str:
    if key not in obj or obj[key] is None:
        if required:
            raise MergeirError(f"{path}:{n}: missing '{key}'")
        return ""
    v = obj[key]
    if not isinstance(v, str):
        raise MergeirError(f"{path}:{n}: '{key}' must be a string")
    return v


def _read_corpus(path: Path) -> dict[str, dict[str, str]]:
    corpus: dict[str, dict[str, str]] = {}
    lines: dict[str, int] = {}
    for n, obj in iter_jsonl(path):
        if "_id" not in obj:
            raise MergeirError(f"{path}:{n}: missing '_id'")
        i = _str_id(obj["_id"], path, n, "_id")
        if i in corpus:
            raise MergeirError(f"{path}:{n}: duplicate document id '{i}' (first on line {lines[i]})")
        corpus[i] = {"title": _text(obj, "title", path, n, False), "text": _text(obj, "text", path, n, True)}
        lines[i] = n
    if not corpus:
        raise MergeirError(f"{path}: no documents")
    return corpus


def _read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    lines: dict[str, int] = {}
    for n, obj in iter_jsonl(path):
        if "_id" not in obj:
            raise MergeirError(f"{path}:{n}: missing '_id'")
        i = _str_id(obj["_id"], path, n, "_id")
        if i in queries:
            raise MergeirError(f"{path}:{n}: duplicate query id '{i}' (first on line {lines[i]})")
        t = _text(obj, "text", path, n, True)
        if not t.strip():
            raise MergeirError(f"{path}:{n}: query '{i}' has an empty text")
        queries[i] = t
        lines[i] = n
    if not queries:
        raise MergeirError(f"{path}: no queries")
    return queries


def _iter_tsv(path: Path, ncols: int, header: tuple[str, ...]) -> Iterable[tuple[int, list[str]]]:
    """Rows of a BEIR tsv; the first line is the header (checked by its first column name)."""
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise MergeirError(f"cannot read {path}: {e.strerror}") from None
    with f:
        first = True
        for n, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if first:
                first = False
                cols = line.split("\t")
                if cols[0] != header[0]:
                    raise MergeirError(
                        f"{path}:1: expected a header line starting '{header[0]}' ({' '.join(header)}), got {line[:60]!r}"
                    )
                continue
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) != ncols:
                raise MergeirError(f"{path}:{n}: expected {ncols} tab-separated columns, got {len(cols)}")
            yield n, cols
    if first:
        raise MergeirError(f"{path}: empty file (expected a header line)")


def _read_qrels(path: Path, corpus: Mapping, queries: Mapping) -> list[tuple[str, str, int]]:
    rows: list[tuple[str, str, int]] = []
    seen: set[tuple[str, str]] = set()
    for n, (q, d, s) in _iter_tsv(path, 3, ("query-id", "corpus-id", "score")):
        try:
            score = int(s)
        except ValueError:
            raise MergeirError(f"{path}:{n}: score {s!r} is not an integer") from None
        if q not in queries:
            raise MergeirError(f"{path}:{n}: query id '{q}' is not in queries.jsonl")
        if d not in corpus:
            raise MergeirError(f"{path}:{n}: document id '{d}' is not in corpus.jsonl")
        if (q, d) in seen:
            raise MergeirError(f"{path}:{n}: duplicate judgment for query '{q}', document '{d}'")
        seen.add((q, d))
        rows.append((q, d, score))
    if not rows:
        raise MergeirError(f"{path}: no judgments")
    return rows


def _read_candidates(path: Path, corpus: Mapping, queries: Mapping) -> dict[str, list[str]]:
    cands: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()
    for n, (q, d) in _iter_tsv(path, 2, ("query-id", "corpus-id")):
        if q not in queries:
            raise MergeirError(f"{path}:{n}: query id '{q}' is not in queries.jsonl")
        if d not in corpus:
            raise MergeirError(f"{path}:{n}: document id '{d}' is not in corpus.jsonl")
        if (q, d) in seen:
            raise MergeirError(f"{path}:{n}: duplicate candidate '{d}' for query '{q}'")
        seen.add((q, d))
        cands.setdefault(q, []).append(d)
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
        try:
            meta = json.loads((root / COLLECTION_JSON).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise MergeirError(f"{root / COLLECTION_JSON}: invalid JSON ({e})") from None
        meta = _check_meta(meta, root / COLLECTION_JSON)
    for f in ("corpus.jsonl", "queries.jsonl"):
        if not (root / f).is_file():
            raise MergeirError(f"collection {root}: missing {f}")
    qrels_dir = root / "qrels"
    if not qrels_dir.is_dir() or not any(p.suffix == ".tsv" for p in qrels_dir.iterdir()):
        raise MergeirError(f"collection {root}: missing qrels/<split>.tsv")

    corpus = _read_corpus(root / "corpus.jsonl")
    queries = _read_queries(root / "queries.jsonl")
    found = sorted(p.stem for p in qrels_dir.iterdir() if p.suffix == ".tsv" and p.is_file())
    splits = meta.get("splits", found)
    for s in splits:
        if s not in found:
            raise MergeirError(f"{root / COLLECTION_JSON}: split '{s}' listed but {qrels_dir / (s + '.tsv')} is missing")
    qrels = {s: _read_qrels(qrels_dir / f"{s}.tsv", corpus, queries) for s in splits}
    candidates = {}
    cdir = root / "candidates"
    if cdir.is_dir():
        for p in sorted(cdir.iterdir()):
            if p.suffix != ".tsv":
                continue
            if p.stem not in qrels:
                raise MergeirError(f"{p}: candidates for split '{p.stem}' which has no qrels/{p.stem}.tsv")
            c = _read_candidates(p, corpus, queries)
            missing = [q for q in dict.fromkeys(q for q, _, _ in qrels[p.stem]) if q not in c]
            if missing:
                raise MergeirError(f"{p}: judged query '{missing[0]}' has no candidates ({len(missing)} such queries)")
            candidates[p.stem] = c

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
    for i in corpus:
        if not coll.doc_text(i).strip():
            raise MergeirError(f"{root / 'corpus.jsonl'}: document '{i}' has an empty text")

    coll.checksums = {rel: sha256_file(root / rel) for rel in _data_files(root)}
    recorded = meta.get("checksums")
    if recorded:
        for rel, digest in coll.checksums.items():
            if rel in recorded and recorded[rel] != digest:
                raise MergeirError(f"{root / rel}: contents changed since collection.json was written (sha256 mismatch)")
        gone = sorted(set(recorded) - set(coll.checksums))
        if gone:
            raise MergeirError(f"collection {root}: {gone[0]} is listed in collection.json but missing")
    return coll


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
            f.write(json.dumps({"_id": i, "title": d.get("title", "") or "", "text": d["text"]}, ensure_ascii=False) + "\n")
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
        "checksums": {rel: sha256_file(out / rel) for rel in _data_files(out)},
    }
    if pools:
        meta["pools"] = dict(pools)
    (out / COLLECTION_JSON).write_text(dumps_json(meta), encoding="utf-8")
    return load_collection(out)


