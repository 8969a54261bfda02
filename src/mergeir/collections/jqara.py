"""JQaRA -> the layout: rows (id, q_id, passage_row_id, label, text, title, question, answers), 100 per
question; every row becomes a candidate of its question (candidates/<split>.tsv), rows with label > 0 judgments."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..errors import MergeirError
from ..fetch import fetch, is_url, local_path
from ..io import iter_jsonl, sha256_file
from .upstream import PRESETS, provenance
from .writer import write_collection

JQARA_REVISION = "6172542a3159fd43ade568d9d7267d1b3d364cc9"
JQARA_URL = "https://huggingface.co/datasets/hotchpotch/JQaRA/resolve/{rev}/data/{split}-00000-of-00001.parquet"

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


def prepare_jqara(out: Path, cache: Path, source: str | None, revision: str) -> None:
    if source and not is_url(source):
        root = local_path(source)
        files = _jqara_files(root)
        origin, rev = str(root.resolve()), None
    else:
        files = {"test": [fetch(source or JQARA_URL.format(rev=revision, split="test"), cache / "test.parquet")]}
        if not source:
            files["dev"] = [fetch(JQARA_URL.format(rev=revision, split="dev"), cache / "dev.parquet")]
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
                     source=provenance(name="jqara", origin=origin, revision=rev, files_sha256=digests), **preset)
