#!/usr/bin/env python3
"""α grid search without writing merged models: source and domain are loaded once, and for every (alpha_lower,
alpha_upper) in grid x grid the linear merge is formed in memory, the split's judged queries and documents are
encoded, searched and scored. Writes grid.json + points/<al>_<au>/{metrics.json,run.trec} (codes 00, 025, 05, ...).
--search: a seeded, budgeted search over α profiles (one α per group of --groups layer groups) instead of the grid.
"""

from pathlib import Path
from typing import List, Optional

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import (Dtype, Pooling, allow_eval_split_option, attempt_option, batch_for_attempt, force_option,
                         make_app, run)
from mergeir.errors import MergeirError
from mergeir.sweep import run_search, run_sweep

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
    search: Optional[str] = typer.Option(
        None, help="search α profiles instead of the grid: tpe | cmaes | random | grid (optuna's samplers; grid: "
                   "every combination of --grid's values); writes the same artifact, one point per profile"),
    groups: int = typer.Option(4, help="--search: layer groups (one α each; 2 = the paper's alpha_lower/upper)"),
    budget: int = typer.Option(25, help="--search: profiles evaluated (the paper's grid: 25)"),
    seed: int = typer.Option(0, help="--search: the sampler's seed"),
    step: Optional[float] = typer.Option(0.05, help="--search: α step of tpe/cmaes/random (profiles on a lattice)"),
    queries: Optional[Path] = typer.Option(
        None, help="--search: the objective's queries, a training file (as select-alpha --queries) [default: all "
                   "the split's]"),
) -> None:
    if cache_gib is not None and cache_gib <= 0:
        raise MergeirError(f"--cache-gib must be > 0, got {cache_gib}")
    cache_bytes = None if cache_gib is None else int(cache_gib * (1 << 30))
    if search is not None:
        if alpha_lower:
            raise MergeirError("--alpha-lower (a partial grid) does not apply to --search")
        doc = run_search(source, domain, collection, out, groups=groups, sampler=search, seed=seed, budget=budget,
                         grid=grid, step=step, split_layer=split_layer, queries=queries, split=split,
                         restore_source_embeddings=restore_source_embeddings, pooling=pooling.value,
                         max_length=max_length, batch_size=batch_for_attempt(batch_size, attempt), dtype=dtype.value,
                         device=device, query_instruction=query_instruction, depth=depth, progress=progress,
                         allow_eval_split=allow_eval_split, force=force, max_batch_tokens=max_batch_tokens,
                         cache_bytes=cache_bytes)
        best = max(doc["points"], key=lambda p: p["objective"])
        print(f"{out}: {len(doc['points'])} profiles ({search}, K={groups}, seed {seed}) on split {doc['split']} in "
              f"{doc['seconds']:.1f} s; best objective {best['objective']:.4f} at {best['profile']}")
        return
    doc = run_sweep(source, domain, collection, out, split=split, grid=grid, split_layer=split_layer,
                    restore_source_embeddings=restore_source_embeddings, pooling=pooling.value,
                    max_length=max_length, batch_size=batch_for_attempt(batch_size, attempt), dtype=dtype.value, device=device,
                    query_instruction=query_instruction, depth=depth, progress=progress,
                    allow_eval_split=allow_eval_split, force=force, max_batch_tokens=max_batch_tokens,
                    layer_cache=layer_cache, alpha_lowers=alpha_lower or None,
                    cache_bytes=cache_bytes)
    best = max(doc["points"], key=lambda p: p["ndcg_cut_10"])
    print(f"{out}: {len(doc['points'])} points on split {doc['split']} ({doc['n_queries']} queries) in "
          f"{doc['seconds']:.1f} s; best nDCG@10 {best['ndcg_cut_10']:.4f} at "
          f"({best['alpha_lower']}, {best['alpha_upper']})")


if __name__ == "__main__":
    run(app)
