"""The α grid search on labelled queries: every grid point merged in memory (`alphasweep.AlphaSweep`: the model on
its device, source and domain memory-mapped on the host), its split encoded, searched and scored — no merged model
is written to disk. With the layer-split cache (`layercache`, the default) layers [0, K) run once per alpha_lower.
A memory estimate (`memory.sweep_estimate`) is printed and checked before the model is loaded.

A sweep can be split by alpha_lower (`alpha_lowers`: a partial grid, `"partial"` in grid.json) and the parts
gathered into the grid artifact of the whole sweep (`shards.gather_grid`).

Output (the grid artifact of docs/interfaces.md): `grid.json` {collection, split, eval_split, grid, points:
[{alpha_lower, alpha_upper, ndcg_cut_10, dir}], ...} and `points/<al>_<au>/{metrics.json, run.trec}`, folder codes
as the authors wrote them (00, 025, 05, 075, 10). The split is recorded everywhere: α selection refuses a grid
evaluated on the evaluation split.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

from .alphas import DEFAULT_GRID, alpha_code, parse_grid  # noqa: F401 (re-exported)
from .alphasweep import AlphaSweep
from .collections import load_collection
from .dtypes import torch_dtype
from .encoding import (FROM_COLLECTION, check_max_length, describe_model, encode_split, load_encoder, load_tokenizer,
                       prepare_split, resolve_device, split_embeddings)
from .errors import MergeirError
from .evaluation import evaluate, results_record, write_trec
from .io import Stage, atomic_dir, write_json
from .memory import sweep_estimate
from .models import check_compatible, open_checkpoint
from .provenance import tool_versions
from .retrieval import search_collection
from .splits import evaluation_splits

SWEEP_STAGE = Stage("sweep", "grid.json", legacy=("points", "grid", "split"))  # grid.json names the stage


def _subset(alpha_lowers: Sequence[float], grid: list[float]) -> list[float]:
    """The grid's alpha_lower rows a partial sweep evaluates, in the grid's order."""
    wanted = parse_grid(alpha_lowers)
    for a in wanted:
        if not any(math.isclose(a, g) for g in grid):
            raise MergeirError(f"--alpha-lower {a} is not a value of --grid {','.join(map(str, grid))}")
    return [g for g in grid if any(math.isclose(a, g) for a in wanted)]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_sweep(source: str | os.PathLike, domain: str | os.PathLike, collection: str | os.PathLike,
              out: str | os.PathLike, *, split: str | None = None, grid: Sequence[float] = DEFAULT_GRID,
              split_layer: int | None = None, restore_source_embeddings: bool = True, pooling: str = "last",
              max_length: int | None = None, batch_size: int = 16, dtype: str = "float32", device: str | None = "auto",
              query_instruction: Any = None, depth: int = 100, progress: bool = False,
              allow_eval_split: bool = False, force: bool = False, max_batch_tokens: int | None = None,
              layer_cache: bool = True, cache_bytes: int | None = None, alpha_lowers: Sequence[float] | None = None,
              log=None) -> dict:
    """Evaluate every (alpha_lower, alpha_upper) of grid × grid on `split` (default: the collection's train_split).

    Points are visited alpha_lower-major in a snake order (alpha_upper ascending, then descending, ...), so
    consecutive points differ in one half only and only that half's tensors are rewritten. Returns the grid.json
    document (points sorted by alpha_lower, alpha_upper) with, beside what grid.json holds, `seconds`,
    `tensors_rewritten` and `memory` (the estimate). `alpha_lowers`: only these rows of the grid (a partial grid);
    `layer_cache=False`: the plain path (every point encoded through all layers); `cache_bytes`: the cache's
    budget on the model's device; `log`: where the estimate is printed (default: stderr).
    """
    grid = parse_grid(grid)
    lowers = grid if alpha_lowers is None else _subset(alpha_lowers, grid)
    if depth < 1:
        raise MergeirError(f"--depth must be >= 1, got {depth}")
    coll = load_collection(collection)
    if split is None:
        split = coll.train_split
        if split is None:
            raise MergeirError(f"collection {collection} has no train_split (labelled queries): pass --split")
    qrels = coll.qrels(split)  # an unknown split fails here, naming the collection's splits
    if not allow_eval_split and split in evaluation_splits(coll.name, coll.eval_split):
        raise MergeirError(f"--split {split} is the evaluation split of collection {collection}: α chosen there "
                           "would be tuned on the test queries (pass --allow-eval-split to sweep it anyway)")
    candidates = coll.candidates(split)
    resolve_device(device)
    out = Path(out)
    started = time.perf_counter()
    inputs = {"--source": source, "--domain": domain, "--collection": collection}
    with atomic_dir(out, stage=SWEEP_STAGE, inputs=inputs, force=force) as tmp:
        from transformers import AutoConfig

        # lazy: layercache imports torch at load, and shards.gather_grid imports this module without needing torch
        from .layercache import encode_uppers, supported

        tokenizer = load_tokenizer(source)
        config = AutoConfig.from_pretrained(str(source), trust_remote_code=False)
        length = check_max_length(SimpleNamespace(config=config), max_length)
        prepared = prepare_split(tokenizer, coll, split, pooling=pooling, max_length=length, batch_size=batch_size,
                                 query_instruction=FROM_COLLECTION if query_instruction is None else query_instruction,
                                 max_batch_tokens=max_batch_tokens)
        src, dom = open_checkpoint(source, "--source"), open_checkpoint(domain, "--domain")
        check_compatible(src, dom)
        k = src.num_layers // 2 if split_layer is None else split_layer
        estimate = sweep_estimate(src, dom, config, torch_dtype(dtype), resolve_device(device),
                                  prepared, restore=restore_source_embeddings, layer_cache=layer_cache and k > 0,
                                  cache_budget=cache_bytes)
        (log or _stderr)(estimate.describe())
        estimate.check()  # before the model is loaded
        model, _ = load_encoder(source, dtype=dtype, device=device)
        sweep = AlphaSweep(model, source, domain, split_layer=split_layer,
                           restore_source_embeddings=restore_source_embeddings)
        use_cache = layer_cache and supported(model, sweep.split_layer)
        inputs = {"source": sweep.source.input_record(), "domain": sweep.domain.input_record()}
        model_meta = {**describe_model(source), "model": f"in-memory merge of {Path(source).resolve()} and "
                      f"{Path(domain).resolve()}"}
        points = []

        def score(al: float, au: float, emb) -> None:
            run = search_collection(coll, split, emb.queries, emb.query_ids, emb.corpus, emb.corpus_ids, depth=depth)
            metrics = evaluate(run, qrels, candidates=candidates)
            rel = f"points/{alpha_code(al)}_{alpha_code(au)}"
            (tmp / rel).mkdir(parents=True)
            write_trec(run, tmp / rel / "run.trec")
            merge = {"method": "linear", "alpha_lower": al, "alpha_upper": au, "split_layer": sweep.split_layer,
                     "dtype": dtype, "restore_source_embeddings": restore_source_embeddings,
                     "equivalent_to": "bin/merge.py --method linear with the same alphas, K and dtype"}
            metrics = results_record(
                metrics, coll, collection, split,
                tags={"collection": coll.name, "arm": "merge", "alpha_lower": al, "alpha_upper": au},
                embeddings_meta=emb.meta, run_path=tmp / rel / "run.trec", depth=depth, n_queries=len(emb.query_ids),
                provenance={"stage": SWEEP_STAGE.name, "n_ranked_docs": len(emb.corpus_ids), "merge": merge,
                            "inputs": inputs})
            write_json(tmp / rel / "metrics.json", metrics)
            points.append({"alpha_lower": al, "alpha_upper": au,
                           "ndcg_cut_10": metrics["mean"].get("ndcg_cut_10"), "dir": rel})

        for i, al in enumerate(lowers):
            uppers = grid if i % 2 == 0 else grid[::-1]  # snake order: consecutive points differ in one half
            if use_cache:
                vectors = encode_uppers(model, sweep, prepared, al, uppers, estimate.cache_bytes, progress)
                for au in uppers:
                    meta = {**model_meta, "alpha_lower": al, "alpha_upper": au}
                    score(al, au, split_embeddings(model, prepared, *vectors[au], meta))
                del vectors
                continue
            for au in uppers:
                sweep.set(al, au)
                score(al, au, encode_split(model, prepared, progress=progress,
                                           extra_meta={**model_meta, "alpha_lower": al, "alpha_upper": au}))
        sweep.close()
        doc = {
            "stage": SWEEP_STAGE.name,
            "collection": coll.name,
            "collection_checksum": coll.checksum,
            "split": split,
            "eval_split": coll.eval_split,
            "grid": grid,
            "split_layer": sweep.split_layer,
            "num_layers": sweep.source.num_layers,
            "restore_source_embeddings": restore_source_embeddings,
            "dtype": dtype,
            "pooling": pooling,
            "max_length": length,
            "batch_size": batch_size,
            "max_batch_tokens": max_batch_tokens,
            "layer_cache": use_cache,
            "query_instruction": prepared.query_instruction,
            "depth": depth,
            "n_queries": len(prepared.query_ids),
            "n_ranked_docs": len(prepared.corpus_ids),
            "points": sorted(points, key=lambda p: (p["alpha_lower"], p["alpha_upper"])),
            "inputs": inputs,
            "tools": tool_versions(),
            **({"partial": {"alpha_lower": sorted(lowers)}} if sorted(lowers) != sorted(grid) else {}),
        }
        write_json(tmp / "grid.json", doc)
    doc.update(tensors_rewritten=sweep.rewritten, memory=estimate.as_dict())
    doc["seconds"] = time.perf_counter() - started
    return doc
