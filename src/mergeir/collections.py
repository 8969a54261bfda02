"""A collection: the BEIR layout plus optional per-query candidates and a `collection.json`.

Layout (see docs/interfaces.md): `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`, `text`),
`qrels/<split>.tsv` (header; `query-id corpus-id score`), optional `candidates/<split>.tsv` (header;
`query-id corpus-id`: the only documents that query ranks, JQaRA's 100 per question) and optional
`collection.json` (its optional `pools` {split: "judged"} makes that split rank only the documents judged in
its qrels: MIRACL-ja's evaluation pool). Loading validates everything once, so later stages trust ids and texts.
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
from .io import Stage, decoded_lines, dumps_json, iter_jsonl, iter_lines, parse_jsonl, read_text, sha256_file

COLLECTION_JSON = "collection.json"
_META_KEYS = {
    "name", "language", "splits", "eval_split", "train_split", "query_instruction", "use_titles", "source",
    "checksums", "pools", "empty_documents",
}
# what `download.py collection` may replace: a folder whose collection.json mergeir wrote (write_collection)
DOWNLOAD_STAGE = Stage("download-collection", COLLECTION_JSON, legacy=("checksums", "source", "splits"))
# `pools`: {split: "judged"} — that split's queries rank only the documents judged in its qrels (MIRACL-ja's
# evaluation pool, docs/paper.md quirk 3) while the corpus may hold more (e.g. the train split's passages).
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
    first = True
    for n, line in iter_lines(path):
        line = line.rstrip("\r\n")
        if first:
            first = False
            cols = line.split("\t")
            if cols[0] != header[0]:
                raise MergeirError(
                    f"{path}:1: expected a header line starting '{header[0]}' ({' '.join(header)}), "
                    f"got {line[:60]!r}"
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
            meta = json.loads(read_text(root / COLLECTION_JSON))
        except json.JSONDecodeError as e:
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
            raise MergeirError(f"{root / COLLECTION_JSON}: split '{s}' listed but "
                               f"{qrels_dir / (s + '.tsv')} is missing")
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
    coll.empty_documents = [i for i in corpus if not coll.doc_text(i).strip()]

    coll.checksums = {rel: sha256_file(root / rel) for rel in _data_files(root)}
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
        "checksums": {rel: sha256_file(out / rel) for rel in _data_files(out)},
    }
    if pools:
        meta["pools"] = dict(pools)
    empty = sum(1 for d in corpus.values() if not ((d.get("title") or "") + (d["text"] or "")).strip())
    if empty:
        meta["empty_documents"] = empty
    (out / COLLECTION_JSON).write_text(dumps_json(meta), encoding="utf-8")
    return load_collection(out)




# ---------------------------------------------------------------- upstream releases -> the layout

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
BEIR_MD5 = {"scifact": "5f7d1de60b170fc8027bb7898e2efca1", "nfcorpus": "a89dba18a62ef92f7d323ec890a0d38d"}
MIRACL_TOPICS_URL = ("https://huggingface.co/datasets/miracl/miracl/resolve/{rev}/miracl-v1.0-ja/topics/"
                     "topics.miracl-v1.0-ja-{split}.tsv")
MIRACL_QRELS_URL = ("https://huggingface.co/datasets/miracl/miracl/resolve/{rev}/miracl-v1.0-ja/qrels/"
                    "qrels.miracl-v1.0-ja-{split}.tsv")
MIRACL_CORPUS_URL = ("https://huggingface.co/datasets/miracl/miracl-corpus/resolve/{rev}/miracl-corpus-v1.0-ja/"
                     "docs-{shard}.jsonl.gz")
JQARA_REVISION = "6172542a3159fd43ade568d9d7267d1b3d364cc9"
JQARA_URL = "https://huggingface.co/datasets/hotchpotch/JQaRA/resolve/{rev}/data/{split}-00000-of-00001.parquet"

_QA_JA = "Given a question, retrieve Wikipedia passages that answer the question"
# Query instructions and document text settings of the paper (docs/paper.md, "Collections").
PRESETS: dict[str, dict[str, Any]] = {
    "scifact": {"language": "en", "use_titles": True, "eval_split": "test", "train_split": "train",
                "query_instruction": "Given a scientific claim, retrieve documents that support or refute the claim"},
    "nfcorpus": {"language": "en", "use_titles": True, "eval_split": "test", "train_split": "train",
                 "query_instruction": "Given a question, retrieve relevant documents that best answer the question"},
    "miracl-ja": {"language": "ja", "use_titles": False, "eval_split": "dev", "train_split": None,
                  "query_instruction": _QA_JA},
    "jqara": {"language": "ja", "use_titles": False, "eval_split": "test", "train_split": None,
              "query_instruction": _QA_JA},
}
NAMES = (*PRESETS, "beir:<path>")


def prepare_collection(name: str, out: str | os.PathLike, source: str | None = None, check_md5: bool = True,
                       revision: str | None = None, force: bool = False) -> Collection:
    """Build the collection layout for `name` into `out` (atomically) from `source` (local path or URL).

    Without `source` the upstream release is downloaded (BEIR zips, MIRACL and JQaRA from the Hugging Face
    hub at `revision`). BEIR zips are checked against BEIR's published md5 unless `check_md5` is off.
    """
    from .io import atomic_dir

    if name.startswith("beir:"):
        path = name[len("beir:"):]
        if not path:
            raise MergeirError("beir:<path> needs a path to a BEIR folder or zip")
        builder, kwargs = _prepare_beir_local, {"path": path}
    elif name in ("scifact", "nfcorpus"):
        builder, kwargs = _prepare_beir, {"name": name, "source": source, "check_md5": check_md5}
    elif name == "miracl-ja":
        builder, kwargs = _prepare_miracl_ja, {"source": source, "revision": revision or "main"}
    elif name == "jqara":
        builder, kwargs = _prepare_jqara, {"source": source, "revision": revision or JQARA_REVISION}
    else:
        raise MergeirError(f"unknown collection '{name}' (known: {', '.join(NAMES)})")
    if name.startswith("beir:") and source:
        raise MergeirError("--source is not used with beir:<path>; the path is the source")
    import tempfile

    local = [v for v in (source, kwargs.get("path")) if v and not re.match(r"^https?://", v)]
    with tempfile.TemporaryDirectory(prefix="mergeir-download-") as cache, \
            atomic_dir(out, stage=DOWNLOAD_STAGE, inputs={"--source": local}, force=force) as tmp:
        builder(out=tmp, cache=Path(cache), **kwargs)
    return load_collection(out)


def _prov(**kw) -> dict:
    from .provenance import tool_versions

    return {**kw, "tools": tool_versions()}


def _fetch(source: str, cache: Path, filename: str) -> Path:
    """A local path as is, or a URL downloaded into `cache` (urllib; errors name the URL)."""
    if re.match(r"^https?://", source):
        import shutil
        import urllib.error
        import urllib.request

        dest = cache / filename
        try:
            with urllib.request.urlopen(source, timeout=60) as r, open(dest, "wb") as f:
                shutil.copyfileobj(r, f, 1 << 20)
        except (urllib.error.URLError, OSError) as e:
            raise MergeirError(f"cannot download {source}: {getattr(e, 'reason', e)}") from None
        return dest
    p = Path(source)
    if not p.exists():
        raise MergeirError(f"--source not found: {p}")
    return p


def _beir_records(lines: Iterable[tuple[int, str]], where: str, kind: str) -> dict:
    """BEIR corpus/queries lines -> {id: {title, text}} / {id: text}; `metadata` is dropped."""
    out: dict = {}
    for n, obj in parse_jsonl(lines, where):
        if "_id" not in obj:
            raise MergeirError(f"{where}:{n}: missing '_id'")
        i = str(obj["_id"])
        if i in out:
            raise MergeirError(f"{where}:{n}: duplicate {kind} id '{i}'")
        text = obj.get("text")
        if not isinstance(text, str):
            raise MergeirError(f"{where}:{n}: '{kind}' '{i}' has no string 'text'")
        out[i] = {"title": obj.get("title") or "", "text": text} if kind == "document" else text
    return out


def _beir_qrels(lines: Iterable[tuple[int, str]], where: str) -> list[tuple[str, str, int]]:
    rows = []
    for n, line in lines:
        cols = line.rstrip("\r\n").split("\t")
        if n == 1 and cols[0] == "query-id":
            continue
        if not line.strip():
            continue
        if len(cols) != 3:
            raise MergeirError(f"{where}:{n}: expected 3 tab-separated columns, got {len(cols)}")
        try:
            rows.append((cols[0], cols[1], int(cols[2])))
        except ValueError:
            raise MergeirError(f"{where}:{n}: score {cols[2]!r} is not an integer") from None
    return rows


def _read_beir(root) -> tuple[dict, dict, dict]:
    """Corpus, queries and {split: qrels rows} from a BEIR folder or a zip member folder (zipfile.Path)."""
    def lines(p, where):
        with p.open("rb") as f:
            yield from decoded_lines(f, where)

    for f in ("corpus.jsonl", "queries.jsonl", "qrels"):
        if not (root / f).exists():
            raise MergeirError(f"{root}: missing {f} (not a BEIR folder)")
    corpus = _beir_records(lines(root / "corpus.jsonl", f"{root}/corpus.jsonl"), f"{root}/corpus.jsonl", "document")
    queries = _beir_records(lines(root / "queries.jsonl", f"{root}/queries.jsonl"), f"{root}/queries.jsonl", "query")
    qrels = {}
    for p in sorted((root / "qrels").iterdir(), key=lambda p: p.name):
        if p.name.endswith(".tsv"):
            where = f"{root}/qrels/{p.name}"
            qrels[p.name[:-4]] = _beir_qrels(lines(p, where), where)
    if not qrels:
        raise MergeirError(f"{root}/qrels: no <split>.tsv files")
    return corpus, queries, qrels


def _beir_root(path: Path, name: str | None):
    """The folder holding corpus.jsonl: `path` itself, `path/<name>`, or inside a zip (BEIR zips hold `<name>/`)."""
    import zipfile

    if path.is_dir():
        for cand in (path, path / name) if name else (path,):
            if (cand / "corpus.jsonl").is_file():
                return cand
        also = f" or {name}/" if name else ""
        raise MergeirError(f"{path}: missing corpus.jsonl (expected a BEIR folder{also})")
    if not zipfile.is_zipfile(path):
        raise MergeirError(f"{path}: neither a BEIR folder nor a zip file")
    z = zipfile.ZipFile(path)
    tops = sorted({m.split("/")[0] for m in z.namelist() if m.endswith("/corpus.jsonl") and m.count("/") == 1})
    if name and name in tops:
        top = name
    elif len(tops) == 1:
        top = tops[0]
    else:
        raise MergeirError(f"{path}: expected one <name>/corpus.jsonl inside the zip, found {tops or 'none'}")
    return zipfile.Path(z, top + "/")


def _file_digests(root) -> dict[str, str]:
    if isinstance(root, Path):
        return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}
    return {}


def _prepare_beir(out: Path, cache: Path, name: str, source: str | None, check_md5: bool) -> None:
    from .io import md5_file

    url = BEIR_URL.format(name=name)
    src = _fetch(source or url, cache, f"{name}.zip")
    prov: dict[str, Any] = {"name": name, "origin": source or url}
    if src.is_file():
        md5 = md5_file(src)
        prov.update(md5=md5, md5_published=BEIR_MD5[name], md5_checked=check_md5)
        if check_md5 and md5 != BEIR_MD5[name]:
            raise MergeirError(f"{src}: md5 {md5} differs from BEIR's published {BEIR_MD5[name]} for {name}.zip "
                               "(use --no-check-md5 to accept another copy; its md5 is then recorded)")
    root = _beir_root(src, name)
    if not isinstance(root, Path):
        prov["sha256"] = sha256_file(src)
    else:
        prov.update(md5_checked=False, files_sha256=_file_digests(root))
    corpus, queries, qrels = _read_beir(root)
    write_collection(out, corpus=corpus, queries=queries, qrels=qrels, name=name, source=_prov(**prov),
                     **PRESETS[name])


def _prepare_beir_local(out: Path, cache: Path, path: str) -> None:
    p = Path(path)
    if not p.exists():
        raise MergeirError(f"beir:{path}: not found")
    root = _beir_root(p, None)
    if isinstance(root, Path):
        # a folder is validated by the loader itself; an existing collection.json keeps its settings
        c = load_collection(root)
        data = {"corpus": c.corpus, "queries": c.queries, "qrels": c._qrels, "candidates": c._candidates or None}
        meta = {"name": c.name, "language": c.language, "query_instruction": c.query_instruction,
                "use_titles": c.use_titles, "eval_split": c.eval_split, "train_split": c.train_split,
                "pools": c.pools or None}
        prov = _prov(name=f"beir:{path}", origin=str(p.resolve()), files_sha256=dict(c.checksums))
    else:
        corpus, queries, qrels = _read_beir(root)
        data = {"corpus": corpus, "queries": queries, "qrels": qrels}
        meta = {"name": p.stem, "eval_split": "test", "train_split": "train" if "train" in qrels else None}
        prov = _prov(name=f"beir:{path}", origin=str(p.resolve()), sha256=sha256_file(p))
    write_collection(out, **data, source=prov, **meta)


# -- MIRACL (ja): topics `qid\tquery`, qrels TREC `qid Q0 docid rel`, corpus shards docs-N.jsonl.gz

def _find(root: Path, pattern: str) -> list[Path]:
    return sorted(root.rglob(pattern)) if root.is_dir() else ([root] if root.match(pattern) else [])


def _miracl_topics(path: Path) -> dict[str, str]:
    topics: dict[str, str] = {}
    for n, line in iter_lines(path):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        qid, sep, text = line.partition("\t")
        if not sep or not qid.strip() or not text.strip():
            raise MergeirError(f"{path}:{n}: expected 'qid<TAB>query'")
        if qid in topics:
            raise MergeirError(f"{path}:{n}: duplicate topic id '{qid}'")
        topics[qid] = text
    return topics


def _miracl_qrels(path: Path) -> list[tuple[str, str, int]]:
    rows, seen = [], set()
    for n, line in iter_lines(path):
        cols = line.split()
        if not cols:
            continue
        if len(cols) != 4:
            raise MergeirError(f"{path}:{n}: expected TREC qrels 'qid Q0 docid relevance', got {len(cols)} columns")
        try:
            rel = int(cols[3])
        except ValueError:
            raise MergeirError(f"{path}:{n}: relevance {cols[3]!r} is not an integer") from None
        if (cols[0], cols[2]) in seen:
            raise MergeirError(f"{path}:{n}: duplicate judgment for query '{cols[0]}', passage '{cols[2]}'")
        seen.add((cols[0], cols[2]))
        rows.append((cols[0], cols[2], rel))
    if not rows:
        raise MergeirError(f"{path}: no judgments")
    return rows


_DOCID = re.compile(r'^\{\s*"docid"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _miracl_passages(shards: list[Path], wanted: set[str]) -> dict[str, dict[str, str]]:
    """Read only the wanted passages; the docid is peeked with a regex so the other ~7M lines skip json.loads."""
    import gzip

    found: dict[str, dict[str, str]] = {}
    for shard in shards:
        opener = gzip.open if shard.suffix == ".gz" else open
        try:
            with opener(shard, "rb") as f:
                for n, line in decoded_lines(f, str(shard)):
                    m = _DOCID.match(line)
                    if m and "\\" not in m.group(1) and m.group(1) not in wanted:
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise MergeirError(f"{shard}:{n}: malformed JSON line ({e.msg})") from None
                    d = str(obj.get("docid", "")) if isinstance(obj, dict) else ""
                    if d in wanted and d not in found:
                        if not isinstance(obj.get("text"), str):
                            raise MergeirError(f"{shard}:{n}: passage '{d}' has no string 'text'")
                        found[d] = {"title": "", "text": obj["text"]}
        except (OSError, EOFError) as e:
            raise MergeirError(f"{shard}: cannot read ({e})") from None
    return found


def _shard_no(p: Path) -> int:
    m = re.search(r"docs-(\d+)", p.name)
    return int(m.group(1)) if m else -1


def _prepare_miracl_ja(out: Path, cache: Path, source: str | None, revision: str) -> None:
    files: dict[str, Path | None] = {}
    if source and not re.match(r"^https?://", source):
        root = Path(source)
        if not root.exists():
            raise MergeirError(f"--source not found: {root}")
        for split in ("dev", "train"):
            for kind in ("topics", "qrels"):
                hits = _find(root, f"{kind}.miracl-v1.0-ja-{split}.tsv")
                files[f"{kind}-{split}"] = hits[0] if hits else None
        shards = _find(root, "docs-*.jsonl*")
        ja = [p for p in shards if p.parent.name == "miracl-corpus-v1.0-ja"]  # a full snapshot holds 18 languages
        shards = sorted(ja or shards, key=_shard_no)
        origin = str(root.resolve())
    else:
        if source:
            raise MergeirError("miracl-ja: --source must be a local folder (remote files come from the HF hub)")
        for split in ("dev", "train"):
            files[f"topics-{split}"] = _fetch(MIRACL_TOPICS_URL.format(rev=revision, split=split), cache, f"t-{split}")
            files[f"qrels-{split}"] = _fetch(MIRACL_QRELS_URL.format(rev=revision, split=split), cache, f"q-{split}")
        shards = []
        while True:  # shard count is not published; stop at the first missing one
            try:
                shards.append(_fetch(MIRACL_CORPUS_URL.format(rev=revision, shard=len(shards)), cache,
                                     f"docs-{len(shards)}.jsonl.gz"))
            except MergeirError:
                if not shards:
                    raise
                break
        origin = f"huggingface.co/datasets/miracl/miracl@{revision}"
    for k in ("topics-dev", "qrels-dev"):
        if files.get(k) is None:
            raise MergeirError(f"miracl-ja: {k.replace('-', '.miracl-v1.0-ja-')}.tsv not found under {source}")
    if not shards:
        raise MergeirError(f"miracl-ja: no corpus shards miracl-corpus-v1.0-ja/docs-*.jsonl.gz under {source}")
    splits = ["dev"] + (["train"] if files.get("topics-train") and files.get("qrels-train") else [])

    queries: dict[str, str] = {}
    qrels: dict[str, list] = {}
    for split in splits:
        topics = _miracl_topics(files[f"topics-{split}"])
        rows = _miracl_qrels(files[f"qrels-{split}"])
        missing = sorted({q for q, _, _ in rows} - set(topics))
        if missing:
            raise MergeirError(f"{files[f'qrels-{split}']}: query '{missing[0]}' has no topic in "
                               f"{files[f'topics-{split}']}")
        for q in dict.fromkeys(q for q, _, _ in rows):
            if q in queries and queries[q] != topics[q]:
                raise MergeirError(f"miracl-ja: query '{q}' has different texts in dev and train topics")
            queries[q] = topics[q]
        qrels[split] = rows
    wanted = {d for rows in qrels.values() for _, d, _ in rows}
    passages = _miracl_passages(shards, wanted)
    missing = [d for rows in qrels.values() for _, d, _ in rows if d not in passages]
    if missing:
        raise MergeirError(f"miracl-ja: {len(set(missing))} judged passages not found in the corpus shards "
                           f"(first: '{missing[0]}')")
    # judged-passage corpus in dev-qrels order (then train's), shared by every query of a split (quirk 3)
    corpus = {d: passages[d] for rows in qrels.values() for _, d, _ in rows}
    prov = _prov(name="miracl-ja", origin=origin, revision=None if source else revision,
                 files_sha256={k: sha256_file(v) for k, v in files.items() if v is not None},
                 corpus_shards={p.name: sha256_file(p) for p in shards})
    preset = {**PRESETS["miracl-ja"], "train_split": "train" if "train" in splits else None}
    write_collection(out, corpus=corpus, queries=queries, qrels=qrels, name="miracl-ja", source=prov,
                     pools={s: "judged" for s in splits}, **preset)


# -- JQaRA: rows (id, q_id, passage_row_id, label, text, title, question, answers), 100 per question

_JQARA_FIELDS = ("q_id", "passage_row_id", "label", "text", "question")


def _read_rows(path: Path) -> Iterable[tuple[str, dict]]:
    """Rows of a jsonl, parquet or HF `save_to_disk` arrow file, each with a `file:row` location."""
    name = path.name
    if name.endswith(".jsonl") or name.endswith(".json"):
        for n, obj in iter_jsonl(path):
            yield f"{path}:{n}", obj
        return
    try:
        import pyarrow.ipc
        import pyarrow.parquet as pq
    except ImportError:
        raise MergeirError(f"{path}: reading parquet/arrow needs pyarrow; install it or give a .jsonl copy") from None
    try:
        if name.endswith(".parquet"):
            table = pq.read_table(path)
        else:
            with open(path, "rb") as f:
                table = pyarrow.ipc.open_stream(f).read_all()
    except Exception as e:  # noqa: BLE001 - pyarrow raises many types for a broken file
        raise MergeirError(f"{path}: cannot read ({e})") from None
    for n, obj in enumerate(table.to_pylist(), 1):
        yield f"{path}:row {n}", obj


def _jqara_files(root: Path) -> dict[str, list[Path]]:
    """{split: files}: `<split>*.parquet|jsonl` (HF hub layout `data/test-00000-of-00001.parquet`) or
    `<split>/data-*.arrow` (`datasets.save_to_disk`); a single file is the test split."""
    if root.is_file():
        return {"test": [root]}
    out: dict[str, list[Path]] = {}
    for split in ("test", "dev"):
        hits = [p for ext in ("parquet", "jsonl") for p in root.rglob(f"{split}*.{ext}")]
        hits += sorted((root / split).glob("data-*.arrow")) if (root / split).is_dir() else []
        if hits:
            out[split] = sorted(hits)
    return out


def _prepare_jqara(out: Path, cache: Path, source: str | None, revision: str) -> None:
    if source and not re.match(r"^https?://", source):
        root = Path(source)
        if not root.exists():
            raise MergeirError(f"--source not found: {root}")
        files = _jqara_files(root)
        origin, rev = str(root.resolve()), None
    else:
        files = {"test": [_fetch(source or JQARA_URL.format(rev=revision, split="test"), cache, "test.parquet")]}
        if not source:
            files["dev"] = [_fetch(JQARA_URL.format(rev=revision, split="dev"), cache, "dev.parquet")]
        origin, rev = source or f"huggingface.co/datasets/hotchpotch/JQaRA@{revision}", revision
    if "test" not in files:
        raise MergeirError(f"jqara: no test split (test*.parquet, test*.jsonl or test/data-*.arrow) under {source}")

    queries: dict[str, str] = {}
    corpus: dict[str, dict[str, str]] = {}
    qrels: dict[str, list] = {}
    candidates: dict[str, dict[str, list[str]]] = {}
    for split, paths in files.items():
        rows, cands, seen = [], {}, set()
        for path in paths:
            for where, r in _read_rows(path):
                miss = [k for k in _JQARA_FIELDS if r.get(k) is None]
                if miss:
                    raise MergeirError(f"{where}: missing field '{miss[0]}' "
                                       f"(JQaRA rows need {', '.join(_JQARA_FIELDS)})")
                q, d, text, question = str(r["q_id"]), str(r["passage_row_id"]), r["text"], r["question"]
                try:
                    label = int(r["label"])
                except (TypeError, ValueError):
                    raise MergeirError(f"{where}: label {r['label']!r} is not an integer") from None
                if queries.setdefault(q, question) != question:
                    raise MergeirError(f"{where}: question '{q}' has two different texts")
                if corpus.setdefault(d, {"title": "", "text": text})["text"] != text:
                    raise MergeirError(f"{where}: passage '{d}' has two different texts")
                if (q, d) in seen:
                    raise MergeirError(f"{where}: passage '{d}' listed twice for question '{q}'")
                seen.add((q, d))
                cands.setdefault(q, []).append(d)
                if label > 0:  # label-0 rows stay candidates but are not judgments
                    rows.append((q, d, label))
        if not rows:
            raise MergeirError(f"jqara: split '{split}' has no row with label > 0")
        qrels[split], candidates[split] = rows, cands
    digests = {f"{s}/{p.name}": sha256_file(p) for s, ps in files.items() for p in ps}
    preset = {**PRESETS["jqara"], "train_split": "dev" if "dev" in files else None}
    write_collection(out, corpus=corpus, queries=queries, qrels=qrels, candidates=candidates, name="jqara",
                     source=_prov(name="jqara", origin=origin, revision=rev, files_sha256=digests), **preset)
