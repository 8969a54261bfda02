"""One reader per section of an experiment file. Each takes the section's YAML node and what it depends on
(the models a collection names, the settings its trials use) and returns the section's frozen spec."""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..collections.upstream import PRESETS
from ..errors import MergeirError
from ..merging.alphas import parse_grid, same_alpha
from ..merging.profiles import MIN_STEP, lattice_profiles
from ..models.dtypes import DTYPES
from ..models.tiny import MAX_TINY_SIZE
from ..training.recipe import Recipe
from ..training.trials import MAX_TRIALS  # v1 .. v1000: MAKE_TRIALS draws every trial up to the highest
from .reader import KEY, Reader, dotted, short
from .specs import (COMMIT, MERGE_METHODS, POOLINGS, SETTINGS, CollectionSpec, EncodingSpec, EvaluationSpec,
                    LoraSpec, MergeSpec, ModelSpec, SearchSpec, SettingSpec, TinySpec, TrialSpec)

DOWNLOADS = (*PRESETS, "beir")  # "beir": a local BEIR folder or zip named by `path:`
MODEL_KEYS = ("repo_id", "revision", "layout", "tiny", "source", "revision_evidence")
DOWNLOADED_ONLY = ("repo_id", "revision", "source")  # a tiny model is built by make_tiny.py: these would be ignored
COLLECTION_KEYS = ("download", "path", "revision", "full_queries", "language", "domain_model", "query_instruction",
                   "use_titles", "eval_split", "train_split", "n_eval_queries", "quirks", "authors_training",
                   "trials")
TRIAL_KEYS = ("alpha", "max_steps", "epochs")
QUIRKS = ("drop_first_qrel",)
# `pooling` is the encoding section's: a LoRA trained with one pooling and encoded with another is a wrong arm.
LORA_OWN_KEYS = ("deepspeed", "negatives")
LORA_NOT_RECIPE = ("pooling",)
MERGE_KEYS = ("method", "dtype", "split_layer", "grid", "restore_source_embeddings", "search")
SEARCH_KEYS = ("sampler", "groups", "budget", "seed", "step")
SEARCH_SAMPLERS = ("tpe", "cmaes", "random", "grid")  # mergeir.sweep.search.SAMPLERS (that module loads torch)
ENCODING_KEYS = ("pooling", "max_length", "dtype", "batch_size")
EVALUATION_KEYS = ("depth", "metric", "sweep_depth")
TINY_KEYS = ("collection", "seed", "layers")
# The metric selection and the report use (mergeir.sweep.selection.PRIMARY_METRICS): nDCG@10, as pytrec_eval's
# ndcg_cut_10 (JQaRA: the authors' jqara_ndcg@10, chosen from the results). Nothing else can drive them yet.
METRICS = ("ndcg_cut_10",)


def read_models(r: Reader, node: dict, folder: Path | None = None) -> dict[str, ModelSpec]:
    """folder: where a local `source:` must exist (the experiment file's real folder), or None not to check."""
    models = {}
    for key, m, at in r.entries(node, "models", "model"):
        r.only(m, MODEL_KEYS, at)
        tiny = m.get("tiny")
        if tiny is not None and tiny not in ("source", "domain"):
            r.fail(f"{at}.tiny", f"{short(tiny)} is not one of source, domain")
        if tiny is not None:
            for k in DOWNLOADED_ONLY:
                if m.get(k) is not None:
                    r.fail(f"{at}.{k}", "a tiny model is built by make_tiny.py, not downloaded: it would be ignored")
        repo_id = r.get(m, "repo_id", at, str, required=tiny is None)
        revision = r.get(m, "revision", at, str, required=False)
        if revision is not None and not COMMIT.match(revision):
            r.fail(f"{at}.revision", f"{short(revision)} is not a 40-character commit id (a branch or tag can move)")
        layout = r.get(m, "layout", at, str, required=False)
        if layout is not None and layout not in ("model", "causal"):
            r.fail(f"{at}.layout", f"{short(layout)} is not one of model, causal")
        source = r.local_path(m, "source", at, folder, kind="folder")
        models[key] = ModelSpec(key, repo_id, revision, layout, tiny, source,
                                r.get(m, "revision_evidence", at, str, required=False))
    return models


