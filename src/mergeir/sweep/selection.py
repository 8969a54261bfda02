"""Choosing (alpha_lower, alpha_upper): from an α grid evaluated on labelled queries, or the paper's values.

`grid` selection: the grid (bin/sweep.py: `grid.json` + `points/<al>_<au>/metrics.json`) must have been
evaluated on the setting's labelled queries (the split LoRA trains on), never on the evaluation split —
a grid on `test`, on the grid's recorded `eval_split`, or on a paper collection's known evaluation split is
refused. The score of a point is the mean per-query nDCG@10 (JQaRA: `jqara_ndcg@10`) over the chosen query
ids: every grid query for full data, or a limited-data trial's training queries (read from the Tevatron
training file's sidecar `<file>.json` `query_ids`, else from the jsonl's `query_id` fields).

Ties (scores within `TIE_EPS` of the best) go to the larger source weight: larger alpha_lower + alpha_upper,
then larger alpha_upper, then larger alpha_lower — the merge closest to the source retriever, which the
paper treats as the safe default.

`paper` selection reads the published (alpha_lower, alpha_upper) from the experiment YAML (data/paper.yaml)
through `mergeir.experiment`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..collections.splits import evaluation_splits
from ..errors import MergeirError
from ..experiment import Experiment, load_experiment, published_alpha
from ..io import Stage, iter_jsonl, read_json, read_json_object, sha256_file

TIE_EPS = 1e-12
TIE_RULE = (
    "highest mean per-query nDCG@10 over the chosen queries; scores within 1e-12 of the best tie, and ties go "
    "to the larger source weight: larger alpha_lower + alpha_upper, then larger alpha_upper, then larger alpha_lower"
)
PRIMARY_METRICS = ("jqara_ndcg@10", "ndcg_cut_10")  # the first one every query has is the table metric
# alpha.json is its own marker: select-alpha replaces only an alpha.json it wrote
SELECT_STAGE = Stage("select-alpha", "{name}", legacy=("alpha_lower", "alpha_upper", "selection", "tie_rule"))


# ---------------------------------------------------------------- metrics files

@dataclass(frozen=True)
class PerQuery:
    """One metrics.json reduced to what selection and the report need."""

    path: Path
    metric: str
    values: dict[str, float]  # qid -> primary metric
    mean: float  # fsum over sorted qids / n
    doc: dict  # the whole metrics.json


def primary_metric(per_query: dict, path) -> str:
    for m in PRIMARY_METRICS:
        if per_query and all(isinstance(v, dict) and m in v for v in per_query.values()):
            return m
    raise MergeirError(f"{path}: per_query entries lack ndcg_cut_10 (and jqara_ndcg@10)")


def mean_of(values: dict[str, float], qids=None) -> float:
    qids = sorted(values) if qids is None else sorted(qids)
    return math.fsum(values[q] for q in qids) / len(qids)


def read_per_query(path: str | Path) -> PerQuery:
    """Read a results metrics.json and check its per_query block against its mean (catches mixed-up files)."""
    path = Path(path)
    doc = read_json(path, "metrics.json")
    if not isinstance(doc, dict) or not isinstance(doc.get("per_query"), dict) or not doc["per_query"]:
        raise MergeirError(f"{path}: no per_query block (results metrics.json must keep per-query values)")
    metric = primary_metric(doc["per_query"], path)
    values = {}
    for qid, row in doc["per_query"].items():
        v = row[metric]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise MergeirError(f"{path}: query {qid}: {metric} is not a finite number ({v!r})")
        values[str(qid)] = float(v)
    mean = mean_of(values)
    recorded = (doc.get("mean") or {}).get(metric) if isinstance(doc.get("mean"), dict) else None
    # means may be rounded to 5 decimals (BEIR style); anything further off is a different set of queries
    if isinstance(recorded, (int, float)) and abs(recorded - mean) > 1e-4:
        raise MergeirError(
            f"{path}: mean {metric} {recorded} does not match the mean of its per_query values {mean:.6f}"
        )
    return PerQuery(path, metric, values, mean, doc)


# ---------------------------------------------------------------- grids

def parse_alpha(value, where: str) -> float:
    if isinstance(value, bool):
        raise MergeirError(f"{where}: alpha {value!r} is not a number")
    if isinstance(value, str):
        s = value.strip()
        if re.fullmatch(r"\d+", s) and len(s) >= 2:  # the authors' folder codes: 00, 025, 05, 075, 10
            value = int(s) / 10 ** (len(s) - 1)
        else:
            try:
                value = float(s)
            except ValueError:
                raise MergeirError(f"{where}: alpha {value!r} is not a number") from None
    if not isinstance(value, (int, float)) or not (0.0 <= float(value) <= 1.0):
        raise MergeirError(f"{where}: alpha {value!r} must be a number in [0, 1]")
    return float(value)


@dataclass(frozen=True)
class GridPoint:
    alpha_lower: float | None  # None: a profile of other than two groups (an α search's point)
    alpha_upper: float | None
    dir: str
    metrics: PerQuery
    profile: tuple[float, ...] = ()  # one α per layer group; a grid point's is (alpha_lower, alpha_upper)


@dataclass(frozen=True)
class Grid:
    root: Path
    collection: str
    split: str
    eval_split: str | None
    alphas: list[float]
    points: list[GridPoint]  # sorted by profile: (alpha_lower, alpha_upper) on a grid
    metric: str
    query_ids: list[str]  # sorted; identical for every point
    sha256: str  # of grid.json
    collection_checksum: str | None = None  # the collection the grid was evaluated on (None: not recorded)
    groups: int = 2  # alphas per point: 2 on a grid, K on an α search's (sweep.search)
    search: dict | None = None  # an α search's grid.json `search` block (sampler, budget, order, objective)

    def scores(self, query_ids=None) -> dict[tuple[float, ...], float]:
        """{profile: score}; a grid point's profile is (alpha_lower, alpha_upper)."""
        return {p.profile: mean_of(p.metrics.values, query_ids) for p in self.points}


