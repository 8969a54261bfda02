"""An experiment as data (data/paper.yaml, data/test.yaml, a user's --experiment FILE) and the task lists
the pipeline runs from it.

The file names models (pinned Hugging Face revisions or tiny built ones), collections (each with its domain
model, query instruction, eval/train split and the published alpha and LoRA steps per setting and trial), and
the merge / encoding / evaluation / LoRA recipes. `load_experiment` validates everything up front with one
message naming the file and the key at fault; mergeir.pipeline.tasks plans the pipeline's tasks from it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .alphas import alpha_code  # noqa: F401 (re-exported)
from .dtypes import DTYPES
from .errors import MergeirError
from .training.recipe import Recipe

FORMAT = 1
SETTINGS = ("full", "limited")
ARMS = ("source", "merged", "lora")
ALPHA_SELECTIONS = ("paper", "grid")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
POOLINGS = ("last", "mean", "cls")
MERGE_METHODS = ("linear", "slerp", "ties", "task_arithmetic", "dare_ties")


@dataclass(frozen=True)
class ModelSpec:
    key: str
    repo_id: str | None  # None for tiny built models
    revision: str | None  # a 40-hex commit, or None when it could not be pinned
    layout: str | None
    tiny: str | None  # "source" | "domain" when built by make_tiny.py
    source: str | None  # local copy in the upstream format (offline runs)
    revision_evidence: str | None = None

    @property
    def pinned(self) -> bool:
        return self.tiny is not None or (self.revision is not None and bool(_SHA.match(self.revision)))


@dataclass(frozen=True)
class TrialSpec:
    collection: str
    setting: str
    trial: str
    index: int  # 0 for the full setting, k for limited trial vk
    alpha_lower: float  # published (the authors' grid-search choice)
    alpha_upper: float
    max_steps: int
    epochs: int | None


@dataclass(frozen=True)
class CollectionSpec:
    key: str
    download: str
    path: str | None  # local source folder (resolved against the experiment file's folder)
    language: str
    domain_model: str
    query_instruction: str
    use_titles: bool
    eval_split: str
    train_split: str | None
    drop_first_qrel: bool
    trials: tuple[TrialSpec, ...]
    n_eval_queries: int | None = None
    revision: str | None = None  # dataset revision on the hub (miracl-ja, jqara), when pinned
    full_queries: int | None = None  # full-setting training queries (None = every labelled query)


@dataclass(frozen=True)
class Experiment:
    path: Path
    name: str
    source_model: str
    models: dict[str, ModelSpec]
    collections: dict[str, CollectionSpec]
    settings: dict[str, dict[str, Any]]
    merge: dict[str, Any]
    encoding: dict[str, Any]
    evaluation: dict[str, Any]
    lora: LoraSpec
    tiny: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def trial(self, collection: str, setting: str, trial: str) -> TrialSpec:
        coll = self.collection(collection)
        for t in coll.trials:
            if t.setting == setting and t.trial == trial:
                return t
        known = ", ".join(f"{t.setting}/{t.trial}" for t in coll.trials)
        raise MergeirError(f"{self.path}: collection {collection!r} has no trial {setting}/{trial} (known: {known})")

    def collection(self, key: str) -> CollectionSpec:
        if key not in self.collections:
            raise MergeirError(
                f"{self.path}: unknown collection {key!r} (known: {', '.join(self.collections)})"
            )
        return self.collections[key]

    def resolve(self, rel: str) -> Path:
        """A path written in the experiment file, relative to the file's own folder."""
        p = Path(rel)
        return p if p.is_absolute() else (self.path.parent / p).resolve()


def published_alpha(exp: Experiment, collection: str, setting: str, trial: str) -> tuple[float, float]:
    """(alpha_lower, alpha_upper) the authors chose for this collection, setting and trial."""
    t = exp.trial(collection, setting, trial)
    return t.alpha_lower, t.alpha_upper


# ---------------------------------------------------------------- reading and validation


