"""Encoding texts into L2-normalised embeddings: the batched encode loop, and a collection split's queries and
documents encoded into the embeddings artifact (mergeir.encoding.embeddings).

The e5-mistral recipe (docs/paper.md, "Encoding"): sequence = BOS + text + EOS, embedding = hidden state of the last
non-pad token (mergeir.encoding.pooling). Texts are tokenized and length-sorted once (`prepare_texts`) and can then
be encoded by many models (`encode_prepared`) - the alpha sweep re-encodes the same texts 25 times.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..provenance import tool_versions
from .batching import Halving, Rows
from .embeddings import Embeddings
from .loading import backbone, model_device
from .pooling import pooled
from .tokenization import QUERY_FORMAT, Prepared, format_query, prepare_texts


class _FromCollection:
    def __repr__(self) -> str:
        return "FROM_COLLECTION"


#: `query_instruction` default of the collection-level functions: use collection.json's instruction.
FROM_COLLECTION = _FromCollection()


def batch_forward(model, pooling: str, device=None):
    """`fn(rows) -> embeddings` for one batch (mergeir.encoding.batching.Rows): the encoder's forward and pooling."""
    import torch

    device = torch.device(device) if device is not None else model_device(model)
    body = backbone(model)

    def forward(rows):
        ids = rows.ids.to(device, non_blocking=True)
        mask = rows.mask.to(device, non_blocking=True)
        return pooled(body(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state, mask, pooling)

    return forward


def encode_prepared(model, prepared: Prepared, device=None, progress: bool | str = False,
                    forward=None) -> np.ndarray:
    """Embeddings (n, dim), float32, L2-normalised, rows in the order the texts were given. A batch that runs out
    of device memory is halved and goes on (mergeir.encoding.batching.Halving); `forward` replaces `batch_forward`."""
    import torch
    from tqdm.auto import tqdm

    body = backbone(model)
    dim = int(getattr(body.config, "hidden_size", 0) or 0)
    out = np.empty((prepared.n, dim), dtype=np.float32) if prepared.n == 0 else None
    run = Halving(forward or batch_forward(model, prepared.pooling, device))
    was_training = body.training
    body.eval()
    desc = progress if isinstance(progress, str) else "encode"
    bar = tqdm(total=prepared.n, desc=desc, unit="text", file=sys.stderr, disable=not progress, leave=False)
    try:
        with torch.inference_mode():
            for (ids, mask), idx in zip(prepared.batches, prepared.index):
                for rows, emb in run(Rows(ids, mask, idx)):
                    if out is None:
                        out = np.empty((prepared.n, emb.shape[1]), dtype=np.float32)
                    out[rows.index] = emb
                bar.update(len(idx))
    finally:
        bar.close()
        body.train(was_training)
    if run.splits:
        print(f"warning: {desc}: out of device memory; batches were halved {run.splits} times and went on",
              file=sys.stderr)
    return out


def encode_texts(model, tokenizer, texts: Sequence[str], pooling: str, max_length: int, batch_size: int,
                 device=None, progress: bool | str = False) -> np.ndarray:
    """`prepare_texts` + `encode_prepared`."""
    return encode_prepared(model, prepare_texts(tokenizer, texts, pooling, max_length, batch_size), device,
                           progress)


@dataclass
class PreparedSplit:
    """A collection split tokenized once: judged queries and the pool of documents they rank."""

    collection: Any
    split: str
    query_instruction: str | None
    query_ids: list[str]
    corpus_ids: list[str]
    queries: Prepared
    corpus: Prepared


def split_ids(collection, split: str) -> tuple[list[str], list[str]]:
    """(query ids, doc ids) to encode for a split: the queries judged in qrels/<split>.tsv (first-seen order)
    and the documents they rank, in corpus.jsonl order: the docs of candidates/<split>.tsv when the split
    re-ranks candidates, the judged pool when collection.json says so (MIRACL-ja), else the whole corpus."""
    judged = collection.qrels(split)
    qids = [q for q in collection.query_ids(split) if q in judged]
    cands = collection.candidates(split)
    if cands:
        keep = {d for docs in cands.values() for d in docs}
    else:
        pool_ids = collection.pool(split)
        keep = None if pool_ids is None else set(pool_ids)
    dids = list(collection.corpus) if keep is None else [d for d in collection.corpus if d in keep]
    return qids, dids


def prepare_split(tokenizer, collection, split: str | None = None, *, pooling: str, max_length: int,
                  batch_size: int, query_instruction: Any = FROM_COLLECTION,
                  max_batch_tokens: int | None = None) -> PreparedSplit:
    split = split or getattr(collection, "eval_split", None) or "test"
    instruction = collection.query_instruction if query_instruction is FROM_COLLECTION else query_instruction
    instruction = instruction or None
    qids, dids = split_ids(collection, split)
    qtexts = [format_query(collection.queries[q], instruction) for q in qids]
    dtexts = [collection.doc_text(d) for d in dids]  # title + " " + text, or text only, per use_titles
    return PreparedSplit(
        collection, split, instruction, qids, dids,
        prepare_texts(tokenizer, qtexts, pooling, max_length, batch_size, max_batch_tokens),
        prepare_texts(tokenizer, dtexts, pooling, max_length, batch_size, max_batch_tokens),
    )


def encode_split(model, prepared: PreparedSplit, *, device=None, progress: bool = False,
                 extra_meta: dict | None = None) -> Embeddings:
    q = encode_prepared(model, prepared.queries, device, "queries" if progress else False)
    d = encode_prepared(model, prepared.corpus, device, "corpus" if progress else False)
    return split_embeddings(model, prepared, q, d, extra_meta)


def split_embeddings(model, prepared: PreparedSplit, q: np.ndarray, d: np.ndarray,
                     extra_meta: dict | None = None) -> Embeddings:
    """The Embeddings of a prepared split from its query and document vectors, with the artifact's meta."""
    coll = prepared.collection
    dtype = str(next(backbone(model).parameters()).dtype).replace("torch.", "")
    meta = {
        "model": None, "model_revision": None, "adapter": None,
        **(extra_meta or {}),
        "pooling": prepared.queries.pooling,
        "max_length": prepared.queries.max_length,
        "batch_size": prepared.queries.batch_size,
        **({"max_batch_tokens": prepared.queries.max_batch_tokens} if prepared.queries.max_batch_tokens else {}),
        "dtype": dtype,
        "dim": int(q.shape[1]),
        "split": prepared.split,
        "query_instruction": prepared.query_instruction,
        "query_format": QUERY_FORMAT if prepared.query_instruction else "{query}",
        "use_titles": bool(coll.use_titles),
        "n_queries": len(prepared.query_ids),
        "n_corpus": len(prepared.corpus_ids),
        "n_empty_documents": len(set(getattr(coll, "empty_documents", ())) & set(prepared.corpus_ids)),
        "n_tokens": {"queries": prepared.queries.n_tokens, "corpus": prepared.corpus.n_tokens},
        "collection": coll.name,
        "collection_checksum": coll.checksum,
        "tool_versions": tool_versions(),
    }
    return Embeddings(q, list(prepared.query_ids), d, list(prepared.corpus_ids), meta)


def encode_collection(model, tokenizer, collection, split: str | None = None, *, pooling: str, max_length: int,
                      batch_size: int, query_instruction: Any = FROM_COLLECTION, device=None,
                      progress: bool = False, extra_meta: dict | None = None,
                      max_batch_tokens: int | None = None) -> Embeddings:
    """Embeddings of the split's judged queries and of the documents they rank (`prepare_split` + `encode_split`)."""
    prepared = prepare_split(tokenizer, collection, split, pooling=pooling, max_length=max_length,
                             batch_size=batch_size, query_instruction=query_instruction,
                             max_batch_tokens=max_batch_tokens)
    return encode_split(model, prepared, device=device, progress=progress, extra_meta=extra_meta)

