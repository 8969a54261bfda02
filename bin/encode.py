#!/usr/bin/env python3
"""Encode a collection split (its judged queries and the documents they rank) into L2-normalised embeddings."""

import sys
from pathlib import Path
from typing import Optional

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import Dtype, Pooling, attempt_option, batch_for_attempt, force_option, make_app, run
from mergeir.collections import load_collection
from mergeir.encoding import (DEFAULT_MAX_LENGTH, ENCODE_STAGE, FROM_COLLECTION, check_max_length, check_model_dirs,
                              check_shard, encode_shard, encode_split, load_encoder, prepare_split, resolve_device,
                              write_embeddings, write_shard)
from mergeir.errors import MergeirError
from mergeir.io import atomic_dir
from mergeir.models import describe_model, weights_fingerprint

app = make_app(__doc__)


@app.command()
def main(
    model: Path = typer.Option(..., help="Hugging Face model folder (safetensors)"),
    collection: Path = typer.Option(..., help="collection folder (BEIR layout, optional collection.json)"),
    out: Path = typer.Option(..., help="embeddings folder to create (replaced only when complete)"),
    adapter: Optional[Path] = typer.Option(None, help="peft adapter folder, merged into the model before encoding"),
    split: Optional[str] = typer.Option(None, help="qrels split to encode [default: the collection's eval_split]"),
    pooling: Pooling = typer.Option(Pooling.last, help="last (BOS+text+EOS, e5-mistral) | mean | cls"),
    query_instruction: Optional[str] = typer.Option(
        None, help="overrides collection.json's instruction; '' for none"),
    max_length: Optional[int] = typer.Option(
        None, help=f"max tokens per text, specials included [default: min({DEFAULT_MAX_LENGTH}, model limit)]"),
    batch_size: int = typer.Option(16, help="texts per forward pass (longest first)"),
    max_batch_tokens: Optional[int] = typer.Option(
        None, help="cut batches by padded tokens (rows x longest text) instead of --batch-size"),
    shard: Optional[int] = typer.Option(
        None, help="encode only shard I (0-based) of --shards N: every N-th batch of the unsharded run; "
                   "bin/gather.py embeddings joins the shards"),
    shards: Optional[int] = typer.Option(None, help="number of shards the run is split into"),
    dtype: Dtype = typer.Option(Dtype.float32, help="weights' dtype; embeddings are always float32"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    progress: bool = typer.Option(True, help="progress bar on stderr"),
    check_adapter_base: bool = typer.Option(
        True, "--check-adapter-base/--no-check-adapter-base",
        help="refuse an --adapter whose provenance says it was trained on another model than --model"),
    force: bool = force_option(),
    attempt: int = attempt_option(),
) -> None:
    if batch_size < 1:
        raise MergeirError(f"--batch-size must be >= 1, got {batch_size}")
    if shards is None:
        batch_size = batch_for_attempt(batch_size, attempt)
    # else a retried shard keeps the run's batch plan (its rows are its siblings' complement) and computes each
    # planned batch in 2^(attempt-1) pieces (mergeir.encoding.encode_shard)
    if max_length is not None and max_length < 3:
        raise MergeirError(f"--max-length must be >= 3, got {max_length}")
    check_shard(shard, shards)
    check_model_dirs(model, adapter)  # bad --model / --adapter / --device fail before anything is loaded
    resolve_device(device)
    coll = load_collection(collection)
    split = split or coll.eval_split
    coll.qrels(split)  # an unknown split fails now, naming the collection's splits
    inputs = {"--model": model, "--adapter": adapter, "--collection": collection}
    with atomic_dir(out, stage=ENCODE_STAGE, inputs=inputs, force=force) as tmp:  # fails before the model loads
        enc, tok = load_encoder(model, adapter, dtype=dtype.value, device=device, check_adapter_base=check_adapter_base)
        length = check_max_length(enc, max_length)
        prepared = prepare_split(
            tok, coll, split, pooling=pooling.value, max_length=length, batch_size=batch_size,
            query_instruction=FROM_COLLECTION if query_instruction is None else query_instruction,
            max_batch_tokens=max_batch_tokens)
        meta = {"stage": ENCODE_STAGE.name, **describe_model(model, adapter),
                "adapter_base_checked": adapter is not None and check_adapter_base,
                # what the weights are, wherever they lay: shards of one run read from two copies agree on it
                "model_fingerprint": weights_fingerprint(model),
                "adapter_fingerprint": None if adapter is None else weights_fingerprint(adapter, "--adapter")}
        if shards is not None:
            parts, meta = encode_shard(enc, prepared, shard, shards, progress=progress, extra_meta=meta,
                                       attempt=attempt)
            write_shard(tmp, prepared, parts, meta)
        else:
            emb = encode_split(enc, prepared, progress=progress, extra_meta=meta)
            write_embeddings(tmp, emb, atomic=False)
            meta = emb.meta
    if meta.get("n_empty_documents"):
        print(f"warning: {meta['n_empty_documents']} documents of {coll.root} have an empty title and text; "
              "encoded as special tokens only (meta.json n_empty_documents)", file=sys.stderr)
    if shards is not None:
        print(f"{out}: shard {shard} of {shards}: {len(parts['queries'][0])} of {len(prepared.query_ids)} queries, "
              f"{len(parts['corpus'][0])} of {len(prepared.corpus_ids)} documents (bin/gather.py embeddings)")
        return
    print(f"{out}: {len(emb.query_ids)} queries, {len(emb.corpus_ids)} documents, dim {emb.queries.shape[1]}")


if __name__ == "__main__":
    run(app)
