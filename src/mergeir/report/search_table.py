"""Table D: the α-profile search against the grid, per collection (only when a search is among the inputs).

Train columns: on the queries the search optimised (its recorded objective: the split's queries, or a training
file's such as the positive control's held-out half), the best score of the grid and of the search, both as the
same selection rule reads them, with the search's budget, sampler, seed and group count. Test columns: the
full-data `search` result (the searched profile, evaluated like any merged model) against the full-data `merged`
result (the grid's pick) over the same test queries, with the paired tests of Tables A-C.
"""

from __future__ import annotations

from ..sweep.selection import pick
from .inputs import Inputs, collection_sort_key
from .render import Col, Table
from .tables import _P_COLS, _compare, _mean, _metric_name, _split


def _text(alphas) -> str | None:
    return None if alphas is None else ", ".join(f"{a:g}" for a in alphas)


def _best(grid, qids) -> tuple[tuple[float, ...], float] | tuple[None, None]:
    if grid is None or (qids is not None and not set(qids) <= set(grid.query_ids)):
        return None, None
    scores = grid.scores(qids)
    best = pick(scores)
    return best, scores[best]


def _artifact_for(inp: Inputs, result) -> tuple | None:
    """The (collection, split) key of the α search a `search` result's profile came from: the search on the
    collection of that name, else the one evaluated on the same collection (checksum: a pipeline's results are
    tagged with the experiment's key, its grids with the collection's own name)."""
    by_name = [k for k in inp.searches if k[0] == result.collection]
    if by_name:
        return sorted(by_name)[0]
    checksum = (result.metrics.doc.get("provenance") or {}).get("collection_checksum")
    same = [k for k, g in inp.searches.items() if checksum and g.collection_checksum == checksum]
    return sorted(same)[0] if len(same) == 1 else None


def search_tables(inp: Inputs, n_permutations: int, seed: int) -> list[Table]:
    R = inp.results
    matched = {k[0]: _artifact_for(inp, R[k]) for k in R if k[1] == "search" and k[2] == "full"}
    unmatched = sorted(k for k in inp.searches if k not in matched.values())  # a search without its test result
    entries = [(c, matched[c]) for c in sorted(matched, key=collection_sort_key)] + [(None, k) for k in unmatched]
    if not entries:
        return []
    rows, pairs = [], []
    for c, key in entries:
        search = inp.searches.get(key) if key else None
        grid = inp.grids.get(key) if key else None
        info = (search.search or {}) if search else {}
        objective = info.get("objective") or {}
        qids = objective.get("query_ids")  # None: every query of the split
        grid_alpha, grid_train = _best(grid, qids)
        search_alpha, search_train = _best(search, qids)
        s, m = (R.get((c, "search", "full", None)), R.get((c, "merged", "full", None))) if c else (None, None)
        rows.append({
            "collection": c or search.collection, "metric": _metric_name(s, m), "split": _split(s, m),
            "groups": search.groups if search else (len(s.profile) if s and s.profile else None),
            "sampler": info.get("sampler"), "budget": info.get("budget"), "seed": info.get("seed"),
            "evaluated": len(search.points) if search else None,
            "train_n": objective.get("n"), "grid_train": grid_train, "search_train": search_train,
            "delta_train": None if grid_train is None or search_train is None else search_train - grid_train,
            "grid_alpha": _text(grid_alpha if m is None else (m.alpha_lower, m.alpha_upper)),
            "profile": _text(search_alpha if s is None else s.profile),
            "n_queries": None, "merged": _mean(m), "search": _mean(s), "delta": None,
        })
        pairs.append((s, m) if s and m else None)
    _compare(rows, pairs, "D", n_permutations, seed)
    table = Table(
        "table_d_search_vs_grid",
        "Table D: α-profile search vs the grid (train: best on the queries the search optimised; test: the two "
        "picks, full data), nDCG@10",
        [Col("collection", "Collection", "Collection", "text"),
         Col("metric", "metric", "metric", "text", display=False),
         Col("split", "split", "split", "text", display=False),
         Col("groups", "K", "$K$", "int"), Col("sampler", "sampler", "sampler", "text"),
         Col("budget", "budget", "budget", "int"), Col("seed", "seed", "seed", "int"),
         Col("evaluated", "evaluated", "evaluated", "int"), Col("train_n", "train n", "train $n$", "int"),
         Col("grid_train", "grid best (train)", "grid (train)", "metric"),
         Col("search_train", "search best (train)", "search (train)", "metric"),
         Col("delta_train", "Δ train", "$\\Delta_{train}$", "delta"),
         Col("grid_alpha", "grid α (lower, upper)", "grid $\\alpha$", "text"),
         Col("profile", "search profile", "profile", "text"),
         Col("n_queries", "test n", "test $n$", "int"),
         Col("merged", "grid pick (test)", "grid (test)", "metric"),
         Col("search", "search pick (test)", "search (test)", "metric"),
         Col("delta", "Δ test (search − grid)", "$\\Delta$", "delta")] + _P_COLS, rows)
    missing = [r["collection"] for r in rows if r["search"] is None or r["merged"] is None]
    if missing:
        table.notes.append(f"No test comparison for {', '.join(missing)}: a full-data search and merged result "
                           "are both needed.")
    return [table]