def read_settings(r: Reader, node: dict) -> dict[str, SettingSpec]:
    settings = {}
    for setting, spec in r.mapping(node, "settings").items():
        at = dotted("settings", setting)
        if setting not in SETTINGS:
            r.fail(at, f"unknown setting (known: {', '.join(SETTINGS)})")
        spec = r.mapping(spec, at)
        limited = setting == "limited"
        r.only(spec, ("n_queries", "seed_base", "steps_per_epoch") if limited else ("seed_base",), at)
        settings[setting] = SettingSpec(
            n_queries=r.positive_int(spec, "n_queries", at, required=False) if limited else None,
            seed_base=r.seed(spec, "seed_base", at),
            steps_per_epoch=r.positive_int(spec, "steps_per_epoch", at, required=False))
    if "limited" in settings and settings["limited"].n_queries is None:
        r.fail("settings.limited.n_queries", "missing (queries per limited-data trial)")
    return settings


def _trial_index(setting: str, name: str) -> int:
    return 0 if setting == "full" else int(name[1:])  # limited trials are named v1, v2, ...


def read_trials(r: Reader, collection: str, node: dict, settings: dict[str, SettingSpec],
                where: str) -> tuple[TrialSpec, ...]:
    out = []
    for setting, trials in r.mapping(node, where).items():
        at = dotted(where, setting)
        if setting not in SETTINGS:
            r.fail(at, f"unknown setting (known: {', '.join(SETTINGS)})")
        if setting not in settings:
            r.fail(at, f"setting {short(setting)} is not described under `settings:`")
        trials = r.mapping(trials, at)
        if not trials:
            r.fail(at, "no trials")
        if setting == "full" and len(trials) != 1:
            r.fail(at, "the full setting has exactly one trial")
        for name, spec in trials.items():
            trial_at = dotted(at, name)
            if not isinstance(name, str) or not KEY.match(name):
                r.fail(trial_at, "trial names are lower-case words such as full, v1, v2")
            if setting == "limited" and not (re.fullmatch(r"v[1-9][0-9]*", name)
                                             and len(name) <= len(str(MAX_TRIALS)) + 1  # int() of 5000 digits raises
                                             and int(name[1:]) <= MAX_TRIALS):
                r.fail(trial_at, f"limited-setting trials are named v1, v2, ... v{MAX_TRIALS}")
            spec = r.mapping(spec, trial_at)
            r.only(spec, TRIAL_KEYS, trial_at)
            alpha = spec.get("alpha")
            if not isinstance(alpha, list) or len(alpha) != 2:
                r.fail(f"{trial_at}.alpha", f"expected [alpha_lower, alpha_upper], got {short(alpha)}")
            lower, upper = r.alpha(alpha[0], f"{trial_at}.alpha[0]"), r.alpha(alpha[1], f"{trial_at}.alpha[1]")
            epochs = r.positive_int(spec, "epochs", trial_at, required=False)
            max_steps = r.positive_int(spec, "max_steps", trial_at, required=False)
            per_epoch = settings[setting].steps_per_epoch
            if epochs is not None and per_epoch is not None:
                if max_steps is not None and max_steps != epochs * per_epoch:
                    r.fail(trial_at, f"max_steps {max_steps} != epochs {epochs} x steps_per_epoch {per_epoch}")
                max_steps = epochs * per_epoch
            if max_steps is None:
                r.fail(trial_at, f"give max_steps, or epochs with settings.{setting}.steps_per_epoch")
            out.append(TrialSpec(collection, setting, name, _trial_index(setting, name), lower, upper, max_steps,
                                 epochs))
    out.sort(key=lambda t: (SETTINGS.index(t.setting), t.index))
    return tuple(out)


