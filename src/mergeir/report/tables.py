"""Tables A, B and C from the classified results, with paired significance and Holm–Bonferroni per table."""

from __future__ import annotations

import math

from ..errors import MergeirError
from ..evaluation import significance as sig
from .inputs import Inputs, Result, collection_sort_key
from .render import MISSING_MD, Col, Table


def _paired(a: Result, b: Result) -> tuple[list[float], list[float]]:
    """Per-query values of a and b over their common queries; they must be the same queries on one split."""
    if a.split and b.split and a.split != b.split:
        raise MergeirError(f"{a.metrics.path} (split {a.split}) and {b.metrics.path} (split {b.split}) "
                           "cannot be compared: different splits")
    qa, qb = set(a.metrics.values), set(b.metrics.values)
    for x, y, missing in ((a, b, sorted(qb - qa)), (b, a, sorted(qa - qb))):
        if missing:
            raise MergeirError(
                f"{x.metrics.path} lacks {len(missing)} queries of its pair {y.metrics.path} "
                f"(e.g. {', '.join(missing[:5])})"
            )
    q = sorted(qa)
    return [a.metrics.values[k] for k in q], [b.metrics.values[k] for k in q]


_P_COLS = [
    Col("t_stat", "t", "$t$", "t"),
    Col("p_ttest", "p (t)", "$p_t$", "p"),
    Col("p_ttest_holm", "p (t, Holm)", "$p_t$ (Holm)", "p"),
    Col("p_randomization", "p (rand.)", "$p_r$", "p"),
    Col("p_randomization_holm", "p (rand., Holm)", "$p_r$ (Holm)", "p"),
]


def _compare(rows: list[dict], pairs: list, table: str, n_permutations: int, seed: int) -> None:
    """Fill delta / n / test columns of rows[i] from pairs[i] = (merged, baseline) or None; Holm per table."""
    for row, pair in zip(rows, pairs):
        row.update({c.key: None for c in _P_COLS})
        if pair is None:
            continue
        merged, base = pair
        a, b = _paired(merged, base)
        key = f"{table}|{row['collection']}|{row.get('trial', '')}"
        res = sig.paired_tests(a, b, n_permutations, sig.comparison_seed(seed, key))
        row.update({"n_queries": res.n, "delta": res.mean_diff, "t_stat": res.t,
                    "p_ttest": res.p_ttest, "p_randomization": res.p_randomization})
    for p in ("p_ttest", "p_randomization"):
        adj = sig.holm_bonferroni([math.nan if r[p] is None else r[p] for r in rows])
        for r, v in zip(rows, adj):
            r[p + "_holm"] = None if math.isnan(v) else v


def _mean(r: Result | None):
    return None if r is None else r.metrics.mean


def _n(*rs):
    """Queries of the one result present (a paired comparison overwrites it with the paired count)."""
    present = [r for r in rs if r is not None]
    return len(present[0].metrics.values) if len(present) == 1 else None


def _metric_name(*rs) -> str | None:
    names = sorted({r.metrics.metric for r in rs if r is not None})
    return names[0] if len(names) == 1 else (",".join(names) if names else None)


def _split(*rs):
    splits = sorted({r.split for r in rs if r is not None and r.split})
    return ",".join(splits) if splits else None


def _missing_note(what: str, names: list[str]) -> str:
    return f"{what} missing for: {', '.join(names)} (shown as {MISSING_MD})."


