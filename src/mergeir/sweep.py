"""The α grid search on labelled queries: source and domain loaded once, every grid point merged in memory
(`merging.AlphaSweep`), its split encoded, searched and scored — no merged model is written to disk.

Output (the grid artifact of docs/interfaces.md): `grid.json` {collection, split, eval_split, grid, points:
[{alpha_lower, alpha_upper, ndcg_cut_10, dir}], ...} and `points/<al>_<au>/{metrics.json, run.trec}`, folder codes
as the authors wrote them (00, 025, 05, 075, 10). The split is recorded everywhere: α selection refuses a grid
evaluated on the evaluation split.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

from .errors import MergeirError
from .io import atomic_dir, sha256_file, write_json
from .merging import AlphaSweep, check_alpha
from .provenance import tool_versions

DEFAULT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def alpha_code(alpha: float) -> str:
    """The authors' folder code: the decimal without its point (0.0 -> 00, 0.25 -> 025, 0.5 -> 05, 1.0 -> 10)."""
    return repr(float(alpha)).replace(".", "")


def parse_grid(text: str | Sequence[float]) -> list[float]:
    """'0,0.25,0.5' -> [0.0, 0.25, 0.5]: each within [0, 1], no duplicates, kept in the given order."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[float] = []
    for item in items:
        try:
            a = float(item)
        except (TypeError, ValueError):
            raise MergeirError(f"--grid: {item!r} is not a number") from None
        check_alpha(a, "--grid value")
        if any(math.isclose(a, b) for b in out):
            raise MergeirError(f"--grid: {a} appears twice")
        out.append(a)
    if not out:
        raise MergeirError("--grid is empty")
    return out


def run_sweep(source: str | os.PathLike, domain: str | os.PathLike, collection: str | os.PathLike,
              out: str | os.PathLike, *, split: str | None = None, grid: Sequence[float] = DEFAULT_GRID,
              split_layer: int | None = None, restore_source_embeddings: bool = True, pooling: str = "last",
              max_length: int | None = None, batch_size: int = 16, dtype: str = "float32", device: str | None = "auto",
              query_instruction: Any = None, depth: int = 100, progress: bool = False) -> dict:
    """Evaluate every (alpha_lower, alpha_upper) of grid × grid on `split` (default: the collection's train_split).

    Points are visited alpha_lower-major in a snake order (alpha_upper ascending, then descending, ...), so
    consecutive points differ in one half only and only that half's tensors are rewritten. Returns the grid.json
    document (points sorted by alpha_lower, alpha_upper).
    """
    from .collections import load_collection
    from .encoding import (FROM_COLLECTION, check_max_length, describe_model, encode_split, load_encoder,
                           prepare_split, resolve_device)
    from .evaluation import evaluate, write_trec
    from .retrieval import search_collection

    grid = parse_grid(grid)
    if depth < 1:
        raise MergeirError(f"--depth must be >= 1, got {depth}")
    coll = load_collection(collection)
    if split is None:
        split = coll.train_split
        if split is None:
            raise MergeirError(f"collection {collection} has no train_split (labelled queries): pass --split")
    qrels = coll.qrels(split)  # an unknown split fails here, naming the collection's splits
    candidates = coll.candidates(split)
    resolve_device(device)
    out = Path(out)
    started = time.perf_counter()
    with atomic_dir(out) as tmp:
        model, tokenizer = load_encoder(source, dtype=dtype, device=device)
        sweep = AlphaSweep(model, source, domain, split_layer=split_layer,
                           restore_source_embeddings=restore_source_embeddings)
        length = check_max_length(model, max_length)
        prepared = prepare_split(tokenizer, coll, split, pooling=pooling, max_length=length, batch_size=batch_size,
                                 query_instruction=FROM_COLLECTION if query_instruction is None else query_instruction)
        inputs = {"source": sweep.source.input_record(), "domain": sweep.domain.input_record()}
        points = []
        rewritten = 0
        for i, al in enumerate(grid):
            for au in (grid if i % 2 == 0 else grid[::-1]):
                rewritten += sweep.set(al, au)
                emb = encode_split(model, prepared, progress=progress, extra_meta={
                    **describe_model(source), "model": f"in-memory merge of {Path(source).resolve()} and "
                    f"{Path(domain).resolve()}", "alpha_lower": al, "alpha_upper": au})
                run = search_collection(coll, split, emb.queries, emb.query_ids, emb.corpus, emb.corpus_ids,
                                        depth=depth)
                metrics = evaluate(run, qrels, candidates=candidates)
                rel = f"points/{alpha_code(al)}_{alpha_code(au)}"
                (tmp / rel).mkdir(parents=True)
                write_trec(run, tmp / rel / "run.trec")
                metrics.update({
                    "split": split,
                    "collection": coll.name,
                    "tags": {"collection": coll.name, "arm": "merge", "alpha_lower": al, "alpha_upper": au},
                    "embeddings_meta": emb.meta,
                    "provenance": {
                        "stage": "sweep",
                        "collection_root": str(Path(collection).resolve()),
                        "collection_checksum": coll.checksum,
                        "run_sha256": sha256_file(tmp / rel / "run.trec"),
                        "depth": depth,
                        "n_queries": len(emb.query_ids),
                        "n_ranked_docs": len(emb.corpus_ids),
                        "merge": {"method": "linear", "alpha_lower": al, "alpha_upper": au,
                                  "split_layer": sweep.split_layer, "dtype": dtype,
                                  "restore_source_embeddings": restore_source_embeddings,
                                  "equivalent_to": "bin/merge.py --method linear with the same alphas, K and dtype"},
                        "inputs": inputs,
                        "tools": tool_versions(),
                    },
                })
                write_json(tmp / rel / "metrics.json", metrics)
                points.append({"alpha_lower": al, "alpha_upper": au,
                               "ndcg_cut_10": metrics["mean"].get("ndcg_cut_10"), "dir": rel})
        doc = {
            "collection": coll.name,
            "split": split,
            "eval_split": coll.eval_split,
            "grid": grid,
            "split_layer": sweep.split_layer,
            "num_layers": sweep.source.num_layers,
            "restore_source_embeddings": restore_source_embeddings,
            "dtype": dtype,
            "pooling": pooling,
            "max_length": length,
            "query_instruction": prepared.query_instruction,
            "depth": depth,
            "n_queries": len(prepared.query_ids),
            "n_ranked_docs": len(prepared.corpus_ids),
            "points": sorted(points, key=lambda p: (p["alpha_lower"], p["alpha_upper"])),
            "inputs": inputs,
            "tensors_rewritten": rewritten,
            "tools": tool_versions(),
        }
        write_json(tmp / "grid.json", doc)
    doc["seconds"] = time.perf_counter() - started
    return doc
