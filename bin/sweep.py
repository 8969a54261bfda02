#!/usr/bin/env python3
"""α grid search without writing merged models: source and domain are loaded once, and for every (alpha_lower,
alpha_upper) in grid x grid the linear merge is formed in memory, the split's judged queries and documents are
encoded, searched and scored. Writes grid.json + points/<al>_<au>/{metrics.json,run.trec} (codes 00, 025, 05, ...).
"""

from pathlib import Path
from typing import Optional

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import Dtype, Pooling, make_app, run
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
    dtype: Dtype = typer.Option(Dtype.float32, help="merge and encoding dtype (as bin/merge.py --dtype)"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    depth: int = typer.Option(100, help="documents ranked per query"),
    progress: bool = typer.Option(False, help="progress bars on stderr"),
) -> None:
    doc = run_sweep(source, domain, collection, out, split=split, grid=grid, split_layer=split_layer,
                    restore_source_embeddings=restore_source_embeddings, pooling=pooling.value,
                    max_length=max_length, batch_size=batch_size, dtype=dtype.value, device=device,
                    query_instruction=query_instruction, depth=depth, progress=progress)
    best = max(doc["points"], key=lambda p: p["ndcg_cut_10"])
    print(f"{out}: {len(doc['points'])} points on split {doc['split']} ({doc['n_queries']} queries) in "
          f"{doc['seconds']:.1f} s; best nDCG@10 {best['ndcg_cut_10']:.4f} at "
          f"({best['alpha_lower']}, {best['alpha_upper']})")


if __name__ == "__main__":
    run(app)