class _Reader:
    """Typed access to the YAML tree; every error names the file and the dotted key."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, msg: str):
        raise MergeirError(f"{self.path}: {where}: {msg}")

    def mapping(self, obj, where: str) -> dict:
        if not isinstance(obj, dict):
            self.fail(where, f"expected a mapping, got {type(obj).__name__}")
        return obj

    def get(self, obj: dict, key: str, where: str, types, *, required=True, default=None):
        if key not in obj or obj[key] is None:
            if required:
                self.fail(f"{where}.{key}" if where else key, "missing")
            return default
        v = obj[key]
        if bool in (types if isinstance(types, tuple) else (types,)):
            ok = isinstance(v, bool)
        else:
            ok = isinstance(v, types) and not isinstance(v, bool)
        if not ok:
            names = "/".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
            self.fail(f"{where}.{key}" if where else key, f"expected {names}, got {v!r}")
        return v

    def choice(self, obj: dict, key: str, where: str, choices, *, default=None):
        v = self.get(obj, key, where, str, required=default is None, default=default)
        if v not in choices:
            self.fail(f"{where}.{key}", f"{v!r} is not one of {', '.join(choices)}")
        return v

    def alpha(self, v, where: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
            self.fail(where, f"alpha must be a number in [0, 1], got {v!r}")
        return float(v)

    def positive_int(self, obj: dict, key: str, where: str, *, required=True, default=None, allow_none=False):
        if allow_none and key in obj and obj[key] is None:
            return None
        v = self.get(obj, key, where, int, required=required, default=default)
        if v is not None and v < 1:
            self.fail(f"{where}.{key}", f"must be >= 1, got {v}")
        return v


def _trial_order(name: str) -> tuple[int, str]:
    m = re.fullmatch(r"v(\d+)", name)
    return (int(m.group(1)), name) if m else (0, name)


def _read_trials(r: _Reader, key: str, node: dict, settings: dict, where: str) -> tuple[TrialSpec, ...]:
    node = r.mapping(node, where)
    out = []
    for setting, trials in node.items():
        w = f"{where}.{setting}"
        if setting not in SETTINGS:
            r.fail(w, f"unknown setting (known: {', '.join(SETTINGS)})")
        if setting not in settings:
            r.fail(w, f"setting {setting!r} is not described under `settings:`")
        trials = r.mapping(trials, w)
        if not trials:
            r.fail(w, "no trials")
        if setting == "full" and len(trials) != 1:
            r.fail(w, "the full setting has exactly one trial")
        for name, spec in trials.items():
            tw = f"{w}.{name}"
            if not isinstance(name, str) or not _KEY.match(name):
                r.fail(tw, "trial names are lower-case words such as full, v1, v2")
            if setting == "limited" and not re.fullmatch(r"v\d+", name):
                r.fail(tw, "limited-setting trials are named v1, v2, ...")
            spec = r.mapping(spec, tw)
            unknown = set(spec) - {"alpha", "max_steps", "epochs"}
            if unknown:
                r.fail(tw, f"unknown keys {sorted(unknown)}")
            a = spec.get("alpha")
            if not isinstance(a, list) or len(a) != 2:
                r.fail(f"{tw}.alpha", f"expected [alpha_lower, alpha_upper], got {a!r}")
            al, au = r.alpha(a[0], f"{tw}.alpha[0]"), r.alpha(a[1], f"{tw}.alpha[1]")
            epochs = r.positive_int(spec, "epochs", tw, required=False)
            max_steps = r.positive_int(spec, "max_steps", tw, required=False)
            spe = settings[setting].get("steps_per_epoch")
            if epochs is not None and spe is not None:
                if max_steps is not None and max_steps != epochs * spe:
                    r.fail(tw, f"max_steps {max_steps} != epochs {epochs} x steps_per_epoch {spe}")
                max_steps = epochs * spe
            if max_steps is None:
                r.fail(tw, "give max_steps, or epochs with settings." + setting + ".steps_per_epoch")
            index = 0 if setting == "full" else _trial_order(name)[0]
            out.append(TrialSpec(key, setting, name, index, al, au, max_steps, epochs))
    out.sort(key=lambda t: (SETTINGS.index(t.setting), t.index))
    return tuple(out)


@dataclass(frozen=True)
class LoraSpec:
    """The experiment's `lora:` section: the recipe (mergeir.training.recipe.Recipe fields; those left out keep
    the paper's values), the DeepSpeed config file and how many hard negatives to mine per training query."""

    recipe: Recipe
    deepspeed: str | None  # a file relative to the experiment file, or None
    negatives: int


# `pooling` is the encoding section's: a LoRA trained with one pooling and encoded with another is a wrong arm.
LORA_OWN_KEYS = ("deepspeed", "negatives")
LORA_NOT_RECIPE = ("pooling",)


def _read_lora(r: _Reader, node: dict) -> LoraSpec:
    node = r.mapping(node, "lora")
    for key in LORA_NOT_RECIPE:
        if key in node:
            r.fail(f"lora.{key}", f"set encoding.{key}: the LoRA arm is trained as it is encoded")
    recipe = Recipe.from_mapping(node, lambda key, msg: r.fail(f"lora.{key}" if key else "lora", msg),
                                 extra=LORA_OWN_KEYS)
    return LoraSpec(recipe, r.get(node, "deepspeed", "lora", str, required=False),
                    r.positive_int(node, "negatives", "lora"))


