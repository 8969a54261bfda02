"""The report's inputs: result and α-grid folders scanned for `grid.json` / `metrics.json`, each result classified
by its `tags` (collection, arm = source | merged | lora, setting = full | limited, trial, alpha_lower, alpha_upper),
and the check that one collection's rows were scored on the same data."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MergeirError
from ..io import sha256_file
from ..sweep.selection import PerQuery, load_grid, parse_alpha, parse_setting, read_per_query

ARMS = {"source": "source", "merged": "merged", "merge": "merged", "lora": "lora", "search": "search"}
TABLE_ARMS = ("source", "merged", "lora", "search")  # search: the α-profile search's pick (report.search_table)
COLLECTION_ORDER = ("nfcorpus", "scifact", "miracl-ja", "miracl", "jqara")  # the paper's column order


@dataclass(frozen=True)
class Result:
    collection: str
    arm: str
    setting: str | None  # None for the source (it is not trained)
    trial: int | None  # limited data only
    alpha_lower: float | None
    alpha_upper: float | None
    split: str | None
    metrics: PerQuery
    rel: str  # path shown in messages/provenance, relative to the folder it was found under
    profile: tuple[float, ...] | None = None  # an α search's pick: one α per layer group

    @property
    def key(self):
        return (self.collection, self.arm, self.setting, self.trial)


@dataclass
class Inputs:
    results: dict = field(default_factory=dict)  # key -> Result
    grids: dict = field(default_factory=dict)  # (collection, split) -> Grid
    searches: dict = field(default_factory=dict)  # (collection, split) -> Grid of an α search (grid.json `search`)
    notes: list = field(default_factory=list)
    files: list = field(default_factory=list)  # provenance rows
    paths: list = field(default_factory=list)  # every file read (the output guard keeps --out off them)


def collection_sort_key(name: str):
    """The paper's collections in its column order, then any other collection by name."""
    low = name.lower()
    return (COLLECTION_ORDER.index(low), "") if low in COLLECTION_ORDER else (len(COLLECTION_ORDER), low)


def _scan(dirs, option: str):
    """(label, root, path) of every grid.json and metrics.json under the given folders, sorted, deduplicated."""
    grids, metrics, seen = [], [], set()
    for i, d in enumerate(dirs):
        d = Path(d)
        if not d.is_dir():
            raise MergeirError(f"{option} {d}: not a folder")
        label = f"{option.lstrip('-')}[{i}]"
        for p in _walk(d):
            real = p.resolve()
            if real not in seen:
                seen.add(real)
                (grids if p.name == "grid.json" else metrics).append((f"{label}/{p.relative_to(d).as_posix()}", p))
    return grids, metrics


def _walk(root: Path) -> list[Path]:
    """grid.json / metrics.json files under root, sorted. Follows symlinked folders (Nextflow stages inputs as
    symlinks, which Path.rglob skips) and visits each real folder once (no symlink loops)."""
    found, visited = [], set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames.sort()
        found += [Path(dirpath) / f for f in ("grid.json", "metrics.json") if f in filenames]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _result(rel: str, path: Path) -> Result:
    pq = read_per_query(path)
    tags = pq.doc.get("tags")
    if not isinstance(tags, dict) or not tags.get("arm"):
        raise MergeirError(f"{path}: no tags.arm (evaluate.py --tag arm=source|merged|lora ...)")
    # the caller's tag wins: an experiment may key a collection differently from its folder name (miracl / miracl-ja)
    collection = tags.get("collection") or pq.doc.get("collection")
    if not collection:
        raise MergeirError(f"{path}: no tags.collection")
    arm = ARMS.get(str(tags["arm"]).strip().lower(), str(tags["arm"]))
    setting = trial = None
    if arm in ("merged", "lora", "search"):
        if tags.get("setting") in (None, ""):
            raise MergeirError(f"{path}: {arm} result without tags.setting (full | limited)")
        try:
            setting, trial = parse_setting(tags["setting"], tags.get("trial"))
        except MergeirError as e:
            raise MergeirError(f"{path}: {str(e).replace('--', 'tags.')}") from None
    al = au = profile = None
    if arm == "search" and tags.get("profile") not in (None, ""):
        profile = tuple(parse_alpha(a, str(path)) for a in str(tags["profile"]).split(","))
    elif arm in ("merged", "search"):
        if tags.get("alpha_lower") in (None, "") or tags.get("alpha_upper") in (None, ""):
            raise MergeirError(f"{path}: {arm} result without tags.alpha_lower / tags.alpha_upper"
                               f"{' (or tags.profile)' if arm == 'search' else ''}")
        al, au = parse_alpha(tags["alpha_lower"], str(path)), parse_alpha(tags["alpha_upper"], str(path))
        profile = (al, au) if arm == "search" else None
    return Result(str(collection), arm, setting, trial, al, au, pq.doc.get("split"), pq, rel, profile)


