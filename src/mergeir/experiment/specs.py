"""What an experiment file says, as frozen dataclasses: one per section, so a planner reads
`experiment.merge.grid`, not a dict key that a typo turns into a KeyError at task time."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MergeirError
from ..training.recipe import Recipe

FORMAT = 1
SETTINGS = ("full", "limited")
ALPHA_SELECTIONS = ("paper", "grid")
POOLINGS = ("last", "mean", "cls")
MERGE_METHODS = ("linear", "slerp", "ties", "task_arithmetic", "dare_ties")
COMMIT = re.compile(r"^[0-9a-f]{40}$")


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
        return self.tiny is not None or (self.revision is not None and bool(COMMIT.match(self.revision)))


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
class SettingSpec:
    """One entry of `settings:`: how its training queries are drawn."""

    n_queries: int | None  # queries per limited-data trial (None for the full setting)
    seed_base: int = 0  # limited trial vk samples with seed seed_base + k; the full sample with seed_base
    steps_per_epoch: int | None = None  # turns a trial's `epochs` into max_steps


@dataclass(frozen=True)
class SearchSpec:
    """merge.search: an α-profile search (bin/sweep.py --search) run beside the grid, its pick a `search` arm."""
    sampler: str = "tpe"
    groups: int = 4  # layer groups, one α each
    budget: int = 25  # profiles evaluated (the paper's 5 x 5 grid: 25)
    seed: int = 0
    step: float | None = 0.05  # α lattice of tpe/cmaes/random


@dataclass(frozen=True)
class MergeSpec:
    method: str
    dtype: str
    split_layer: int  # layers below it take alpha_lower, the rest alpha_upper
    grid: tuple[float, ...]  # the alphas a grid search tries (every published alpha is one of them)
    restore_source_embeddings: bool = True
    search: SearchSpec | None = None


@dataclass(frozen=True)
class EncodingSpec:
    pooling: str
    max_length: int
    dtype: str = "float32"
    batch_size: int = 8


@dataclass(frozen=True)
class EvaluationSpec:
    depth: int = 1000  # documents per query in a run
    metric: str = "ndcg_cut_10"  # the only value read: selection and the report score nDCG@10 (sections.METRICS)
    sweep_depth: int = 100  # documents per query while the grid is searched


@dataclass(frozen=True)
class LoraSpec:
    """The `lora:` section: the recipe (mergeir.training.recipe.Recipe fields; those left out keep the paper's
    values), the DeepSpeed config file and how many hard negatives to mine per training query."""

    recipe: Recipe
    deepspeed: str | None  # a file relative to the experiment file, or None
    negatives: int


@dataclass(frozen=True)
class TinySpec:
    """How make_tiny.py builds the tiny source/domain pair (tests and the CPU example)."""

    collection: str  # the collection whose texts train the tiny tokenizer
    seed: int = 0
    layers: int = 4


@dataclass(frozen=True)
class Experiment:
    path: Path
    name: str
    source_model: str
    models: dict[str, ModelSpec]
    collections: dict[str, CollectionSpec]
    settings: dict[str, SettingSpec]
    merge: MergeSpec
    encoding: EncodingSpec
    evaluation: EvaluationSpec
    lora: LoraSpec
    tiny: TinySpec | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def trial(self, collection: str, setting: str, trial: str) -> TrialSpec:
        for spec in self.collection(collection).trials:
            if spec.setting == setting and spec.trial == trial:
                return spec
        known = ", ".join(f"{t.setting}/{t.trial}" for t in self.collection(collection).trials)
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


def published_alpha(experiment: Experiment, collection: str, setting: str, trial: str) -> tuple[float, float]:
    """(alpha_lower, alpha_upper) the authors chose for this collection, setting and trial."""
    spec = experiment.trial(collection, setting, trial)
    return spec.alpha_lower, spec.alpha_upper


def parse_selection(value: str, known, what: str) -> list[str]:
    """A comma-separated choice among an experiment's keys (--dataset, --settings), in order, once each."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise MergeirError(f"{what}: empty")
    bad = [v for v in items if v not in known]
    if bad:
        raise MergeirError(f"{what}: unknown {', '.join(bad)} (known: {', '.join(known)})")
    return list(dict.fromkeys(items))