def load_grid(root: str | Path) -> Grid:
    """Read and validate a grid folder (grid.json + one metrics.json per point, same queries everywhere)."""
    root = Path(root)
    gpath = root / "grid.json"
    if not root.is_dir():
        raise MergeirError(f"--grid {root}: not a folder")
    doc = read_json_object(gpath, "grid.json")
    for key in ("collection", "split", "points"):
        if key not in doc:
            raise MergeirError(f"{gpath}: missing '{key}'")
    if "partial" in doc:  # some alpha_lower rows only: selecting or reporting on it would miss the others
        raise MergeirError(f"{gpath}: a partial grid (bin/sweep.py --alpha-lower, rows {doc['partial']!r}); gather "
                           "the parts into the whole grid first (bin/gather.py grid --part ...)")
    if not isinstance(doc["points"], list) or not doc["points"]:
        raise MergeirError(f"{gpath}: 'points' must be a non-empty list")
    points, seen = [], {}
    metric = None
    groups = doc.get("groups", 2)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise MergeirError(f"{gpath}: 'groups' must be an integer >= 1, got {groups!r}")
    for i, p in enumerate(doc["points"]):
        where = f"{gpath} points[{i}]"
        if not isinstance(p, dict) or "dir" not in p:
            raise MergeirError(f"{where}: expected {{alpha_lower, alpha_upper, ndcg_cut_10, dir}}")
        profile = _point_profile(p, groups, where)
        al, au = profile if groups == 2 else (None, None)
        if profile in seen:
            raise MergeirError(f"{where}: alpha {profile} appears twice (also in {seen[profile]})")
        seen[profile] = p["dir"]
        pq = read_per_query(root / str(p["dir"]) / "metrics.json")
        if metric is None:
            metric = pq.metric
        elif pq.metric != metric:
            raise MergeirError(f"{pq.path}: metric {pq.metric} differs from the grid's other points ({metric})")
        tags = pq.doc.get("tags") or {}
        for name, val in (("alpha_lower", al), ("alpha_upper", au)):
            if val is not None and tags.get(name) not in (None, "") and \
                    abs(parse_alpha(tags[name], str(pq.path)) - val) > 1e-9:
                raise MergeirError(f"{pq.path}: tags.{name}={tags[name]} but grid.json says {val}")
        if tags.get("profile") not in (None, "") and \
                _point_profile({"profile": str(tags["profile"]).split(",")}, groups, str(pq.path)) != profile:
            raise MergeirError(f"{pq.path}: tags.profile={tags['profile']} but grid.json says {list(profile)}")
        split = pq.doc.get("split")
        if split not in (None, "") and split != doc["split"]:
            raise MergeirError(f"{pq.path}: split {split!r} but grid.json says {doc['split']!r}")
        recorded = p.get("ndcg_cut_10")
        if pq.metric == "ndcg_cut_10" and isinstance(recorded, (int, float)) and abs(recorded - pq.mean) > 1e-4:
            raise MergeirError(f"{where}: ndcg_cut_10 {recorded} differs from {pq.path} ({pq.mean:.6f})")
        points.append(GridPoint(al, au, str(p["dir"]), pq, profile))
    points.sort(key=lambda g: g.profile)
    qids = sorted(points[0].metrics.values)
    for g in points[1:]:
        if sorted(g.metrics.values) != qids:
            diff = sorted(set(qids) ^ set(g.metrics.values))
            raise MergeirError(f"{g.metrics.path}: queries differ from {points[0].metrics.path} (e.g. {diff[:3]})")
    alphas = sorted({parse_alpha(a, f"{gpath} grid") for a in doc.get("grid") or []} |
                    {a for g in points for a in g.profile})
    checksum = doc.get("collection_checksum") or (points[0].metrics.doc.get("provenance") or {}).get(
        "collection_checksum")
    return Grid(root, str(doc["collection"]), str(doc["split"]), doc.get("eval_split"), alphas, points,
                metric, qids, sha256_file(gpath), checksum, groups,
                doc["search"] if isinstance(doc.get("search"), dict) else None)


