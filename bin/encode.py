#!/usr/bin/env python3
"""Encode a collection split (its judged queries and the documents they rank) into L2-normalised embeddings."""

from pathlib import Path
from typing import Optional

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import Dtype, Pooling, make_app, run
from mergeir.collections import load_collection
from mergeir.encoding import (
    DEFAULT_MAX_LENGTH, FROM_COLLECTION, check_max_length, check_model_dirs, describe_model, encode_collection, load_encoder,
    resolve_device, write_embeddings,
)
from mergeir.errors import MergeirError
from mergeir.io import atomic_dir

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
    dtype: Dtype = typer.Option(Dtype.float32, help="weights' dtype; embeddings are always float32"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    progress: bool = typer.Option(True, help="progress bar on stderr"),
) -> None:
    if batch_size < 1:
        raise MergeirError(f"--batch-size must be >= 1, got {batch_size}")
    if max_length is not None and max_length < 3:
        raise MergeirError(f"--max-length must be >= 3, got {max_length}")
    resolve_device(device)  # bad --device / --model / --adapter fail before anything is loaded
    check_model_dirs(model, adapter)
    coll = load_collection(collection)
    split = split or coll.eval_split
    coll.qrels(split)  # an unknown split fails now, naming the collection's splits
    with atomic_dir(out) as tmp:  # an unwritable --out fails here, before the model is loaded
        enc, tok = load_encoder(model, adapter, dtype=dtype.value, device=device)
        length = check_max_length(enc, max_length)
        emb = encode_collection(
            enc, tok, coll, split, pooling=pooling.value, max_length=length, batch_size=batch_size,
            query_instruction=FROM_COLLECTION if query_instruction is None else query_instruction,
            progress=progress, extra_meta=describe_model(model, adapter),
        )
        write_embeddings(tmp, emb, atomic=False)
    print(f"{out}: {len(emb.query_ids)} queries, {len(emb.corpus_ids)} documents, dim {emb.queries.shape[1]}")


if __name__ == "__main__":
    run(app)