def load_experiment(path: str | Path, check_paths: bool = True) -> Experiment:
    """Read and validate an experiment YAML; any problem is one MergeirError naming file and key.

    check_paths: local `path:`s must exist beside the (real, symlinks followed) file. PLAN turns it off: in a
    container only the experiment file itself is mounted, and main.nf checks those paths (checkIfExists)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise MergeirError(f"experiment file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise MergeirError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    except UnicodeDecodeError:
        raise MergeirError(f"{path}: not UTF-8 text") from None
    r = _Reader(path)
    raw = r.mapping(raw, "top level")
    known_top = {"format", "name", "reference", "source_model", "models", "tiny", "collections", "settings",
                 "merge", "encoding", "evaluation", "lora"}
    unknown = set(raw) - known_top
    if unknown:
        r.fail("top level", f"unknown keys {sorted(unknown)} (known: {', '.join(sorted(known_top))})")
    fmt = r.get(raw, "format", "", int)
    if fmt != FORMAT:
        r.fail("format", f"this mergeir reads format {FORMAT}, the file says {fmt}")
    name = r.get(raw, "name", "", str)

    models: dict[str, ModelSpec] = {}
    for key, m in r.mapping(r.get(raw, "models", "", dict), "models").items():
        w = f"models.{key}"
        if not _KEY.match(str(key)):
            r.fail(w, "model keys are lower-case words (a-z, 0-9, -, _)")
        m = r.mapping(m, w)
        unknown = set(m) - {"repo_id", "revision", "layout", "tiny", "source", "revision_evidence"}
        if unknown:
            r.fail(w, f"unknown keys {sorted(unknown)}")
        tiny = m.get("tiny")
        if tiny is not None and tiny not in ("source", "domain"):
            r.fail(f"{w}.tiny", f"{tiny!r} is not one of source, domain")
        repo_id = r.get(m, "repo_id", w, str, required=tiny is None)
        rev = r.get(m, "revision", w, str, required=False)
        if rev is not None and not _SHA.match(rev):
            r.fail(f"{w}.revision", f"{rev!r} is not a 40-character commit id (a branch or tag can move)")
        layout = m.get("layout")
        if layout is not None and layout not in ("model", "causal"):
            r.fail(f"{w}.layout", f"{layout!r} is not one of model, causal")
        models[key] = ModelSpec(key, repo_id, rev, layout, tiny, r.get(m, "source", w, str, required=False),
                                m.get("revision_evidence"))
    source_model = r.get(raw, "source_model", "", str)
    if source_model not in models:
        r.fail("source_model", f"{source_model!r} is not a key of models ({', '.join(models)})")

    settings: dict[str, dict[str, Any]] = {}
    for s, spec in r.mapping(r.get(raw, "settings", "", dict), "settings").items():
        w = f"settings.{s}"
        if s not in SETTINGS:
            r.fail(w, f"unknown setting (known: {', '.join(SETTINGS)})")
        spec = r.mapping(spec, w)
        unknown = set(spec) - ({"seed_base"} if s == "full" else {"n_queries", "seed_base", "steps_per_epoch"})
        if unknown:
            r.fail(w, f"unknown keys {sorted(unknown)}")
        settings[s] = {
            "n_queries": r.positive_int(spec, "n_queries", w, required=False) if s == "limited" else None,
            "seed_base": r.get(spec, "seed_base", w, int, required=False, default=0),
            "steps_per_epoch": r.positive_int(spec, "steps_per_epoch", w, required=False),
        }
    if "limited" in settings and settings["limited"]["n_queries"] is None:
        r.fail("settings.limited.n_queries", "missing (queries per limited-data trial)")

    collections: dict[str, CollectionSpec] = {}
    for key, c in r.mapping(r.get(raw, "collections", "", dict), "collections").items():
        w = f"collections.{key}"
        if not _KEY.match(str(key)):
            r.fail(w, "collection keys are lower-case words (a-z, 0-9, -, _)")
        c = r.mapping(c, w)
        allowed = {"download", "path", "revision", "full_queries", "language", "domain_model", "query_instruction", "use_titles",
                   "eval_split", "train_split", "n_eval_queries", "quirks", "authors_training", "trials"}
        unknown = set(c) - allowed
        if unknown:
            r.fail(w, f"unknown keys {sorted(unknown)}")
        domain = r.get(c, "domain_model", w, str)
        if domain not in models:
            r.fail(f"{w}.domain_model", f"{domain!r} is not a key of models ({', '.join(models)})")
        if domain == source_model:
            r.fail(f"{w}.domain_model", "the domain model must differ from source_model")
        download = r.get(c, "download", w, str)
        from .collections import PRESETS

        if download not in (*PRESETS, "beir"):
            r.fail(f"{w}.download", f"{download!r} is not one of {', '.join((*PRESETS, 'beir'))}")
        path_ = r.get(c, "path", w, str, required=download == "beir")
        if check_paths and path_ is not None and not (path.resolve().parent / path_).exists():
            r.fail(f"{w}.path", f"{path_!r} does not exist (relative to {path.resolve().parent})")
        quirks = r.mapping(c.get("quirks") or {}, f"{w}.quirks")
        unknown = set(quirks) - {"drop_first_qrel"}
        if unknown:
            r.fail(f"{w}.quirks", f"unknown quirks {sorted(unknown)}")
        trials = _read_trials(r, key, r.get(c, "trials", w, dict), settings, f"{w}.trials")
        collections[key] = CollectionSpec(
            key=key, download=download, path=path_,
            language=r.get(c, "language", w, str, required=False, default="en"),
            domain_model=domain,
            query_instruction=r.get(c, "query_instruction", w, str),
            use_titles=r.get(c, "use_titles", w, bool, required=False, default=True),
            eval_split=r.get(c, "eval_split", w, str, required=False, default="test"),
            train_split=r.get(c, "train_split", w, str, required=False),
            drop_first_qrel=r.get(quirks, "drop_first_qrel", f"{w}.quirks", bool, required=False, default=False),
            trials=trials,
            n_eval_queries=r.positive_int(c, "n_eval_queries", w, required=False),
            revision=r.get(c, "revision", w, str, required=False),
            full_queries=r.positive_int(c, "full_queries", w, required=False),
        )
        if "\n" in collections[key].query_instruction:
            r.fail(f"{w}.query_instruction", "must be one line (the prompt adds the newline before Query:)")
    if not collections:
        r.fail("collections", "no collections")

    mg = r.mapping(r.get(raw, "merge", "", dict), "merge")
    merge = {
        "method": r.choice(mg, "method", "merge", MERGE_METHODS, default="linear"),
        "dtype": r.choice(mg, "dtype", "merge", DTYPES, default="float16"),
        "split_layer": r.positive_int(mg, "split_layer", "merge"),
        "grid": [r.alpha(a, f"merge.grid[{i}]") for i, a in enumerate(r.get(mg, "grid", "merge", list))],
        "restore_source_embeddings": r.get(mg, "restore_source_embeddings", "merge", bool, required=False,
                                           default=True),
    }
    if not merge["grid"] or len(set(merge["grid"])) != len(merge["grid"]):
        r.fail("merge.grid", "needs at least one alpha and no duplicates")
    for c in collections.values():  # in grid mode every published alpha must be a grid point
        for t in c.trials:
            for a in (t.alpha_lower, t.alpha_upper):
                if not any(math.isclose(a, g) for g in merge["grid"]):
                    r.fail(f"collections.{c.key}.trials.{t.setting}.{t.trial}.alpha", f"{a} is not in merge.grid")

    en = r.mapping(r.get(raw, "encoding", "", dict), "encoding")
    encoding = {
        "pooling": r.choice(en, "pooling", "encoding", POOLINGS, default="last"),
        "max_length": r.positive_int(en, "max_length", "encoding"),
        "dtype": r.choice(en, "dtype", "encoding", DTYPES, default="float32"),
        "batch_size": r.positive_int(en, "batch_size", "encoding", required=False, default=8),
    }
    ev = r.mapping(raw.get("evaluation") or {}, "evaluation")
    evaluation = {
        "depth": r.positive_int(ev, "depth", "evaluation", required=False, default=1000),
        "metric": r.get(ev, "metric", "evaluation", str, required=False, default="ndcg_cut_10"),
        "sweep_depth": r.positive_int(ev, "sweep_depth", "evaluation", required=False, default=100),
    }
    lora = _read_lora(r, r.get(raw, "lora", "", dict))
    tiny = raw.get("tiny")
    if any(m.tiny for m in models.values()):
        tiny = r.mapping(tiny, "tiny") if tiny is not None else r.fail("tiny", "missing (models use `tiny:`)")
        tc = r.get(tiny, "collection", "tiny", str)
        if tc not in collections:
            r.fail("tiny.collection", f"{tc!r} is not a key of collections")
        tiny = {"collection": tc, "seed": r.get(tiny, "seed", "tiny", int, required=False, default=0),
                "layers": r.positive_int(tiny, "layers", "tiny", required=False, default=4)}
        if merge["split_layer"] >= tiny["layers"]:
            r.fail("merge.split_layer", f"{merge['split_layer']} must be below tiny.layers {tiny['layers']}")

    return Experiment(path=path.resolve(), name=name, source_model=source_model, models=models,
                      collections=collections, settings=settings, merge=merge, encoding=encoding,
                      evaluation=evaluation, lora=lora, tiny=tiny, raw=raw)


# ---------------------------------------------------------------- planning


def parse_selection(value: str, known, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise MergeirError(f"{what}: empty")
    bad = [v for v in items if v not in known]
    if bad:
        raise MergeirError(f"{what}: unknown {', '.join(bad)} (known: {', '.join(known)})")
    return list(dict.fromkeys(items))