def read_collections(r: Reader, node: dict, models: dict[str, ModelSpec], source_model: str,
                     settings: dict[str, SettingSpec], folder: Path | None) -> dict[str, CollectionSpec]:
    """folder: where local `path:`s must exist (the experiment file's real folder), or None not to check."""
    collections = {}
    for key, c, at in r.entries(node, "collections", "collection"):
        r.only(c, COLLECTION_KEYS, at)
        domain = r.get(c, "domain_model", at, str)
        if domain not in models:
            r.fail(f"{at}.domain_model", f"{short(domain)} is not a key of models ({', '.join(models)})")
        if domain == source_model:
            r.fail(f"{at}.domain_model", "the domain model must differ from source_model")
        download = r.get(c, "download", at, str)
        if download not in DOWNLOADS:
            r.fail(f"{at}.download", f"{short(download)} is not one of {', '.join(DOWNLOADS)}")
        path = r.local_path(c, "path", at, folder, kind="folder or zip", required=download == "beir")
        quirks = r.mapping(c.get("quirks") or {}, f"{at}.quirks")
        r.only(quirks, QUIRKS, f"{at}.quirks", "quirks")
        instruction = r.get(c, "query_instruction", at, str)
        if "\n" in instruction:
            r.fail(f"{at}.query_instruction", "must be one line (the prompt adds the newline before Query:)")
        collections[key] = CollectionSpec(
            key=key, download=download, path=path,
            language=r.get(c, "language", at, str, required=False, default="en"),
            domain_model=domain,
            query_instruction=instruction,
            use_titles=r.get(c, "use_titles", at, bool, required=False, default=True),
            eval_split=r.get(c, "eval_split", at, str, required=False, default="test"),
            train_split=r.get(c, "train_split", at, str, required=False),
            drop_first_qrel=r.get(quirks, "drop_first_qrel", f"{at}.quirks", bool, required=False, default=False),
            trials=read_trials(r, key, r.get(c, "trials", at, dict), settings, f"{at}.trials"),
            n_eval_queries=r.positive_int(c, "n_eval_queries", at, required=False),
            revision=r.get(c, "revision", at, str, required=False),
            full_queries=r.positive_int(c, "full_queries", at, required=False),
        )
    if not collections:
        r.fail("collections", "no collections")
    return collections


def read_merge(r: Reader, node: dict, collections: dict[str, CollectionSpec]) -> MergeSpec:
    node = r.mapping(node, "merge")
    r.only(node, MERGE_KEYS, "merge")
    grid = [r.alpha(a, f"merge.grid[{i}]") for i, a in enumerate(r.get(node, "grid", "merge", list))]
    try:  # the sweep's own rule (mergeir.merging.parse_grid): refused here, not hours later in SWEEP
        grid = tuple(parse_grid(grid, "merge.grid"))
    except MergeirError as e:
        raise MergeirError(f"{r.path}: {e}") from None
    for c in collections.values():  # in grid mode every published alpha must be a grid point
        for t in c.trials:
            for a in (t.alpha_lower, t.alpha_upper):
                if not any(same_alpha(a, g) for g in grid):
                    r.fail(dotted(f"collections.{c.key}.trials.{t.setting}", t.trial) + ".alpha",
                           f"{a} is not in merge.grid")
    return MergeSpec(
        method=r.choice(node, "method", "merge", MERGE_METHODS, default="linear"),
        dtype=r.choice(node, "dtype", "merge", DTYPES, default="float16"),
        split_layer=r.positive_int(node, "split_layer", "merge"),
        grid=grid,
        restore_source_embeddings=r.get(node, "restore_source_embeddings", "merge", bool, required=False,
                                        default=True),
        search=read_search(r, node["search"]) if node.get("search") is not None else None)


def read_search(r: Reader, node) -> SearchSpec:
    node = r.mapping(node, "merge.search")
    r.only(node, SEARCH_KEYS, "merge.search")
    step = r.get(node, "step", "merge.search", (int, float), required=False, default=0.05)
    if not 0 < step <= 1:
        r.fail("merge.search.step", f"must be within (0, 1], got {step}")
    if step < MIN_STEP:
        r.fail("merge.search.step", f"must be at least {MIN_STEP} (finer alphas are one alpha to the grid), got {step}")
    spec = SearchSpec(sampler=r.choice(node, "sampler", "merge.search", SEARCH_SAMPLERS, default="tpe"),
                      groups=r.positive_int(node, "groups", "merge.search", required=False, default=4),
                      budget=r.positive_int(node, "budget", "merge.search", required=False, default=25),
                      seed=r.seed(node, "seed", "merge.search"), step=float(step))
    room = lattice_profiles(spec.step, spec.groups, spec.budget)
    if spec.sampler != "grid" and room < spec.budget:
        r.fail("merge.search.budget", f"{spec.budget} is more than the {room} distinct profiles on the step "
                                      f"{spec.step} lattice (the search could never stop)")
    return spec


