#!/usr/bin/env python3
"""Search a collection with its embeddings (exact inner product) and score the run: run.trec + metrics.json."""

from pathlib import Path
from typing import List, Optional

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import force_option, make_app, run
from mergeir.evaluation import evaluate_embeddings, parse_tags

app = make_app(__doc__)


@app.command()
def main(
    embeddings: Path = typer.Option(..., help="embeddings folder (queries.npy, corpus.npy, *.ids, meta.json)"),
    collection: Path = typer.Option(..., help="collection folder the embeddings were made from"),
    out: Path = typer.Option(..., help="results folder to create (run.trec, metrics.json)"),
    split: Optional[str] = typer.Option(None, help="qrels split to score [default: the collection's eval_split]"),
    depth: int = typer.Option(1000, min=1, help="documents kept per query"),
    drop_first_qrel: bool = typer.Option(
        False, "--drop-first-qrel", help="drop the qrels file's first judgment, as the authors' BEIR loader did"
    ),
    tag: List[str] = typer.Option([], help="KEY=VALUE recorded under tags in metrics.json (repeatable)"),
    force: bool = force_option(),
) -> None:
    tags = parse_tags(tag)
    m = evaluate_embeddings(embeddings, collection, out, split=split, depth=depth,
                            drop_first_qrel=drop_first_qrel, tags=tags, force=force)
    mean = m["mean"]
    shown = {k: mean[k] for k in ("ndcg_cut_10", "jqara_ndcg@10") if k in mean}
    print(f"{m['collection']} {m['split']}: " + ", ".join(f"{k}={v:.5f}" for k, v in shown.items()) + f" -> {out}")


if __name__ == "__main__":
    run(app)
