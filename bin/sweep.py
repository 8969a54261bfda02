#!/usr/bin/env python3
"""α grid search without writing merged models: source and domain are loaded once, and for every (alpha_lower,
alpha_upper) in grid x grid the linear merge is formed in memory, the split's judged queries and documents are
encoded, searched and scored. Writes grid.json + points/<al>_<au>/{metrics.json,run.trec} (codes 00, 025, 05, ...).
"""

from pathlib import Path
from typing import List, Optional

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import (Dtype, Pooling, allow_eval_split_option, attempt_option, batch_for_attempt, force_option,
                         make_app, run)
from mergeir.errors import MergeirError
from mergeir.sweep import run_sweep

app = make_app(__doc__)


@app.command()
def main(
    source: Path = typer.Option(..., help="source retriever folder"),
    domain: Path = typer.Option(..., help="domain model folder"),
    collection: Path = typer.Option(..., help="collection folder"),
    out: Path = typer.Option(..., help="grid folder to create (replaced only when complete)"),
    split: Optional[str] = typer.Option(None, help="labelled split to evaluate [default: the collection's train_split]"),
    grid: str = typer.Option("0,0.25,0.5,0.75,1", help="alpha values (source weight), comma-separated"),
    split_layer: Optional[int] = typer.Option(None, help="K, first layer of the upper slice [default: half]"),
    restore_source_embeddings: bool = typer.Option(
        True, "--restore-source-embeddings/--no-restore-source-embeddings",
        help="keep the source's input embeddings (the paper's choice)"),
    pooling: Pooling = typer.Option(Pooling.last, help="last (BOS+text+EOS, e5-mistral) | mean | cls"),
    query_instruction: Optional[str] = typer.Option(None, help="overrides collection.json's instruction; '' for none"),
    max_length: Optional[int] = typer.Option(None, help="max tokens per text [default: min(4096, model limit)]"),
    batch_size: int = typer.Option(16, help="texts per forward pass"),
    max_batch_tokens: Optional[int] = typer.Option(
        None, help="cut batches by padded tokens (rows x longest text) instead of --batch-size"),
    layer_cache: bool = typer.Option(
        True, "--layer-cache/--no-layer-cache",
        help="run layers [0, K) once per alpha_lower and only [K, n) per point (--no-layer-cache: every layer)"),
    cache_gib: Optional[float] = typer.Option(
        None, help="layer cache budget on the model's device [default: half the free GPU memory; on CPU a quarter "
                   "of the available memory, at most 4]"),
    alpha_lower: Optional[List[float]] = typer.Option(
        None, help="evaluate only these alpha_lower rows of the grid (a partial grid for bin/gather.py grid); "
                   "repeatable"),
    dtype: Dtype = typer.Option(
        Dtype.float32, show_default=False,
        help="dtype each point's merge is formed and encoded in (a point is bin/merge.py --dtype D, then "
             "bin/encode.py --dtype D) [default: float32: the paper plan sweeps in its encoding dtype, fp32 as the "
             "authors encoded; bin/merge.py defaults to float16, the dtype mergekit wrote the paper's merges in]"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    depth: int = typer.Option(100, help="documents ranked per query"),
    progress: bool = typer.Option(False, help="progress bars on stderr"),
    allow_eval_split: bool = allow_eval_split_option(),
    force: bool = force_option(),
    attempt: int = attempt_option(),
) -> None:
    if cache_gib is not None and cache_gib <= 0:
        raise MergeirError(f"--cache-gib must be > 0, got {cache_gib}")
    doc = run_sweep(source, domain, collection, out, split=split, grid=grid, split_layer=split_layer,
                    restore_source_embeddings=restore_source_embeddings, pooling=pooling.value,
                    max_length=max_length, batch_size=batch_for_attempt(batch_size, attempt), dtype=dtype.value, device=device,
                    query_instruction=query_instruction, depth=depth, progress=progress,
                    allow_eval_split=allow_eval_split, force=force, max_batch_tokens=max_batch_tokens,
                    layer_cache=layer_cache, alpha_lowers=alpha_lower or None,
                    cache_bytes=None if cache_gib is None else int(cache_gib * (1 << 30)))
    best = max(doc["points"], key=lambda p: p["ndcg_cut_10"])
    print(f"{out}: {len(doc['points'])} points on split {doc['split']} ({doc['n_queries']} queries) in "
          f"{doc['seconds']:.1f} s; best nDCG@10 {best['ndcg_cut_10']:.4f} at "
          f"({best['alpha_lower']}, {best['alpha_upper']})")


if __name__ == "__main__":
    run(app)