def read_encoding(r: Reader, node: dict) -> EncodingSpec:
    node = r.mapping(node, "encoding")
    r.only(node, ENCODING_KEYS, "encoding")
    return EncodingSpec(
        pooling=r.choice(node, "pooling", "encoding", POOLINGS, default="last"),
        max_length=r.positive_int(node, "max_length", "encoding"),
        dtype=r.choice(node, "dtype", "encoding", DTYPES, default="float32"),
        batch_size=r.positive_int(node, "batch_size", "encoding", required=False, default=8))


def read_evaluation(r: Reader, node: dict | None) -> EvaluationSpec:
    node = r.mapping({} if node is None else node, "evaluation")
    r.only(node, EVALUATION_KEYS, "evaluation")
    metric = r.get(node, "metric", "evaluation", str, required=False, default=METRICS[0])
    if metric not in METRICS:
        r.fail("evaluation.metric", f"{short(metric)} is not supported: alpha selection and the report always use "
                                    f"nDCG@10 (ndcg_cut_10; JQaRA: the authors' jqara_ndcg@10); write ndcg_cut_10 "
                                    f"or leave the key out")
    return EvaluationSpec(
        depth=r.positive_int(node, "depth", "evaluation", required=False, default=1000),
        metric=metric,
        sweep_depth=r.positive_int(node, "sweep_depth", "evaluation", required=False, default=100))


def read_lora(r: Reader, node: dict, folder: Path | None = None) -> LoraSpec:
    """folder: where `deepspeed:` must exist (the experiment file's real folder), or None not to check."""
    node = r.mapping(node, "lora")
    for key in LORA_NOT_RECIPE:
        if key in node:
            r.fail(f"lora.{key}", f"set encoding.{key}: the LoRA arm is trained as it is encoded")
    for key, value in node.items():  # a recipe number must be finite (inf passes a `> 0` check)
        if isinstance(value, float) and not math.isfinite(value):
            r.fail(f"lora.{key}", f"must be a finite number, got {value}")
    if isinstance(node.get("seed"), int):  # transformers' set_seed hands it to numpy (< 2**32)
        r.seed(node, "seed", "lora")
    recipe = Recipe.from_mapping(node, lambda key, msg: r.fail(f"lora.{key}" if key else "lora", msg),
                                 extra=LORA_OWN_KEYS)
    return LoraSpec(recipe, r.local_path(node, "deepspeed", "lora", folder, kind="file"),
                    r.positive_int(node, "negatives", "lora"))


def read_tiny(r: Reader, node, models: dict[str, ModelSpec], collections: dict, merge: MergeSpec) -> TinySpec | None:
    """Required exactly when a model is built by make_tiny.py, refused otherwise (it would be ignored)."""
    if not any(m.tiny for m in models.values()):
        if node is not None:
            r.fail("tiny", "no model is built by make_tiny.py (`tiny:` under models): this section would be ignored")
        return None
    if node is None:
        r.fail("tiny", "missing (models use `tiny:`)")
    node = r.mapping(node, "tiny")
    r.only(node, TINY_KEYS, "tiny")
    collection = r.get(node, "collection", "tiny", str)
    if collection not in collections:
        r.fail("tiny.collection", f"{short(collection)} is not a key of collections")
    tiny = TinySpec(collection, seed=r.seed(node, "seed", "tiny"),
                    layers=r.positive_int(node, "layers", "tiny", required=False, default=4))
    if tiny.layers > MAX_TINY_SIZE:  # MAKE_TINY would refuse it (a million layers never finished building)
        r.fail("tiny.layers", f"must be at most {MAX_TINY_SIZE} for a tiny model, got {tiny.layers}")
    if merge.split_layer >= tiny.layers:
        r.fail("merge.split_layer", f"{merge.split_layer} must be below tiny.layers {tiny.layers}")
    if merge.search is not None and merge.search.groups > tiny.layers:
        r.fail("merge.search.groups", f"{merge.search.groups} layer groups, but tiny.layers is {tiny.layers}")
    return tiny
