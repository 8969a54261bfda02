"""Training sets in Tevatron's JSON-lines format, with a sidecar `<file>.json` saying where they came from.

Row: {"query_id", "query", "positive_passages": [{"docid","title","text"}], "negative_passages": [...]}.
The query is stored raw; the query prefix (instruction) is added at training time, as Tevatron does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..collections.splits import evaluation_splits
from ..errors import MergeirError
from ..io import atomic_write_text, dumps_json, iter_jsonl, owner_tag, read_json_object, remove_stale, sha256_file

SIDECAR_SUFFIX = ".json"


@dataclass(frozen=True)
class Passage:
    docid: str
    title: str
    text: str

    def to_json(self) -> dict:
        return {"docid": self.docid, "title": self.title, "text": self.text}

    @property
    def full_text(self) -> str:
        """Tevatron's passage text: title + " " + text (text alone when there is no title)."""
        return f"{self.title} {self.text}" if self.title else self.text


@dataclass(frozen=True)
class TrainingExample:
    query_id: str
    query: str
    positives: tuple[Passage, ...]
    negatives: tuple[Passage, ...]

    def to_json(self) -> dict:
        return {
            "query_id": self.query_id,
            "query": self.query,
            "positive_passages": [p.to_json() for p in self.positives],
            "negative_passages": [p.to_json() for p in self.negatives],
        }


def sidecar_path(path: str | os.PathLike) -> Path:
    return Path(str(path) + SIDECAR_SUFFIX)


def _passages(path: Path, n: int, obj: dict, key: str) -> tuple[Passage, ...]:
    rows = obj.get(key, [])
    if not isinstance(rows, list):
        raise MergeirError(f"{path}:{n}: {key} must be a list")
    out = []
    for i, p in enumerate(rows):
        if not isinstance(p, dict) or "text" not in p:
            raise MergeirError(f"{path}:{n}: {key}[{i}] must be an object with 'text'")
        docid = p.get("docid", p.get("_id", ""))
        out.append(Passage(str(docid), str(p.get("title") or ""), str(p["text"])))
    return tuple(out)


def read_training_set(path: str | os.PathLike) -> list[TrainingExample]:
    """Read and check a Tevatron training file: every row needs an id, a non-empty query and a positive
    passage with text (an empty one would train the model towards the special tokens alone)."""
    path = Path(path)
    examples, seen = [], set()
    for n, obj in iter_jsonl(path):
        qid = obj.get("query_id")
        if qid is None or "query" not in obj:
            raise MergeirError(f"{path}:{n}: a training row needs 'query_id' and 'query'")
        qid = str(qid)
        if qid in seen:
            raise MergeirError(f"{path}:{n}: query_id {qid} appears twice")
        seen.add(qid)
        if not isinstance(obj["query"], str) or not obj["query"].strip():
            raise MergeirError(f"{path}:{n}: query {qid} has an empty query text")
        pos = _passages(path, n, obj, "positive_passages")
        if not pos:
            raise MergeirError(f"{path}:{n}: query {qid} has no positive_passages")
        empty = [i for i, p in enumerate(pos) if not p.full_text.strip()]
        if empty:
            raise MergeirError(f"{path}:{n}: query {qid}: positive_passages[{empty[0]}] "
                               f"({pos[empty[0]].docid or 'no docid'}) has an empty title and text")
        examples.append(TrainingExample(qid, str(obj["query"]), pos, _passages(path, n, obj, "negative_passages")))
    if not examples:
        raise MergeirError(f"{path}: training file has no rows")
    return examples


def read_sidecar(path: str | os.PathLike) -> dict | None:
    """The sidecar of a training file, or None when it has none (e.g. a hand-made file)."""
    p = sidecar_path(path)
    if not p.is_file():
        return None
    return read_json_object(p, "training-set sidecar")


def check_not_eval_split(sidecar: dict | None, train_file, allow: bool = False) -> None:
    """Refuse a training set its sidecar says was drawn from the collection's evaluation split (the fine-tuned
    model would have seen the test queries and their relevant documents); `allow` is --allow-eval-split."""
    if allow or not sidecar or sidecar.get("split") is None:
        return
    collection = sidecar.get("collection")
    if str(sidecar["split"]) in evaluation_splits(collection, sidecar.get("eval_split")):
        raise MergeirError(
            f"{train_file}: drawn from split '{sidecar['split']}', the evaluation split of collection '{collection}' "
            "(its sidecar says so); train on labelled training queries, or pass --allow-eval-split")


@dataclass(frozen=True)
class TrainingInput:
    """A training file as a LoRA backend receives it, checked before any model is loaded."""

    file: Path
    examples: list[TrainingExample]
    sidecar: dict | None
    query_instruction: str | None  # the one given, else the sidecar's (the collection's); None: no instruction
    allow_eval_split: bool = False  # --allow-eval-split was given (provenance records it)


def read_training_input(train_file: str | os.PathLike, *, max_steps: int, query_instruction: str | None = None,
                        allow_eval_split: bool = False) -> TrainingInput:
    """What both LoRA backends (mergeir's loop, Tevatron) check first: the step count, the rows, that the file is
    not drawn from an evaluation split, and the instruction. query_instruction None: the sidecar's; "": none."""
    if max_steps < 1:
        raise MergeirError(f"--max-steps must be at least 1, got {max_steps}")
    train_file = Path(train_file)
    examples = read_training_set(train_file)
    sidecar = read_sidecar(train_file)
    check_not_eval_split(sidecar, train_file, allow_eval_split)
    if query_instruction is None:
        query_instruction = (sidecar or {}).get("query_instruction")
    return TrainingInput(train_file, examples, sidecar, query_instruction or None, allow_eval_split)


def training_set_text(examples) -> str:
    return "".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in examples)


def write_training_set(path: str | os.PathLike, examples, sidecar: dict) -> None:
    """Write the jsonl and its sidecar (which gets the jsonl's sha256, query ids and negative counts).

    The jsonl is renamed into place last, so a reader that sees it also sees its sidecar; a failure
    leaves neither new file behind."""
    path = Path(path)
    examples = list(examples)
    remove_stale(path.parent, f".{path.name}.tmp-")  # a killed run's body
    body = path.with_name(f".{path.name}.tmp-{owner_tag()}body")
    side = sidecar_path(path)
    atomic_write_text(body, training_set_text(examples))
    wrote_side = False
    try:
        meta = dict(sidecar)
        meta["query_ids"] = [e.query_id for e in examples]
        meta["n_queries"] = len(examples)
        counts = [len(e.negatives) for e in examples]
        meta["n_negatives"] = {"min": min(counts), "max": max(counts), "total": sum(counts)} if counts else None
        meta["sha256"] = sha256_file(body)
        atomic_write_text(side, dumps_json(meta))
        wrote_side = True
        os.replace(body, path)
    except BaseException:
        body.unlink(missing_ok=True)
        if wrote_side:
            side.unlink(missing_ok=True)
        raise