def _point_profile(p: dict, groups: int, where: str) -> tuple[float, ...]:
    """A point's alphas: (alpha_lower, alpha_upper) on a grid, its `profile` on an α search's."""
    if "profile" not in p or (groups == 2 and "alpha_lower" in p):
        return parse_alpha(p.get("alpha_lower"), where), parse_alpha(p.get("alpha_upper"), where)
    prof = p["profile"]
    if not isinstance(prof, list) or len(prof) != groups:
        raise MergeirError(f"{where}: 'profile' must be a list of {groups} alphas (one per layer group), got {prof!r}")
    return tuple(parse_alpha(a, where) for a in prof)


def check_not_eval_split(grid: Grid, eval_split: str | None = None) -> None:
    """Refuse a grid evaluated on the collection's evaluation queries: α must never be tuned on test."""
    if grid.split in evaluation_splits(grid.collection, eval_split, grid.eval_split):
        raise MergeirError(
            f"{grid.root / 'grid.json'}: grid was evaluated on split '{grid.split}', the evaluation split of "
            f"{grid.collection}; α must be selected on labelled training queries (sweep.py --split train)"
        )


# ---------------------------------------------------------------- query ids of a training set

def read_query_ids(train_file: str | Path) -> tuple[list[str], str, dict]:
    """Query ids of a Tevatron training file: its sidecar `<file>.json` query_ids, else the jsonl's query_id.

    Returns (ids in file order, where they came from, the sidecar or {}).
    """
    train_file = Path(train_file)
    if not train_file.is_file():
        raise MergeirError(f"--queries {train_file}: file not found")
    sidecar_path = train_file.with_name(train_file.name + ".json")
    sidecar = read_json(sidecar_path, "training sidecar") if sidecar_path.is_file() else {}
    if sidecar and not isinstance(sidecar, dict):
        raise MergeirError(f"{sidecar_path}: expected a JSON object")
    if isinstance(sidecar.get("query_ids"), list):
        raw, source = sidecar["query_ids"], f"{sidecar_path.name}:query_ids"
    else:
        raw = []
        for n, row in iter_jsonl(train_file):
            if "query_id" not in row:
                raise MergeirError(f"{train_file}:{n}: no query_id field")
            raw.append(row["query_id"])
        source = f"{train_file.name}:query_id"
    ids = list(dict.fromkeys(str(q) for q in raw))
    if not ids:
        raise MergeirError(f"--queries {train_file}: no query ids")
    return ids, source, sidecar


def check_same_collection(sidecar: dict, grid: Grid, train_file) -> None:
    """Trial queries name their collection in the sidecar: ids that happen to exist in another collection's
    grid must not choose its alpha."""
    name, checksum = sidecar.get("collection"), sidecar.get("collection_checksum")
    if name is not None and str(name) != grid.collection:
        raise MergeirError(f"--queries {train_file}: its sidecar names collection '{name}', but the grid "
                           f"{grid.root} was evaluated on '{grid.collection}'")
    if checksum and grid.collection_checksum and checksum != grid.collection_checksum:
        raise MergeirError(
            f"--queries {train_file}: drawn from collection '{name}' with checksum {checksum[:12]}..., but the grid "
            f"{grid.root} was evaluated on a collection with checksum {grid.collection_checksum[:12]}... (a "
            "different version or subset: mine the training set on the grid's collection)")


# ---------------------------------------------------------------- selection

def pick(scores: dict[tuple[float, ...], float]) -> tuple[float, ...]:
    """The best (alpha_lower, alpha_upper), or profile, under TIE_RULE (a profile's ties: the larger sum of its
    alphas, then the larger alphas from the last group down, which is TIE_RULE for two groups)."""
    best = max(scores.values())
    tied = [a for a, s in scores.items() if s >= best - TIE_EPS]
    return max(tied, key=lambda a: (sum(a), a[::-1]))