def build_tables(inp: Inputs, n_permutations: int, seed: int) -> list[Table]:
    R = inp.results
    collections = sorted({k[0] for k in R}, key=collection_sort_key)
    base_cols = [Col("collection", "Collection", "Collection", "text"),
                 Col("metric", "metric", "metric", "text", display=False),
                 Col("split", "split", "split", "text", display=False),
                 Col("n_queries", "n", "$n$", "int")]

    def merged_versus(letter, baseline_key, arm, label, delta_label, name, title, missing_label) -> Table:
        """Tables A and B: the full-data merged model against one baseline arm, per collection."""
        rows, pairs, miss_b, miss_m = [], [], [], []
        for c in collections:
            b, m = R.get((c, *baseline_key)), R.get((c, "merged", "full", None))
            if b is None:
                miss_b.append(c)
            if m is None:
                miss_m.append(c)
            rows.append({"collection": c, "metric": _metric_name(b, m), "split": _split(b, m),
                         "n_queries": _n(b, m), arm: _mean(b), "merged": _mean(m),
                         "alpha_lower": m and m.alpha_lower, "alpha_upper": m and m.alpha_upper, "delta": None})
            pairs.append((m, b) if b and m else None)
        _compare(rows, pairs, letter, n_permutations, seed)
        table = Table(name, title,
                      base_cols + [Col(arm, label, label, "metric"), Col("merged", "Merged", "Merged", "metric"),
                                   Col("alpha_lower", "α_lower", "$\\alpha_{lower}$", "alpha"),
                                   Col("alpha_upper", "α_upper", "$\\alpha_{upper}$", "alpha"),
                                   Col("delta", delta_label, "$\\Delta$", "delta")] + _P_COLS, rows)
        if miss_b:
            table.notes.append(_missing_note(missing_label, miss_b))
        if miss_m:
            table.notes.append(_missing_note("Merged (full data) result", miss_m))
        return table

    ta = merged_versus("A", ("source", None, None), "source", "Source", "Δ (merged − source)",
                       "table_a_source_vs_merged",
                       "Table A: source retriever vs merged model (full-data alpha), nDCG@10", "Source result")
    tb = merged_versus("B", ("lora", "full", None), "lora", "LoRA", "Δ (merged − LoRA)",
                       "table_b_full_lora_vs_merged",
                       "Table B: LoRA fine-tuning vs merged model, full data, nDCG@10", "LoRA (full data) result")

    # C: limited data, per trial and summary
    trials = {c: sorted({k[3] for k in R if k[0] == c and k[2] == "limited"}) for c in collections}
    lim_colls = [c for c in collections if trials[c]]
    rows, pairs, miss = [], [], []
    for c in lim_colls:
        for t in trials[c]:
            lo, m = R.get((c, "lora", "limited", t)), R.get((c, "merged", "limited", t))
            if lo is None:
                miss.append(f"{c} v{t} LoRA")
            if m is None:
                miss.append(f"{c} v{t} merged")
            rows.append({"collection": c, "trial": t, "metric": _metric_name(lo, m), "split": _split(lo, m),
                         "n_queries": _n(lo, m), "lora": _mean(lo), "merged": _mean(m),
                         "alpha_lower": m and m.alpha_lower, "alpha_upper": m and m.alpha_upper, "delta": None})
            pairs.append((m, lo) if lo and m else None)
    _compare(rows, pairs, "C", n_permutations, seed)
    tct = Table("table_c_limited_trials", "Table C (per trial): LoRA vs merged model, limited data, nDCG@10",
                base_cols[:1] + [Col("trial", "trial", "trial", "int")] + base_cols[1:] +
                [Col("lora", "LoRA", "LoRA", "metric"), Col("merged", "Merged", "Merged", "metric"),
                 Col("alpha_lower", "α_lower", "$\\alpha_{lower}$", "alpha"),
                 Col("alpha_upper", "α_upper", "$\\alpha_{upper}$", "alpha"),
                 Col("delta", "Δ (merged − LoRA)", "$\\Delta$", "delta")] + _P_COLS, rows)
    if miss:
        tct.notes.append(_missing_note("Limited-data results", miss))
    if not lim_colls:
        tct.notes.append("No limited-data results.")

    srows = []
    for c in lim_colls:
        per = [r for r in rows if r["collection"] == c]
        lo = [r["lora"] for r in per if r["lora"] is not None]
        me = [r["merged"] for r in per if r["merged"] is not None]
        both = [r for r in per if r["lora"] is not None and r["merged"] is not None]
        src = R.get((c, "source", None, None))
        srows.append({
            "collection": c, "metric": _metric_name(*(R.get((c, a, "limited", t)) for a in ("lora", "merged")
                                                       for t in trials[c])),
            "source": _mean(src), "n_trials_lora": len(lo), "lora_mean": _avg(lo), "lora_std": _std(lo),
            "n_trials_merged": len(me), "merged_mean": _avg(me), "merged_std": _std(me),
            "delta_mean": _avg([r["merged"] - r["lora"] for r in both]),
            "merged_wins": sum(r["merged"] > r["lora"] for r in both) if both else None,
            "n_paired_trials": len(both),
        })
    tcs = Table("table_c_limited_summary",
                "Table C: limited data, mean +- std (n-1) over trials, nDCG@10",
                [Col("collection", "Collection", "Collection", "text"),
                 Col("metric", "metric", "metric", "text", display=False),
                 Col("source", "Source", "Source", "metric"),
                 Col("n_trials_lora", "LoRA trials", "LoRA trials", "int"),
                 Col("lora_mean", "", "", "metric", display=False), Col("lora_std", "", "", "metric", display=False),
                 Col("lora", "LoRA (mean ± std)", "LoRA", "pm", csv=False),
                 Col("n_trials_merged", "merged trials", "merged trials", "int"),
                 Col("merged_mean", "", "", "metric", display=False),
                 Col("merged_std", "", "", "metric", display=False),
                 Col("merged", "Merged (mean ± std)", "Merged", "pm", csv=False),
                 Col("delta_mean", "mean Δ (merged − LoRA)", "mean $\\Delta$", "delta"),
                 Col("merged_wins", "merged wins", "merged wins", "int"),
                 Col("n_paired_trials", "paired trials", "paired trials", "int")], srows)
    tcs.notes = list(tct.notes)
    return [ta, tb, tcs, tct]


def _avg(xs):
    return math.fsum(xs) / len(xs) if xs else None


def _std(xs):
    if len(xs) < 2:
        return None
    m = math.fsum(xs) / len(xs)
    return math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1))
