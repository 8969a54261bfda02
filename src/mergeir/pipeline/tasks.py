"""PLAN resolves the whole DAG: an experiment file -> one JSON task file per process.

Each row is one task: `id` (also the name of the folder it writes), `inputs` (input name -> the id of the artifact
it consumes, or None), `options` (every other argument, already computed and shell-quoted), `produces` (artifact
id -> path inside the task's output folder) and the few fields publishing needs (`collection`). A process gets
exactly the fields it uses, so `-resume` re-runs a task only when something it uses changed; every row also carries
`library`, the digest of the mergeir code that runs it. main.nf only joins rows to
artifacts by id. The one edge decided at run time is the grid-chosen alpha: SELECT_ALPHA calls
`plan.py chosen`, which builds its merged-arm rows with the same `merged_arm` as the paper-alpha plan.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import MergeirError
from ..experiment import ALPHA_SELECTIONS, SETTINGS, Experiment, parse_selection
from ..io import Stage, atomic_dir, dumps_json, sha256_file
from ..provenance import library_digest, tool_versions
from .rows import Options, Rows, _row, _short, alpha_text, option, parse_bool, parse_count  # noqa: F401 - re-exported
from .search_tasks import search_rows

FORMAT = 2
# every process main.nf calls, in DAG order (SAMPLE_FULL is MAKE_TRIALS included under a second name)
PROCESSES = ("PREPARE_COLLECTION", "DOWNLOAD_MODEL", "MAKE_TINY", "PREPARE_TRAINING", "SAMPLE_FULL", "MAKE_TRIALS",
             "LORA_TRAIN", "SWEEP", "SWEEP_PART", "GATHER_GRID", "SELECT_ALPHA", "MERGE", "ENCODE",
             "GATHER_EMBEDDINGS", "EVALUATE", "REPORT")
# the processes whose rows a grid-chosen alpha adds at run time
CHOSEN = ("MERGE", "ENCODE", "GATHER_EMBEDDINGS", "EVALUATE")
# SWEEP_PART is SWEEP on some alpha_lower rows (--sweep_shards); GATHER_* join parts: `inputs.parts` is a list of ids
LOCAL = "LOCAL"  # not a process: files of the experiment's folder that tasks read ({id, path} rows)
DEVICES = ("auto", "cpu", "cuda")
# --encode-shards at most: the planner does not read the corpus, so it cannot refuse more shards than batches;
# a shard past the batch count encodes nothing, and every ENCODE becomes this many tasks (the paper's plan has
# about 90 ENCODEs: 1000 shards are 90,000 tasks, planned in seconds, already more than any cluster queue wants)
MAX_ENCODE_SHARDS = 1000


# ---------------------------------------------------------------- the merged arm (paper alpha or grid-chosen)


def merged_arm(ctx: dict, alpha_lower: float | None, alpha_upper: float | None, selection: str,
               rows: dict | None = None, profile: list[float] | None = None) -> dict[str, list[dict]]:
    """MERGE (one per distinct source, domain and alpha, or α profile), its ENCODE on the collection, and the
    trial's EVALUATE. The arm is tagged `merged`, or `ctx["arm_tag"]` (the α search's `search` arm)."""
    rows = Rows() if rows is None else rows
    pair = f"{ctx['source'].removeprefix('model-')}-{ctx['domain'].removeprefix('model-')}"
    if profile is not None:
        texts = [alpha_text(a) for a in profile]
        merge_id = f"merged-{pair}-p{'_'.join(texts)}"
        tokens = list(ctx["merge"])
        if "--split-layer" in tokens:  # a profile's groups split the layers evenly: K does not apply
            del tokens[tokens.index("--split-layer"):tokens.index("--split-layer") + 2]
        opts, alphas = Options(tokens).add("--profile", ",".join(texts)), {"profile": ",".join(texts)}
    else:
        lo, up = alpha_text(alpha_lower), alpha_text(alpha_upper)
        merge_id = f"merged-{pair}-a{lo}_{up}"
        opts, alphas = Options(ctx["merge"]).add("--alpha-lower", lo).add("--alpha-upper", up), \
            {"alpha_lower": lo, "alpha_upper": up}
    _row(rows, "MERGE", merge_id, {"source": ctx["source"], "domain": ctx["domain"]}, opts, library=ctx["library"])
    emb = encode_rows(rows, ctx, merge_id, None, f"emb-{ctx['collection']}-{merge_id}")
    arm = ctx.get("arm_tag", "merged")
    tags = {"arm": arm, "setting": ctx["setting"], "trial": ctx["trial"], **alphas, "alpha_selection": selection}
    evaluate_row(rows, ctx, emb, f"eval-{ctx['collection']}-{arm}-{ctx['setting']}-{ctx['trial']}", tags)
    return rows


def encode_rows(rows: dict, ctx: dict, model: str, adapter: str | None, emb_id: str) -> str:
    """The ENCODE task of a model (+ adapter) on the collection's eval split; returns the embeddings' id. With
    encode_shards N > 1: N ENCODE tasks `<id>-shard<i>of<N>` and a GATHER_EMBEDDINGS task that writes `<id>`,
    byte for byte the unsharded embeddings."""
    opts = Options(ctx["encode"]).add("--adapter", "adapter" if adapter else None)
    inputs = {"model": model, "adapter": adapter, "collection": ctx["collection_id"]}
    n = ctx.get("encode_shards", 1)
    if n == 1:
        _row(rows, "ENCODE", emb_id, inputs, opts, collection=ctx["collection"], library=ctx["library"])
        return emb_id
    parts = [f"{emb_id}-shard{i}of{n}" for i in range(n)]
    for i, part in enumerate(parts):
        _row(rows, "ENCODE", part, inputs, Options(opts.tokens).add("--shard", i).add("--shards", n),
             collection=ctx["collection"], library=ctx["library"])
    gather_row(rows, "GATHER_EMBEDDINGS", emb_id, parts, "embeddings", "--shard", ctx)
    return emb_id


def gather_row(rows: dict, process: str, id_: str, parts: list[str], command: str, flag: str, ctx: dict) -> None:
    """gather.py COMMAND over the parts, staged as parts/<part id> (the order is fixed here, not by arrival)."""
    opts = Options([command])
    for part in parts:
        opts.add(flag, f"parts/{part}")
    _row(rows, process, id_, {"parts": parts}, opts, collection=ctx["collection"], library=ctx["library"])


def sweep_rows(rows: dict, ctx: dict, grid_id: str, inputs: dict, opts: Options, grid: list[float], n: int) -> None:
    """The alpha grid as one SWEEP task, or (sweep_shards n > 1) n SWEEP_PART tasks over contiguous groups of
    alpha_lower values (the layer cache's unit) and a GATHER_GRID task that writes the one grid folder."""
    if n == 1:
        _row(rows, "SWEEP", grid_id, inputs, opts, collection=ctx["collection"], library=ctx["library"])
        return
    if n > len(grid):
        raise MergeirError(f"{option('sweep_shards')}: {n} parts, but the grid has only {len(grid)} alpha_lower "
                           f"values")
    size, extra = divmod(len(grid), n)
    parts, start = [], 0
    for i in range(n):
        group = grid[start:start + size + (i < extra)]
        start += len(group)
        part = f"{grid_id}-part{i}of{n}"
        part_opts = Options(opts.tokens)
        for a in group:
            part_opts.add("--alpha-lower", alpha_text(a))
        _row(rows, "SWEEP_PART", part, inputs, part_opts, collection=ctx["collection"], library=ctx["library"])
        parts.append(part)
    gather_row(rows, "GATHER_GRID", grid_id, parts, "grid", "--part", ctx)


def evaluate_row(rows: dict, ctx: dict, embeddings: str, eval_id: str, tags: dict) -> None:
    opts = Options(ctx["evaluate"])
    for k, v in {"collection": ctx["collection"], **tags}.items():
        opts.add("--tag", f"{k}={v}")
    _row(rows, "EVALUATE", eval_id, {"embeddings": embeddings, "collection": ctx["collection_id"]}, opts,
         collection=ctx["collection"], library=ctx["library"])


# ---------------------------------------------------------------- the whole plan


def plan_tasks(experiment: Experiment, dataset: str = "all", settings: str = "full,limited",
               alpha_selection: str = "paper", allow_unpinned: Any = False, device: str = "auto",
               encode_shards: Any = 1, sweep_shards: Any = 1,
               library: str | None = None) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """(rows per process, the deferred merged-arm contexts of the grid-chosen alphas keyed by SELECT_ALPHA id)."""
    colls = parse_selection(dataset, list(experiment.collections) + ["all"], "--dataset")
    colls = list(experiment.collections) if "all" in colls else colls
    sets = parse_selection(settings, [s for s in SETTINGS if s in experiment.settings], "--settings")
    if alpha_selection not in ALPHA_SELECTIONS:
        raise MergeirError(f"{option('alpha_selection')}: {_short(alpha_selection)} is not one of "
                           f"{', '.join(ALPHA_SELECTIONS)}")
    if device not in DEVICES:
        raise MergeirError(f"--device: {_short(device)} is not one of {', '.join(DEVICES)}")
    allow_unpinned = parse_bool(allow_unpinned, option("allow_unpinned"))
    encode_shards = parse_count(encode_shards, option("encode_shards"), MAX_ENCODE_SHARDS,
                                " tasks per encoding: a shard past the split's batch count encodes nothing")
    # one SWEEP_PART per group of alpha_lower values (only a grid selection sweeps: paper leaves it unused)
    sweep_shards = parse_count(sweep_shards, option("sweep_shards"),
                               len(experiment.merge.grid) if alpha_selection == "grid" else None,
                               f": the grid has {len(experiment.merge.grid)} alpha_lower values")
    lib = library or library_digest()
    needed = list(dict.fromkeys([experiment.source_model] + [experiment.collections[c].domain_model for c in colls]))
    unpinned = [m for m in needed if not experiment.models[m].pinned]
    if unpinned and not allow_unpinned:
        names = ", ".join(f"{m} ({experiment.models[m].repo_id})" for m in unpinned)
        raise MergeirError(f"{experiment.path}: unpinned model revision for {names}: pin a commit in the experiment "
                           f"file or pass --allow-unpinned true to plan.py (--allow_unpinned true to the pipeline); "
                           f"such a run is not reproducible")
    rows: dict[str, list[dict]] = Rows({p: [] for p in (LOCAL, *PROCESSES)})
    deferred: dict[str, dict] = {}

    def local(id_: str, path: str | None) -> str | None:
        if path is None:
            return None
        if not any(r["id"] == id_ for r in rows[LOCAL]):
            rows[LOCAL].append({"id": id_, "path": path})  # relative to the experiment file's folder
        return id_

    # ---- models: pinned downloads (or a local copy in the upstream format), or the tiny built pair
    model_id = {m: f"model-{m}" for m in needed}
    tiny = [m for m in needed if experiment.models[m].tiny]
    for m in needed:
        s = experiment.models[m]
        if s.tiny:
            continue
        opts = Options([s.repo_id]).add("--revision", s.revision or "main")
        src = local(f"local-model-{m}", s.source)
        opts.add("--source", "source" if src else None)
        _row(rows, "DOWNLOAD_MODEL", model_id[m], {"source": src}, opts, library=lib)
    if tiny:
        built = experiment.tiny
        if built.collection not in colls:
            raise MergeirError(f"{experiment.path}: tiny.collection {built.collection!r} is not among the selected "
                               f"--dataset {','.join(colls)}")
        r = _row(rows, "MAKE_TINY", f"tiny-{built.collection}", {"collection": f"collection-{built.collection}"},
                 Options().add("--seed", built.seed).add("--layers", built.layers), library=lib)
        r["produces"] = {model_id[m]: experiment.models[m].tiny for m in tiny}

    enc, ev, mg, lora = experiment.encoding, experiment.evaluation, experiment.merge, experiment.lora
    full_seed = experiment.settings["full"].seed_base if "full" in experiment.settings else 0
    for c in colls:
        cs = experiment.collections[c]
        cid = f"collection-{c}"
        src = local(f"local-collection-{c}", cs.path)
        name = "beir:source" if cs.download == "beir" else cs.download
        opts = Options([name]).add("--source", "source" if src and cs.download != "beir" else None)
        _row(rows, "PREPARE_COLLECTION", cid, {"source": src}, opts.add("--revision", cs.revision),
             collection=c, library=lib)
        source, domain = model_id[experiment.source_model], model_id[cs.domain_model]

        def encoding(split: str, dtype: bool = True) -> Options:
            o = Options().add("--split", split).add("--pooling", enc.pooling)
            o.add("--query-instruction", cs.query_instruction).add("--max-length", enc.max_length)
            o.add("--batch-size", enc.batch_size).add("--dtype", enc.dtype if dtype else None)
            return o.add("--device", device).flag("--no-progress", True)

        ctx = {"collection": c, "collection_id": cid, "source": source, "domain": domain, "library": lib,
               "encode_shards": encode_shards,
               "encode": encoding(cs.eval_split).tokens,
               "evaluate": Options().add("--split", cs.eval_split).add("--depth", ev.depth)
               .flag("--drop-first-qrel", cs.drop_first_qrel).tokens,
               "merge": Options().add("--method", mg.method).add("--dtype", mg.dtype)
               .add("--split-layer", mg.split_layer).switch("--restore-source-embeddings",
                                                              mg.restore_source_embeddings).tokens}
        emb = encode_rows(rows, ctx, source, None, f"emb-{c}-source")
        evaluate_row(rows, ctx, emb, f"eval-{c}-source", {"arm": "source"})

        trials = [t for t in cs.trials if t.setting in sets]
        if not trials:
            continue
        if cs.train_split is None:
            raise MergeirError(f"{experiment.path}: collections.{c}.train_split is missing: the full and limited "
                               f"settings train on labelled queries")
        # ---- training sets: every labelled query mined once; the full set (all, or a seeded sample); the trials
        mined = f"mined-{c}"
        _row(rows, "PREPARE_TRAINING", mined, {"collection": cid, "model": source},
             encoding(cs.train_split, dtype=False).add("--negatives", lora.negatives), collection=c, library=lib)
        full_set, full_file = (mined, "train.jsonl")
        if cs.full_queries:
            full_set, full_file = f"fullset-{c}", "v1.jsonl"
            _row(rows, "SAMPLE_FULL", full_set, {"train": mined},
                 Options().add("--trials", 1).add("--queries", cs.full_queries).add("--seed", full_seed),
                 train_file="train.jsonl", collection=c, library=lib)
        limited = [t for t in trials if t.setting == "limited"]
        if limited:
            st = experiment.settings["limited"]
            _row(rows, "MAKE_TRIALS", f"trials-{c}", {"train": full_set},
                 Options().add("--trials", max(t.index for t in limited)).add("--queries", st.n_queries)
                 .add("--seed", st.seed_base + 1), train_file=full_file, collection=c, library=lib)
        if alpha_selection == "grid":
            sweep_rows(rows, ctx, f"grid-{c}", {"source": source, "domain": domain, "collection": cid},
                       encoding(cs.train_split).add("--grid", [alpha_text(a) for a in mg.grid])
                       .add("--split-layer", mg.split_layer).add("--depth", ev.sweep_depth)
                       .switch("--restore-source-embeddings", mg.restore_source_embeddings),
                       mg.grid, sweep_shards)
        if alpha_selection == "grid" and mg.search is not None:
            search_rows(rows, ctx, mg, cs, trials, encoding(cs.train_split).add("--depth", ev.sweep_depth),
                        deferred, full_set, full_file)
        ds = local("local-deepspeed", lora.deepspeed)
        # the recipe travels in the row (so -resume keys on it) and the task writes it to recipe.json
        recipe = json.dumps(lora.recipe.replace(pooling=enc.pooling).to_json(), sort_keys=True)
        for t in trials:
            train, train_file = (full_set, full_file) if t.setting == "full" else (f"trials-{c}", f"{t.trial}.jsonl")
            key = f"{c}-{t.setting}-{t.trial}"
            lopts = (Options().add("--recipe", "recipe.json").add("--max-steps", t.max_steps)
                     .add("--query-instruction", cs.query_instruction)
                     .add("--deepspeed", "deepspeed.json" if ds else None).add("--device", device)
                     .flag("--no-progress", True))
            _row(rows, "LORA_TRAIN", f"lora-{key}", {"model": source, "train": train, "deepspeed_config": ds}, lopts,
                 train_file=train_file, recipe=recipe, collection=c, library=lib)
            emb = encode_rows(rows, ctx, source, f"lora-{key}", f"emb-{c}-lora-{t.setting}-{t.trial}")
            evaluate_row(rows, ctx, emb, f"eval-{c}-lora-{t.setting}-{t.trial}",
                         {"arm": "lora", "setting": t.setting, "trial": t.trial})
            arm = {**ctx, "setting": t.setting, "trial": t.trial}
            if alpha_selection == "paper":
                merged_arm(arm, t.alpha_lower, t.alpha_upper, "paper", rows)
            else:
                # the row carries the arm `plan.py chosen` completes (not the task folder, which PLAN rewrites
                # on every run): -resume then re-runs SELECT_ALPHA only when its grid, queries or arm changed
                sel = _row(rows, "SELECT_ALPHA", f"alpha-{key}", {"grid": f"grid-{c}", "train": train},
                           Options().add("--eval-split", cs.eval_split), train_file=train_file, collection=c,
                           arm=json.dumps(arm, sort_keys=True), library=lib)
                deferred[sel["id"]] = arm
    _row(rows, "REPORT", "report", {"results": "EVALUATE", "grids": ["SWEEP", "GATHER_GRID"]},
         Options().add("--grid", "grids" if alpha_selection == "grid" else None), library=lib)
    check_references(rows, deferred)
    return rows, deferred


def producers(rows: dict[str, list[dict]]) -> dict[str, str]:
    """artifact id -> the process (or LOCAL) that produces it."""
    out: dict[str, str] = {}
    for process, rs in rows.items():
        for r in rs:
            for a in (r.get("produces") or {r["id"]: ""}):
                if a in out:
                    raise MergeirError(f"plan: artifact {a} is produced by both {out[a]} and {process}")
                out[a] = process
    return out


def check_references(rows: dict[str, list[dict]], deferred: dict[str, dict]) -> None:
    """Every input names an artifact some task (or the experiment folder) produces: no join can come up empty."""
    known = producers(rows)
    for process, rs in rows.items():
        for r in rs:
            for name, value in (r.get("inputs") or {}).items():
                for ref in value if isinstance(value, list) else [value]:
                    if ref is None or (process == "REPORT" and ref in PROCESSES):
                        continue
                    if ref not in known:
                        raise MergeirError(f"plan: {process} task {r['id']} reads {name}={ref}, which no task produces")
    for sel, ctx in deferred.items():
        for key in ("source", "domain", "collection_id"):
            if ctx[key] not in known:
                raise MergeirError(f"plan: SELECT_ALPHA task {sel} merges {ctx[key]}, which no task produces")


# plan.json is the marker (a plan written before markers named their stage is known by its fields)
PLAN_STAGE = Stage("plan", "plan.json", legacy=("format", "experiment", "parameters", "counts"))


def write_tasks(out: str | Path, rows: dict[str, list[dict]], deferred: dict[str, dict], experiment: Experiment,
                params: dict, force: bool = False) -> Path:
    """tasks/<PROCESS>.json (a JSON array each, possibly empty), deferred.json and plan.json (what was planned).
    The output contract (mergeir.io): `--out` the experiment's own folder replaced it, the YAML included."""
    with atomic_dir(out, stage=PLAN_STAGE, inputs={"--experiment": experiment.path}, force=force) as tmp:
        for process, rs in rows.items():
            (tmp / f"{process}.json").write_text(dumps_json(rs), encoding="utf-8")
        (tmp / "deferred.json").write_text(dumps_json(deferred), encoding="utf-8")
        (tmp / "plan.json").write_text(dumps_json({
            "stage": PLAN_STAGE.name, "format": FORMAT,
            "experiment": {"name": experiment.name, "file": experiment.path.name,
                           "sha256": sha256_file(experiment.path)},
            "parameters": params, "counts": {k: len(v) for k, v in rows.items()},
            "tools": tool_versions(),
        }), encoding="utf-8")
    return Path(out)


# its own marker: the alpha.json it publishes is select-alpha's, copied unchanged
CHOSEN_STAGE = Stage("plan chosen", "chosen.json")


def write_chosen(out: str | Path, rows: dict[str, list[dict]], alpha: dict, inputs: dict, force: bool = False) -> Path:
    """`plan.py chosen`'s folder: <PROCESS>.json per merged-arm process, the alpha.json they were built from and
    chosen.json (its marker), under the output contract (`inputs`: {"--arm": file, "--alpha": file}; an existing folder is replaced only when
    it is an earlier `plan.py chosen` output)."""
    with atomic_dir(out, stage=CHOSEN_STAGE, inputs=inputs, force=force) as tmp:
        for process, rs in rows.items():
            (tmp / f"{process}.json").write_text(dumps_json(rs), encoding="utf-8")
        (tmp / "alpha.json").write_text(dumps_json(alpha), encoding="utf-8")  # published with the rows
        (tmp / CHOSEN_STAGE.marker).write_text(dumps_json({
            "stage": CHOSEN_STAGE.name, "counts": {k: len(v) for k, v in rows.items()}}), encoding="utf-8")
    return Path(out)


def chosen_rows(arm: dict, alpha: dict) -> dict[str, list[dict]]:
    """The merged-arm rows of one SELECT_ALPHA task (its row's `arm`) once its alpha is known (`plan.py chosen`):
    an (alpha_lower, alpha_upper) pair, or an α search's profile."""
    profile = alpha.get("profile") if isinstance(alpha, dict) else None
    lo = up = None

    def number(v, key: str) -> float:  # as select-alpha writes it: a JSON number in [0, 1], never NaN, true or "0.5"
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and 0 <= v <= 1):
            raise MergeirError(f"alpha file has no numeric alpha_lower/alpha_upper (or profile): {key} is {v!r}, "
                               "not a number in [0, 1]")
        return float(v)

    if profile is not None:
        if not isinstance(profile, list) or not profile:
            raise MergeirError(f"alpha file has no numeric alpha_lower/alpha_upper (or profile): profile is "
                               f"{profile!r}, not a list of alphas")
        profile = [number(a, f"profile[{i}]") for i, a in enumerate(profile)]
    elif not isinstance(alpha, dict) or "alpha_lower" not in alpha or "alpha_upper" not in alpha:
        raise MergeirError(f"alpha file has no numeric alpha_lower/alpha_upper (or profile): {alpha!r}")
    else:
        lo, up = number(alpha["alpha_lower"], "alpha_lower"), number(alpha["alpha_upper"], "alpha_upper")
    try:
        rows = merged_arm(arm, lo, up, "search" if arm.get("arm_tag") == "search" else "grid", profile=profile)
    except (KeyError, TypeError):
        raise MergeirError("the arm file is not a SELECT_ALPHA row's arm (written by plan.py tasks)") from None
    return {p: rows.get(p, []) for p in CHOSEN}