def select_from_grid(grid_dir, train_file=None, eval_split: str | None = None) -> dict:
    """alpha.json content for `grid` selection."""
    grid = load_grid(grid_dir)
    check_not_eval_split(grid, eval_split)
    queries: dict = {"source": "grid", "n": len(grid.query_ids)}
    qids = grid.query_ids
    if train_file is not None:
        ids, source, sidecar = read_query_ids(train_file)
        check_same_collection(sidecar, grid, train_file)
        side_split = sidecar.get("split")
        if side_split is not None and side_split != grid.split:
            raise MergeirError(
                f"--queries {train_file}: training queries come from split '{side_split}' but the grid was "
                f"evaluated on '{grid.split}'"
            )
        missing = [q for q in ids if q not in set(grid.query_ids)]
        if missing:
            raise MergeirError(
                f"--queries {train_file}: {len(missing)} query ids are not in the grid's per_query "
                f"(e.g. {', '.join(missing[:5])}); the grid must be evaluated on the training queries' split"
            )
        qids = sorted(ids)
        queries = {"source": source, "file": Path(train_file).name, "sha256": sha256_file(train_file),
                   "n": len(qids)}
    scores = grid.scores(qids)
    best = pick(scores)
    al, au = best if grid.groups == 2 else (None, None)
    if grid.groups == 2:
        listed = [{"alpha_lower": a, "alpha_upper": b, grid.metric: s} for (a, b), s in sorted(scores.items())]
    else:
        listed = [{"profile": list(p), grid.metric: s} for p, s in sorted(scores.items())]
    return {
        "alpha_lower": al,
        "alpha_upper": au,
        **({} if grid.groups == 2 else {"profile": list(best), "groups": grid.groups}),
        "selection": "grid",
        "metric": grid.metric,
        "ndcg_cut_10": scores[best],
        "n_queries": len(qids),
        "tie_rule": TIE_RULE,
        "grid": {
            "collection": grid.collection,
            "split": grid.split,
            "alphas": grid.alphas,
            "n_points": len(grid.points),
            "grid_json_sha256": grid.sha256,
            "scores": listed,
        },
        "queries": queries,
    }


# ---------------------------------------------------------------- the paper's values

def parse_setting(setting: str, trial) -> tuple[str, int | None]:
    """'full' | 'limited' (+ trial 1..N; 'v3' accepted) -> normalised (setting, trial)."""
    s = str(setting).strip().lower()
    m = re.fullmatch(r"limited[_\-]?(?:data)?[_\-]?v?(\d+)", s)
    if m:
        s, trial = "limited", trial if trial not in (None, "") else m.group(1)
    if s in ("full", "full_data", "full-data"):
        return "full", None
    if s not in ("limited", "limited_data", "limited-data"):
        raise MergeirError(f"--setting {setting!r}: expected 'full' or 'limited'")
    if trial in (None, ""):
        raise MergeirError("--trial is required for the limited setting")
    t = str(trial).strip().lower().lstrip("v")
    if not t.isdigit() or int(t) < 1:
        raise MergeirError(f"--trial {trial!r}: expected a trial number 1, 2, ... (or v1, v2, ...)")
    return "limited", int(t)


def _experiment_collection(experiment: Experiment, name: str) -> str:
    """An experiment's collection key from its key or its download name (scifact, miracl-ja, beir:...)."""
    if name in experiment.collections:
        return name
    hits = [k for k, c in experiment.collections.items() if c.download == name]
    if len(hits) == 1:
        return hits[0]
    known = ", ".join(experiment.collections)
    raise MergeirError(f"--collection {name!r}: not in {experiment.path} (known: {known})")


def select_from_paper(experiment_file, collection: str, setting: str, trial=None) -> dict:
    """alpha.json content for `paper` selection: the authors' published grid-search choice from the
    experiment YAML (data/paper.yaml), read with mergeir.experiment."""
    experiment_file = Path(experiment_file)
    if not experiment_file.is_file():
        raise MergeirError(f"--experiment {experiment_file}: file not found")
    experiment = load_experiment(experiment_file)
    key = _experiment_collection(experiment, collection)
    setting, t = parse_setting(setting, trial)
    name = "full" if setting == "full" else f"v{t}"
    al, au = published_alpha(experiment, key, setting, name)
    return {
        "alpha_lower": float(al),
        "alpha_upper": float(au),
        "selection": "paper",
        "metric": None,
        "ndcg_cut_10": None,
        "n_queries": None,
        "tie_rule": None,
        "paper": {"experiment": experiment_file.name, "sha256": sha256_file(experiment_file),
                  "collection": key, "setting": setting, "trial": name},
    }