def load_inputs(results_dirs, grid_dirs) -> Inputs:
    inp = Inputs()
    g1, m1 = _scan(results_dirs, "--results")
    g2, m2 = _scan(grid_dirs, "--grid")
    grid_files = sorted({p.resolve(): (rel, p) for rel, p in g1 + g2}.values())
    grid_roots = [p.parent.resolve() for _, p in grid_files]
    for rel, p in grid_files:
        g = load_grid(p.parent)
        k = (g.collection, g.split)
        found = inp.searches if g.search is not None else inp.grids
        if k in found:
            what = "α searches" if g.search is not None else "α grids"
            raise MergeirError(f"two {what} for collection {k[0]} split {k[1]}: {found[k].root} and {g.root}")
        found[k] = g
        inp.files.append({"kind": "grid", "path": rel, "sha256": g.sha256})
    seen_metrics = set()
    ignored: dict[str, int] = {}
    for rel, p in m1 + m2:
        real = p.resolve()
        if real in seen_metrics or any(r in real.parents for r in grid_roots):
            continue  # a grid point, read with its grid
        seen_metrics.add(real)
        r = _result(rel, p)
        if r.arm not in TABLE_ARMS:
            ignored[r.arm] = ignored.get(r.arm, 0) + 1
            continue
        if r.key in inp.results:
            other = inp.results[r.key]
            raise MergeirError(
                f"two results for the same tags (collection={r.collection}, arm={r.arm}, setting={r.setting}, "
                f"trial={r.trial}): {other.metrics.path} and {p}"
            )
        inp.results[r.key] = r
        inp.files.append({"kind": "result", "path": rel, "sha256": sha256_file(p), "tags": r.metrics.doc.get("tags")})
    for arm, n in sorted(ignored.items()):
        inp.notes.append(f"Ignored {n} result(s) with arm '{arm}' (the tables compare source, merged and lora).")
    if not inp.results and not inp.grids:
        dirs = ", ".join(str(d) for d in list(results_dirs) + list(grid_dirs))
        raise MergeirError(f"no metrics.json or grid.json found under {dirs}")
    inp.files.sort(key=lambda f: (f["kind"], f["path"]))
    check_same_judgments(list(inp.results.values()))
    inp.paths = [p for _, p in g1 + g2 + m1 + m2]
    return inp


def _scored_on(r: Result) -> dict:
    """What a result was scored against, as far as its metrics.json records it (None: not recorded)."""
    prov = r.metrics.doc.get("provenance") or {}
    qrels = prov.get("qrels") if isinstance(prov.get("qrels"), dict) else {}
    drop = qrels.get("drop_first_qrel", prov.get("drop_first_qrel"))
    return {"split": r.split, "collection checksum": prov.get("collection_checksum"),
            "qrels file sha256": qrels.get("sha256"), "drop_first_qrel": drop}


def check_same_judgments(results: list[Result]) -> None:
    """Refuse a table whose rows under one collection tag were scored on different collections or qrels (a
    changed qrels file flips a delta's sign without any other sign). Unrecorded fields are unknown, not a
    mismatch: older metrics.json files lack the qrels identity, which is then warned about."""
    by_coll: dict[str, list[Result]] = {}
    for r in sorted(results, key=lambda r: r.rel):
        by_coll.setdefault(r.collection, []).append(r)
    unknown = 0
    for c, rs in sorted(by_coll.items()):
        first: dict[str, tuple[Result, object]] = {}
        for r in rs:
            scored = _scored_on(r)
            unknown += scored["qrels file sha256"] is None
            for field_, value in scored.items():
                if value is None:
                    continue
                if field_ not in first:
                    first[field_] = (r, value)
                elif first[field_][1] != value:
                    other, v = first[field_]
                    raise MergeirError(
                        f"results for collection '{c}' were scored on different data ({field_}: {v} in "
                        f"{other.metrics.path.parent}, {value} in {r.metrics.path.parent}); one table compares runs "
                        "on one collection and one set of qrels")
    if unknown:
        print(f"warning: {unknown} result(s) do not record their qrels file (written by an older evaluate.py); "
              "compared by collection checksum, split and drop_first_qrel only", file=sys.stderr)
