#!/usr/bin/env python3
"""Gather the parts of a split job into the artifact the single job would have written: encoding shards
(`bin/encode.py --shard I --shards N`) into one embeddings folder, byte-identical to the unsharded one, and partial
grids (`bin/sweep.py --alpha-lower A`) into one grid folder."""

from pathlib import Path
from typing import List

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import force_option, make_app, run
from mergeir.encoding import gather_embeddings
from mergeir.sweep import gather_grid

app = make_app(__doc__)


@app.command()
def embeddings(
    shard: List[Path] = typer.Option(..., help="shard folder; one per shard, in any order (repeatable)"),
    out: Path = typer.Option(..., help="embeddings folder to create (replaced only when complete)"),
    force: bool = force_option(),
) -> None:
    """Join encoding shards into one embeddings folder."""
    meta = gather_embeddings(shard, out, force=force)
    print(f"{out}: {meta['n_queries']} queries, {meta['n_corpus']} documents from {len(shard)} shards")


@app.command()
def grid(
    part: List[Path] = typer.Option(..., help="partial grid folder; together they cover the grid (repeatable)"),
    out: Path = typer.Option(..., help="grid folder to create (replaced only when complete)"),
    force: bool = force_option(),
) -> None:
    """Join partial α grids (split by alpha_lower) into one grid folder."""
    doc = gather_grid(part, out, force=force)
    print(f"{out}: {len(doc['points'])} points from {len(part)} partial grids")


if __name__ == "__main__":
    run(app)
