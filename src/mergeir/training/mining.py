"""Hard negatives: the top-k documents a given encoder retrieves for a labelled query that are not relevant.

The encoder, pooling, max length and query instruction are the miner's own choice (the paper's files were
mined with e5-mistral; the SciFact benchmark mines with MiniLM itself). Documents are searched as evaluation
searches them (`mergeir.evaluation.search_collection`: the whole corpus, a judged pool, or per-query candidates).
"""

from __future__ import annotations

from pathlib import Path

from ..collections import Collection
from ..collections.splits import evaluation_splits
from ..encoding.encode import FROM_COLLECTION, encode_collection
from ..encoding.loading import check_max_length, check_model_dirs, load_encoder
from ..errors import MergeirError
from ..evaluation.retrieval import search_collection
from ..io import Stage
from ..models.identity import describe_model
from ..provenance import tool_versions
from .data import Passage, TrainingExample

# a mined training file is recognised by its sidecar (`<file>.json`, kind "mined")
MINE_STAGE = Stage("mine", "{name}.json", key="kind", value="mined")


def labelled_split(collection: Collection, split: str | None, allow_eval_split: bool = False) -> str:
    """The split to train on: the one asked for, else collection.json's train_split; never the evaluation split
    unless `allow_eval_split`."""
    split = split or collection.train_split
    if not split:
        raise MergeirError(
            f"collection {collection.root} has no train_split (collection.json); pass --split"
        )
    if split not in collection.splits:
        raise MergeirError(
            f"collection {collection.root}: no qrels for split '{split}' (has: {', '.join(collection.splits)})"
        )
    if not allow_eval_split and split in evaluation_splits(collection.name, collection.eval_split):
        raise MergeirError(
            f"--split {split} is the evaluation split of collection {collection.root}: training on it would "
            "score the model on queries it was trained on (pass --allow-eval-split to do it anyway)")
    return split


def passage(collection: Collection, doc_id: str) -> Passage:
    d = collection.corpus[doc_id]
    return Passage(doc_id, d["title"] if collection.use_titles else "", d["text"])


def mine_hard_negatives(
    collection: Collection,
    model_dir: str | Path,
    *,
    split: str | None = None,
    k: int = 30,
    pooling: str = "last",
    max_length: int | None = None,
    batch_size: int = 16,
    query_instruction=FROM_COLLECTION,
    adapter: str | Path | None = None,
    dtype: str = "float32",
    device: str | None = None,
    progress: bool = False,
    allow_eval_split: bool = False,
    max_batch_tokens: int | None = None,
) -> tuple[list[TrainingExample], dict]:
    """(examples, sidecar fields): one example per labelled query with a relevant document, its positives the
    relevant documents (qrels order), its negatives the encoder's top-k non-relevant documents (rank order)."""
    if k < 0:
        raise MergeirError(f"--negatives must be >= 0, got {k}")
    split = labelled_split(collection, split, allow_eval_split)
    qrels = collection.qrels(split)
    check_model_dirs(model_dir, adapter)
    model, tokenizer = load_encoder(model_dir, adapter, dtype, device)
    max_length = check_max_length(model, max_length)  # None: min(4096, the model's position limit)
    emb = encode_collection(model, tokenizer, collection, split, pooling=pooling, max_length=max_length,
                            batch_size=batch_size, query_instruction=query_instruction, progress=progress,
                            max_batch_tokens=max_batch_tokens)
    max_rel = max(sum(1 for s in docs.values() if s > 0) for docs in qrels.values())
    depth = max(1, k + max_rel)  # enough hits to keep k after dropping the relevant ones
    run = search_collection(collection, split, emb.queries, emb.query_ids, emb.corpus, emb.corpus_ids, depth)

    examples, skipped = [], []
    empty = set(collection.empty_documents)
    for qid in emb.query_ids:
        judged = qrels[qid]
        rel = {d for d, s in judged.items() if s > 0}
        # a relevant document with an empty title and text is no positive to train on
        relevant = [d for d, s in judged.items() if s > 0 and d not in empty]
        if not relevant:
            skipped.append(qid)  # judged, but nothing relevant: no positive to train on
            continue
        negatives = [d for d in run.get(qid, {}) if d not in rel][:k]  # the run is already in rank order
        examples.append(TrainingExample(
            qid, collection.queries[qid],
            tuple(passage(collection, d) for d in relevant),
            tuple(passage(collection, d) for d in negatives),
        ))
    if not examples:
        raise MergeirError(f"collection {collection.root}: split '{split}' has no query with a relevant document")
    meta = emb.meta
    sidecar = {
        "kind": "mined",
        "collection": collection.name,
        "collection_checksum": collection.checksum,
        "split": split,
        "eval_split": collection.eval_split,
        "allow_eval_split": allow_eval_split,
        "seed": None,  # mining is deterministic: no sampling involved
        "k": k,
        "query_instruction": collection.query_instruction or None,
        "use_titles": collection.use_titles,
        "skipped_queries": skipped,
        "miner": {
            **describe_model(model_dir, adapter),
            "pooling": pooling,
            "max_length": max_length,
            "dtype": dtype,
            "query_instruction": meta.get("query_instruction"),
            "depth": depth,
        },
        "tool_versions": tool_versions(),
    }
    return examples, sidecar
