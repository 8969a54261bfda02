"""Gathering an α sweep run as partial grids (`bin/sweep.py --alpha-lower A`, one job per alpha_lower) into the grid
artifact the whole sweep would have written. A partial grid is a sweep folder whose grid.json names its rows in
`"partial"`; the parts of one sweep must agree on everything that determines their points (not on their rows or
their batching: mergeir.encoding.shards, "what a shard or part must agree on"), and every grid metric must be finite.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Sequence

from ..encoding.shards import BATCHING, differ, is_int, is_number, non_finite
from ..errors import MergeirError
from ..io import atomic_dir, read_json_object, write_json
from ..merging.alphas import alpha_code, same_alpha
from .grid_search import SWEEP_STAGE


def _grid_doc(d: Path) -> dict:
    """A partial grid.json, checked field by field: one error naming the part and the field."""
    path = d / "grid.json"
    doc = read_json_object(path, "grid")
    if "partial" not in doc:
        raise MergeirError(f"{d}: not a partial grid (grid.json has no \"partial\"; written by bin/sweep.py "
                           "--alpha-lower A)")
    partial = doc["partial"]
    lowers = partial.get("alpha_lower") if isinstance(partial, dict) else None
    if not (isinstance(lowers, list) and lowers and all(is_number(a) and math.isfinite(a) for a in lowers)):
        raise MergeirError(f"{path}: \"partial\" must be {{\"alpha_lower\": [numbers]}}, got {partial!r}")
    grid = doc.get("grid")
    if not (isinstance(grid, list) and grid and all(is_number(a) and math.isfinite(a) for a in grid)):
        raise MergeirError(f"{path}: \"grid\" must be a list of numbers, got {grid!r}")
    points = doc.get("points")
    if not isinstance(points, list):
        raise MergeirError(f"{path}: \"points\" must be a list, got {type(points).__name__}")
    for i, p in enumerate(points):
        if not isinstance(p, dict):
            raise MergeirError(f"{path}: points[{i}] must be an object, got {p!r}")
        for key in ("alpha_lower", "alpha_upper", "ndcg_cut_10"):
            v = p.get(key)
            if not is_number(v):
                raise MergeirError(f"{path}: points[{i}].{key} must be a number, got {v!r}")
            if not math.isfinite(v):
                raise MergeirError(f"{path}: points[{i}].{key} is {v} (alpha_lower {p.get('alpha_lower')}, "
                                   f"alpha_upper {p.get('alpha_upper')}): a grid metric must be finite")
        # the folder the sweep names this point (grid_search: alpha_code, e.g. points/05_1e-05): never a path out
        # of the part, nor another point's folder (its metrics would be filed under this point's alphas)
        want = f"points/{alpha_code(p['alpha_lower'])}_{alpha_code(p['alpha_upper'])}"
        if p.get("dir") != want:
            raise MergeirError(f"{path}: points[{i}].dir must be points/<al>_<au> of its alphas ({want}), got "
                               f"{p.get('dir')!r}")
        if not any(same_alpha(p["alpha_lower"], a) for a in lowers):
            raise MergeirError(f"{path}: points[{i}] has alpha_lower {p['alpha_lower']}, not one of the part's "
                               f"{lowers}")
    found = non_finite({k: v for k, v in doc.items() if k != "points"})
    if found:
        raise MergeirError(f"{path}: {found} is not a finite number")
    return doc


def _what_sweeps(doc: dict, other: dict) -> dict:
    """The fields of a partial grid.json that determine its points (not its points, its rows or its batching;
    a model's folder only when the weights' hashes are not recorded)."""
    out = {k: v for k, v in doc.items() if k not in ("points", "partial", *BATCHING)}
    inputs, theirs = doc.get("inputs"), other.get("inputs")
    if isinstance(inputs, dict) and isinstance(theirs, dict):
        out["inputs"] = {role: ({k: v for k, v in rec.items() if k != "path"}
                                if isinstance(rec, dict) and rec.get("weights_sha256")
                                and isinstance(theirs.get(role), dict) and theirs[role].get("weights_sha256") else rec)
                         for role, rec in inputs.items()}
    return out


def _point_metrics(d: Path, point: dict) -> Path:
    src = d / point["dir"]
    metrics = src / "metrics.json"
    if not metrics.is_file():
        raise MergeirError(f"{d}: point folder {point['dir']} is missing or incomplete")
    doc = read_json_object(metrics, "point metrics")
    found = non_finite({k: doc.get(k) for k in ("mean", "per_query")})
    if found:
        raise MergeirError(f"{metrics}: {found} is not a finite number (alpha_lower {point['alpha_lower']}, "
                           f"alpha_upper {point['alpha_upper']}): a grid metric must be finite")
    return src


def gather_grid(part_dirs: Sequence[str | os.PathLike], out: str | os.PathLike, force: bool = False) -> dict:
    """Write the grid artifact of a sweep run as partial grids (`bin/sweep.py --alpha-lower A`): the points of
    every part and the grid.json the whole sweep would have written."""

    dirs = [Path(d) for d in part_dirs]
    if not dirs:
        raise MergeirError("no --part folder given")
    docs = [_grid_doc(d) for d in dirs]
    for d, doc in zip(dirs[1:], docs[1:]):
        diff = differ(_what_sweeps(doc, docs[0]), _what_sweeps(docs[0], doc))
        if diff:
            raise MergeirError(f"{d} is part of another sweep than {dirs[0]} (grid.json differs in {', '.join(diff)})")
    lowers = [a for doc in docs for a in doc["partial"]["alpha_lower"]]
    grid = docs[0]["grid"]
    for a in lowers:
        if sum(same_alpha(a, b) for b in lowers) > 1:
            raise MergeirError(f"alpha_lower {a} is in more than one --part")
    missing = [g for g in grid if not any(same_alpha(g, a) for a in lowers)]
    if missing:
        raise MergeirError(f"no --part holds alpha_lower {', '.join(map(str, missing))} of the grid")
    strays = [a for a in lowers if not any(same_alpha(g, a) for g in grid)]
    if strays:
        raise MergeirError(f"alpha_lower {', '.join(map(str, strays))} of a --part is not a value of the grid {grid}")
    have, named = {}, set()
    for d, doc in zip(dirs, docs):
        for p in doc["points"]:
            key = (p["alpha_lower"], p["alpha_upper"])
            if key in have:
                raise MergeirError(f"{d}: point alpha_lower {key[0]}, alpha_upper {key[1]} is also in {have[key][0]}")
            if p["dir"] in named:
                raise MergeirError(f"{d}: point folder {p['dir']} is named by two points")
            have[key] = (d, p)
            named.add(p["dir"])
    absent = [(al, au) for al in grid for au in grid
              if not any(same_alpha(al, k[0]) and same_alpha(au, k[1]) for k in have)]
    if absent or len(have) != len(grid) ** 2:
        raise MergeirError(f"the parts hold {len(have)} points of the {len(grid)}x{len(grid)} grid"
                           + (f"; missing alpha_lower, alpha_upper {absent[0]}" if absent else ""))
    sources = {p["dir"]: _point_metrics(d, p) for d, p in have.values()}
    points = sorted((p for doc in docs for p in doc["points"]), key=lambda p: (p["alpha_lower"], p["alpha_upper"]))
    # a part retried after running out of memory ran with a halved batch: the grid records the run's own
    first = max(range(len(docs)), key=lambda i: docs[i].get("batch_size") if is_int(docs[i].get("batch_size")) else 0)
    full = {k: (points if k == "points" else v) for k, v in docs[first].items() if k != "partial"}
    with atomic_dir(out, stage=SWEEP_STAGE, inputs={"--part": [str(d) for d in dirs]}, force=force) as tmp:
        for rel, src in sources.items():
            shutil.copytree(src, tmp / rel)
        write_json(tmp / "grid.json", full)
    return full
