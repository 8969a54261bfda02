"""α-profile search on labelled queries: a budgeted optimizer (optuna) over one α per group of consecutive layers.

The paper chooses (alpha_lower, alpha_upper) on a 5 x 5 grid. A profile generalises the pair to K groups
(`mixing.group_bounds`: an even split, K = 2 at the paper's split layer); the search asks a seeded optuna sampler
(`tpe`, `cmaes`, `random`, or `grid` over given α values: `grid` with K = 2 evaluates exactly the grid sweep's
points) for profiles, and scores each one like a grid point: merged in memory (`AlphaSweep`, only tensors whose α
changed rewritten), encoded from the deepest cached group boundary whose prefix is unchanged (`prefixcache`),
searched and scored on the labelled split. The objective is what selection maximises: the mean per-query nDCG@10
over the chosen queries (all of the split's, or a training file's, `--queries`). `budget` counts distinct
profiles; a profile the sampler proposes again is answered from its first score.

Output: the grid artifact (`grid.json`, stage `sweep`, so selection, the report and sweep.py's replacement rule read
it) with `groups`, `bounds` and a `search` block {sampler, seed, budget, step, values, order, objective}; every
point is `points/<code>_..._<code>/{metrics.json, run.trec}` with its `profile` (K = 2: also alpha_lower,
alpha_upper, and the grid's folder name).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

from ..encoding.encode import split_embeddings
from ..errors import MergeirError
from ..io import atomic_dir, write_json
from ..merging.alphas import parse_grid
from ..merging.mixing import group_bounds
from ..merging.profiles import MIN_STEP, lattice_profiles, profile_code
from ..models.checkpoints import open_checkpoint
from ..models.dtypes import torch_dtype
from ..provenance import tool_versions
from .grid_search import SWEEP_STAGE, SweepInputs, open_sweep, score_point
from .memory import hidden_bytes, host_cache_default
from .selection import TIE_RULE, check_same_collection, mean_of, primary_metric, read_query_ids

SAMPLERS = ("tpe", "cmaes", "random", "grid")
MAX_REPEATS = 20  # proposals per budgeted evaluation before a sampler that only repeats itself is stopped


def make_sampler(name: str, seed: int, groups: int, values: list[float] | None, step: float | None):
    import warnings

    import optuna

    with warnings.catch_warnings():  # multivariate TPE and CMA-ES with margin are "experimental" in optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _sampler(optuna, name, seed, groups, values, step)


def _sampler(optuna, name: str, seed: int, groups: int, values, step):
    if name == "grid":
        return optuna.samplers.GridSampler({f"a{i}": values for i in range(groups)}, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, with_margin=step is not None,
                                            warn_independent_sampling=False)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise MergeirError(f"--search {name!r}: expected one of {', '.join(SAMPLERS)}")


def check_search(groups: int, sampler: str, budget: int, step: float | None, values) -> None:
    if sampler not in SAMPLERS:
        raise MergeirError(f"--search {sampler!r}: expected one of {', '.join(SAMPLERS)}")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise MergeirError(f"--budget must be an integer >= 1 (profiles evaluated), got {budget}")
    if step is not None and not 0 < step <= 1:
        raise MergeirError(f"--step must be within (0, 1], got {step}")
    if step is not None and step < MIN_STEP:
        raise MergeirError(f"--step must be at least {MIN_STEP} (finer alphas are one alpha to the grid), got {step}")
    # (a bad --groups is refused where the models' layers are known)
    lattice = sampler != "grid" and step is not None and isinstance(groups, int) and groups >= 1
    room = lattice_profiles(step, groups, budget) if lattice else budget
    if room < budget:
        raise MergeirError(f"--budget {budget} is more than the {room} distinct profiles of {groups} groups on the "
                           f"--step {step} lattice: the search could never stop")
    if sampler == "grid" and values is None:
        raise MergeirError("--search grid needs --grid (the α values each group takes)")


def _objective_queries(queries, coll, split: str, split_qids: list[str]) -> tuple[list[str] | None, dict]:
    """The query ids the objective averages over (None: all the split's) and how they were chosen."""
    if queries is None:
        return None, {"source": "split", "n": len(split_qids)}
    ids, source, sidecar = read_query_ids(queries)
    check_same_collection(sidecar, SimpleNamespace(collection=coll.name, collection_checksum=coll.checksum,
                                                   root=Path(split)), queries)
    known = set(split_qids)
    missing = [q for q in ids if q not in known]
    if missing:
        raise MergeirError(f"--queries {queries}: {len(missing)} query ids are not judged in split {split} "
                           f"(e.g. {', '.join(missing[:5])})")
    return sorted(ids), {"source": source, "file": Path(queries).name, "n": len(ids), "query_ids": sorted(ids)}


def run_search(source, domain, collection, out, *, groups: int = 4, sampler: str = "tpe", seed: int = 0,
               budget: int = 25, grid: Sequence[float] | None = None, step: float | None = 0.05,
               split_layer: int | None = None, queries=None, split: str | None = None,
               restore_source_embeddings: bool = True, pooling: str = "last", max_length: int | None = None,
               batch_size: int = 16, dtype: str = "float32", device: str | None = "auto", query_instruction: Any = None,
               depth: int = 100, progress: bool = False, allow_eval_split: bool = False, force: bool = False,
               max_batch_tokens: int | None = None, cache_bytes: int | None = None, log=None) -> dict:
    """Search `budget` profiles of `groups` alphas; returns the grid.json document (plus `seconds`, `memory`)."""
    import optuna

    values = None if grid is None or sampler != "grid" else parse_grid(grid)  # the α values of the grid sampler
    check_search(groups, sampler, budget, step, values)
    if split_layer is not None and groups != 2:
        raise MergeirError(f"--split-layer applies to 2 groups only (--groups {groups} splits the layers evenly)")
    started = time.perf_counter()
    sweep_in = SweepInputs(source, domain, collection, split=split, allow_eval_split=allow_eval_split, depth=depth)
    coll = sweep_in.coll
    bounds = group_bounds(open_checkpoint(source, "--source").num_layers, groups, split_layer)
    qids, objective = _objective_queries(queries, coll, sweep_in.split, sorted(sweep_in.qrels))
    out = Path(out)
    with atomic_dir(out, stage=SWEEP_STAGE, inputs=sweep_in.guarded(), force=force) as tmp:
        from .prefixcache import PrefixEncoder

        def with_cache(estimate, prepared, config):
            """The prefix cache: hidden states of the whole split at up to K - 1 group boundaries, within the
            budget (default: the layer cache's)."""
            itemsize = torch_dtype(dtype).itemsize
            per_boundary = sum(hidden_bytes(ids, int(config.hidden_size), itemsize)
                               for p in (prepared.queries, prepared.corpus) for ids, _ in p.batches)
            budget = cache_bytes
            if budget is None:
                free = estimate.available_bytes
                budget = host_cache_default(estimate.device, None if free is None else free - estimate.device_bytes)
            keep = min(groups - 1, budget // per_boundary if per_boundary else 0)
            return dataclasses.replace(estimate, cache_bytes=keep * per_boundary)

        env = open_sweep(sweep_in, pooling=pooling, max_length=max_length, batch_size=batch_size, dtype=dtype,
                         device=device, query_instruction=query_instruction, max_batch_tokens=max_batch_tokens,
                         split_layer=split_layer if groups == 2 else None,
                         restore_source_embeddings=restore_source_embeddings, layer_cache=False, cache_bytes=None,
                         log=log, adjust_estimate=with_cache)
        sweep, prepared, estimate = env.sweep, env.prepared, env.estimate
        encoder = PrefixEncoder(env.model, sweep, prepared, bounds, estimate.cache_bytes)
        evaluated: dict[tuple[float, ...], float] = {}
        points, order = [], []

        def evaluate_profile(profile: tuple[float, ...]) -> float:
            q, d = encoder.encode(profile)
            rel = f"points/{profile_code(profile)}"
            pair = dict(zip(("alpha_lower", "alpha_upper"), profile)) if groups == 2 else {}
            tags = {"profile": ",".join(repr(a) for a in profile), **pair}
            emb = split_embeddings(env.model, prepared, q, d, {**env.model_meta, **tags})
            metrics = score_point(env, tmp, rel, emb, tags=tags,
                                  merge={"profile": list(profile), "groups": groups, "bounds": bounds, **pair,
                                         "equivalent_to": "bin/merge.py --method linear --profile "
                                         f"{tags['profile']} with the same K and dtype"})
            per_query = metrics["per_query"]
            metric = primary_metric(per_query, rel)
            value = mean_of({k: v[metric] for k, v in per_query.items()}, qids)
            points.append({"profile": list(profile), **pair, "ndcg_cut_10": metrics["mean"].get("ndcg_cut_10"),
                           "objective": value, "dir": rel, "evaluation": len(order) + 1})
            order.append(rel)
            return value

        def objective_fn(trial) -> float:
            suggest = {"step": step} if sampler != "grid" and step is not None else {}
            profile = tuple(round(trial.suggest_float(f"a{i}", 0.0, 1.0, **suggest), 10) for i in range(groups))
            if profile not in evaluated:
                evaluated[profile] = evaluate_profile(profile)
            return evaluated[profile]

        def stop_at_budget(study, _trial) -> None:
            if len(evaluated) >= budget:
                study.stop()

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize",
                                    sampler=make_sampler(sampler, seed, groups, values, step))
        cap = budget * MAX_REPEATS if sampler != "grid" else min(budget, len(values) ** groups)
        study.optimize(objective_fn, n_trials=cap, callbacks=[stop_at_budget])
        sweep.close()
        doc = {
            **env.record(),
            "grid": values or [],
            "split_layer": bounds[1] if groups == 2 else None,  # K of the pair; other profiles: the bounds
            "groups": groups,
            "bounds": bounds,
            "layer_cache": encoder.keep > 0,
            "search": {"sampler": sampler, "seed": seed, "budget": budget, "step": None if sampler == "grid" else step,
                       "values": values, "order": order, "n_trials": len(study.trials),
                       "cached_boundaries": encoder.keep, "groups_run": encoder.groups_run,
                       "objective": {**objective, "metric": "mean per-query nDCG@10 (JQaRA: jqara_ndcg@10)",
                                     "tie_rule": TIE_RULE}, "optuna": optuna.__version__},
            "points": sorted(points, key=lambda p: p["profile"]),
            "tools": tool_versions(),
        }
        write_json(tmp / "grid.json", doc)
    doc.update(memory=estimate.as_dict(), seconds=time.perf_counter() - started)
    return doc
