"""The α grid search on labelled queries: every grid point merged in memory (`alphasweep.AlphaSweep`: the model on
its device, source and domain memory-mapped on the host), its split encoded, searched and scored — no merged model
is written to disk. With the layer-split cache (`layercache`, the default) layers [0, K) run once per alpha_lower.
A memory estimate (`memory.sweep_estimate`) is printed and checked before the model is loaded.

A sweep can be split by alpha_lower (`alpha_lowers`: a partial grid, `"partial"` in grid.json) and the parts
gathered into the grid artifact of the whole sweep (`gather.gather_grid`).

Output (the grid artifact of docs/interfaces.md): `grid.json` {collection, split, eval_split, grid, points:
[{alpha_lower, alpha_upper, ndcg_cut_10, dir}], ...} and `points/<al>_<au>/{metrics.json, run.trec}`, folder codes
as the authors wrote them (00, 025, 05, 075, 10). The split is recorded everywhere: α selection refuses a grid
evaluated on the evaluation split.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

from ..collections import load_collection
from ..collections.splits import evaluation_splits
from ..encoding.encode import FROM_COLLECTION, encode_split, prepare_split, split_embeddings
from ..encoding.loading import check_max_length, load_encoder, load_tokenizer, resolve_device
from ..errors import MergeirError
from ..evaluation.metrics import evaluate, results_record, write_trec
from ..evaluation.retrieval import search_collection
from ..io import Stage, atomic_dir, write_json
from ..merging.alphas import DEFAULT_GRID, alpha_code, parse_grid, same_alpha
from ..models.checkpoints import check_compatible, open_checkpoint
from ..models.dtypes import torch_dtype
from ..models.identity import describe_model
from ..provenance import tool_versions
from .alphasweep import AlphaSweep
from .memory import sweep_estimate

SWEEP_STAGE = Stage("sweep", "grid.json", legacy=("points", "grid", "split"))  # grid.json names the stage


def _subset(alpha_lowers: Sequence[float], grid: list[float]) -> list[float]:
    """The grid's alpha_lower rows a partial sweep evaluates, in the grid's order."""
    wanted = parse_grid(alpha_lowers)
    for a in wanted:
        if not any(same_alpha(a, g) for g in grid):
            raise MergeirError(f"--alpha-lower {a} is not a value of --grid {','.join(map(str, grid))}")
    return [g for g in grid if any(same_alpha(a, g) for a in wanted)]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class SweepInputs:
    """Source, domain and the labelled split of a collection, checked before the output folder is touched: the split
    (default: the collection's train_split) must be judged and must not be the evaluation split."""

    def __init__(self, source, domain, collection, *, split: str | None, allow_eval_split: bool, depth: int):
        if depth < 1:
            raise MergeirError(f"--depth must be >= 1, got {depth}")
        self.source, self.domain, self.collection, self.depth = source, domain, collection, depth
        self.coll = coll = load_collection(collection)
        if split is None:
            split = coll.train_split
            if split is None:
                raise MergeirError(f"collection {collection} has no train_split (labelled queries): pass --split")
        self.qrels = coll.qrels(split)  # an unknown split fails here, naming the collection's splits
        if not allow_eval_split and split in evaluation_splits(coll.name, coll.eval_split):
            raise MergeirError(f"--split {split} is the evaluation split of collection {collection}: α chosen there "
                               "would be tuned on the test queries (pass --allow-eval-split to sweep it anyway)")
        self.split = split
        self.candidates = coll.candidates(split)

    def guarded(self) -> dict:
        """The inputs the output folder must not overwrite (atomic_dir's guard)."""
        return {"--source": self.source, "--domain": self.domain, "--collection": self.collection}


@dataclass
class SweepEnv:
    """What every point of a sweep or search shares: the split's texts prepared once, the encoder loaded from the
    source with its `AlphaSweep`, the memory estimate, and how the points' results are recorded."""

    inputs: SweepInputs
    model: Any
    sweep: AlphaSweep
    prepared: Any
    estimate: Any
    length: int
    dtype: str
    pooling: str
    batch_size: int
    max_batch_tokens: int | None
    restore: bool

    @property
    def model_meta(self) -> dict:
        source, domain = (Path(p).resolve() for p in (self.inputs.source, self.inputs.domain))
        return {**describe_model(self.inputs.source), "model": f"in-memory merge of {source} and {domain}"}

    def input_records(self) -> dict:
        return {"source": self.sweep.source.input_record(), "domain": self.sweep.domain.input_record()}

    def record(self) -> dict:
        """grid.json's fields that describe the sweep rather than its points."""
        coll = self.inputs.coll
        return {"stage": SWEEP_STAGE.name, "collection": coll.name, "collection_checksum": coll.checksum,
                "split": self.inputs.split, "eval_split": coll.eval_split, "split_layer": self.sweep.split_layer,
                "num_layers": self.sweep.source.num_layers, "restore_source_embeddings": self.restore,
                "dtype": self.dtype, "pooling": self.pooling, "max_length": self.length,
                "batch_size": self.batch_size, "max_batch_tokens": self.max_batch_tokens,
                "query_instruction": self.prepared.query_instruction, "depth": self.inputs.depth,
                "n_queries": len(self.prepared.query_ids), "n_ranked_docs": len(self.prepared.corpus_ids),
                "inputs": self.input_records()}


def open_sweep(inputs: SweepInputs, *, pooling: str, max_length: int | None, batch_size: int, dtype: str,
               device: str | None, query_instruction: Any, max_batch_tokens: int | None, split_layer: int | None,
               restore_source_embeddings: bool, layer_cache: bool, cache_bytes: int | None, log=None,
               adjust_estimate=None) -> SweepEnv:
    """Prepare the split, print and check the memory estimate (`adjust_estimate(estimate, prepared, config)` may
    replace it first), then load the encoder and its AlphaSweep."""
    from transformers import AutoConfig

    source, domain = inputs.source, inputs.domain
    resolve_device(device)
    tokenizer = load_tokenizer(source)
    config = AutoConfig.from_pretrained(str(source), trust_remote_code=False)
    length = check_max_length(SimpleNamespace(config=config), max_length)
    prepared = prepare_split(tokenizer, inputs.coll, inputs.split, pooling=pooling, max_length=length,
                             batch_size=batch_size,
                             query_instruction=FROM_COLLECTION if query_instruction is None else query_instruction,
                             max_batch_tokens=max_batch_tokens)
    src, dom = open_checkpoint(source, "--source"), open_checkpoint(domain, "--domain")
    check_compatible(src, dom)
    k = src.num_layers // 2 if split_layer is None else split_layer
    estimate = sweep_estimate(src, dom, config, torch_dtype(dtype), resolve_device(device),
                              prepared, restore=restore_source_embeddings, layer_cache=layer_cache and k > 0,
                              cache_budget=cache_bytes)
    if adjust_estimate is not None:
        estimate = adjust_estimate(estimate, prepared, config)
    (log or _stderr)(estimate.describe())
    estimate.check()  # before the model is loaded
    model, _ = load_encoder(source, dtype=dtype, device=device)
    sweep = AlphaSweep(model, source, domain, split_layer=split_layer,
                       restore_source_embeddings=restore_source_embeddings)
    return SweepEnv(inputs, model, sweep, prepared, estimate, length, dtype, pooling, batch_size, max_batch_tokens,
                    restore_source_embeddings)


def score_point(env: SweepEnv, tmp: Path, rel: str, emb, *, tags: dict, merge: dict) -> dict:
    """Search and score one point's embeddings on the split; writes `rel`/{run.trec, metrics.json} under `tmp` and
    returns the metrics.json document. `merge`: what the point's merge is (recorded in its provenance)."""
    inp = env.inputs
    run = search_collection(inp.coll, inp.split, emb.queries, emb.query_ids, emb.corpus, emb.corpus_ids,
                            depth=inp.depth)
    metrics = evaluate(run, inp.qrels, candidates=inp.candidates)
    (tmp / rel).mkdir(parents=True)
    write_trec(run, tmp / rel / "run.trec")
    merge = {"method": "linear", "split_layer": env.sweep.split_layer, "dtype": env.dtype,
             "restore_source_embeddings": env.restore,
             "equivalent_to": "bin/merge.py --method linear with the same alphas, K and dtype", **merge}
    metrics = results_record(
        metrics, inp.coll, inp.collection, inp.split, tags={"collection": inp.coll.name, "arm": "merge", **tags},
        embeddings_meta=emb.meta, run_path=tmp / rel / "run.trec", depth=inp.depth, n_queries=len(emb.query_ids),
        provenance={"stage": SWEEP_STAGE.name, "n_ranked_docs": len(emb.corpus_ids), "merge": merge,
                    "inputs": env.input_records()})
    write_json(tmp / rel / "metrics.json", metrics)
    return metrics


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
    inputs = SweepInputs(source, domain, collection, split=split, allow_eval_split=allow_eval_split, depth=depth)
    resolve_device(device)
    out = Path(out)
    started = time.perf_counter()
    with atomic_dir(out, stage=SWEEP_STAGE, inputs=inputs.guarded(), force=force) as tmp:
        # lazy: layercache imports torch at load, and gather.gather_grid imports this module without needing torch
        from .layercache import encode_uppers, supported

        env = open_sweep(inputs, pooling=pooling, max_length=max_length, batch_size=batch_size, dtype=dtype,
                         device=device, query_instruction=query_instruction, max_batch_tokens=max_batch_tokens,
                         split_layer=split_layer, restore_source_embeddings=restore_source_embeddings,
                         layer_cache=layer_cache, cache_bytes=cache_bytes, log=log)
        model, sweep, prepared, estimate = env.model, env.sweep, env.prepared, env.estimate
        use_cache = layer_cache and supported(model, sweep.split_layer)
        model_meta = env.model_meta
        points = []

        def score(al: float, au: float, emb) -> None:
            rel = f"points/{alpha_code(al)}_{alpha_code(au)}"
            metrics = score_point(env, tmp, rel, emb, tags={"alpha_lower": al, "alpha_upper": au},
                                  merge={"alpha_lower": al, "alpha_upper": au})
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
            **env.record(),
            "grid": grid,
            "layer_cache": use_cache,
            "points": sorted(points, key=lambda p: (p["alpha_lower"], p["alpha_upper"])),
            "tools": tool_versions(),
            **({"partial": {"alpha_lower": sorted(lowers)}} if sorted(lowers) != sorted(grid) else {}),
        }
        write_json(tmp / "grid.json", doc)
    doc.update(tensors_rewritten=sweep.rewritten, memory=estimate.as_dict())
    doc["seconds"] = time.perf_counter() - started
    return doc
