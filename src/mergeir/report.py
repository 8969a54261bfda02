"""The study's tables and figures from results and α-grid folders.

Inputs are found by scanning folders recursively: every `grid.json` is an α grid (the `metrics.json` files
below it are its points); every other `metrics.json` is a result, classified by its `tags`
(collection, arm = source | merged | lora, setting = full | limited, trial, alpha_lower, alpha_upper).

Tables (each as .md, .csv and .tex):
- A `table_a_source_vs_merged`: the source retriever vs the merged model (full-data α), per collection;
- B `table_b_full_lora_vs_merged`: LoRA vs merged, full data;
- C `table_c_limited_summary`: limited data, mean ± std (n - 1) over trials for LoRA and merged, and
  `table_c_limited_trials`: one row per (collection, trial).
Paired significance over per-query nDCG@10 (significance.py) sits in the rows of A, B and the per-trial
table; Holm–Bonferroni runs across the comparisons of one table. Figures: `alpha_heatmap_<collection>_<split>.png`
per grid and `limited_spread.png`. `report.md` embeds everything; `provenance.json` lists the inputs.

Same metrics in -> same bytes out: rows are sorted, numbers have fixed formats, seeds are per comparison,
figures are drawn with matplotlib's default style and no timestamp.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import significance as sig
from .errors import MergeirError
from .io import Stage, atomic_dir, dumps_json, sha256_file
from .provenance import tool_versions
from .selection import Grid, PerQuery, load_grid, parse_alpha, parse_setting, read_per_query

ARMS = {"source": "source", "merged": "merged", "merge": "merged", "lora": "lora"}
COLLECTION_ORDER = ("nfcorpus", "scifact", "miracl-ja", "miracl", "jqara")  # the paper's column order
MISSING_MD = "—"
MISSING_TEX = "---"
DPI = 100
SIG_LEVEL = 0.05
# the report folder's marker (provenance.json has named its builder since the first release)
REPORT_STAGE = Stage("report", "provenance.json", key="built_by", value="bin/report.py build")


# ---------------------------------------------------------------- inputs

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

    @property
    def key(self):
        return (self.collection, self.arm, self.setting, self.trial)


@dataclass
class Inputs:
    results: dict = field(default_factory=dict)  # key -> Result
    grids: dict = field(default_factory=dict)  # (collection, split) -> Grid
    notes: list = field(default_factory=list)
    files: list = field(default_factory=list)  # provenance rows
    paths: list = field(default_factory=list)  # every file read (the output guard keeps --out off them)


def _coll_sort_key(name: str):
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
    if arm in ("merged", "lora"):
        if tags.get("setting") in (None, ""):
            raise MergeirError(f"{path}: {arm} result without tags.setting (full | limited)")
        try:
            setting, trial = parse_setting(tags["setting"], tags.get("trial"))
        except MergeirError as e:
            raise MergeirError(f"{path}: {str(e).replace('--', 'tags.')}") from None
    al = au = None
    if arm == "merged":
        if tags.get("alpha_lower") in (None, "") or tags.get("alpha_upper") in (None, ""):
            raise MergeirError(f"{path}: merged result without tags.alpha_lower / tags.alpha_upper")
        al, au = parse_alpha(tags["alpha_lower"], str(path)), parse_alpha(tags["alpha_upper"], str(path))
    return Result(str(collection), arm, setting, trial, al, au, pq.doc.get("split"), pq, rel)


def load_inputs(results_dirs, grid_dirs) -> Inputs:
    inp = Inputs()
    g1, m1 = _scan(results_dirs, "--results")
    g2, m2 = _scan(grid_dirs, "--grid")
    grid_files = sorted({p.resolve(): (rel, p) for rel, p in g1 + g2}.values())
    grid_roots = [p.parent.resolve() for _, p in grid_files]
    for rel, p in grid_files:
        g = load_grid(p.parent)
        k = (g.collection, g.split)
        if k in inp.grids:
            raise MergeirError(f"two α grids for collection {k[0]} split {k[1]}: {inp.grids[k].root} and {g.root}")
        inp.grids[k] = g
        inp.files.append({"kind": "grid", "path": rel, "sha256": g.sha256})
    seen_metrics = set()
    ignored: dict[str, int] = {}
    for rel, p in m1 + m2:
        real = p.resolve()
        if real in seen_metrics or any(r in real.parents for r in grid_roots):
            continue  # a grid point, read with its grid
        seen_metrics.add(real)
        r = _result(rel, p)
        if r.arm not in ("source", "merged", "lora"):
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


# ---------------------------------------------------------------- tables

@dataclass(frozen=True)
class Col:
    key: str  # CSV header; for kind "pm" the md/tex column shows key_mean ± key_std
    md: str
    tex: str
    kind: str  # text | int | metric | delta | alpha | t | p | pm
    csv: bool = True
    display: bool = True


@dataclass
class Table:
    name: str
    title: str
    cols: list
    rows: list
    notes: list = field(default_factory=list)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _fmt_csv(v, kind: str) -> str:
    if _missing(v):
        return ""
    if kind in ("text", "int"):
        return str(v)
    if kind in ("metric", "delta", "t"):
        return "inf" if math.isinf(v) and v > 0 else "-inf" if math.isinf(v) else f"{v:.6f}"
    if kind == "alpha":
        return f"{v:.2f}"
    if kind == "p":
        return f"{v:.6g}"
    raise AssertionError(kind)


def _fmt_display(v, kind: str, tex: bool) -> str:
    if _missing(v):
        return MISSING_TEX if tex else MISSING_MD
    if kind == "text":
        return _tex_escape(str(v)) if tex else str(v).replace("|", "\\|")
    if kind == "int":
        return str(v)
    if kind == "metric":
        return f"{v:.4f}"
    if kind == "delta":
        return f"{v:+.4f}"
    if kind == "alpha":
        return f"{v:.2f}"
    if kind == "t":
        return f"{v:.3f}" if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    if kind == "p":
        if v < 0.001:
            return "$<$0.001" if tex else "<0.001"
        return f"{v:.3f}"
    raise AssertionError(kind)


def _cell(row: dict, col: Col, tex: bool) -> str:
    if col.kind == "pm":
        m, s = row.get(col.key + "_mean"), row.get(col.key + "_std")
        if _missing(m):
            return MISSING_TEX if tex else MISSING_MD
        pm = " $\\pm$ " if tex else " ± "
        return f"{m:.4f}" + ("" if _missing(s) else f"{pm}{s:.4f}")
    return _fmt_display(row.get(col.key), col.kind, tex)


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex_escape(s: str) -> str:
    return "".join(_TEX.get(c, c) for c in s)


def table_csv(t: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = [c for c in t.cols if c.csv]
    w.writerow([c.key for c in cols])
    for r in t.rows:
        w.writerow([_fmt_csv(r.get(c.key), c.kind) for c in cols])
    return buf.getvalue()


def table_md(t: Table) -> str:
    cols = [c for c in t.cols if c.display]
    lines = ["| " + " | ".join(c.md for c in cols) + " |",
             "|" + "|".join(":---" if c.kind == "text" else "---:" for c in cols) + "|"]
    for r in t.rows:
        lines.append("| " + " | ".join(_cell(r, c, False) for c in cols) + " |")
    if not t.rows:
        lines.append("| " + " | ".join(MISSING_MD for _ in cols) + " |")
    out = "\n".join(lines) + "\n"
    if t.notes:
        out += "\n" + "\n".join(f"- {n}" for n in t.notes) + "\n"
    return out


def table_tex(t: Table) -> str:
    cols = [c for c in t.cols if c.display]
    spec = "".join("l" if c.kind == "text" else "r" for c in cols)
    lines = [f"% {t.title}", f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
             " & ".join(c.tex for c in cols) + " \\\\", "\\midrule"]
    rows = t.rows or [{}]
    for r in rows:
        lines.append(" & ".join(_cell(r, c, True) for c in cols) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    lines += [f"% note: {n}" for n in t.notes]
    return "\n".join(lines) + "\n"


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
    collections = sorted({k[0] for k in R}, key=_coll_sort_key)
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


# ---------------------------------------------------------------- figures

def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _figure(draw, path: Path, size) -> None:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context():
        matplotlib.rcdefaults()  # a user's matplotlibrc must not change the bytes
        fig = Figure(figsize=size, dpi=DPI)
        FigureCanvasAgg(fig)
        draw(fig)
        fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})


def heatmap(grid: Grid, path: Path, selected: tuple[float, float] | None) -> None:
    import numpy as np

    scores = grid.scores()
    al = grid.alphas
    mat = np.full((len(al), len(al)), np.nan)
    for (a, b), s in scores.items():
        mat[al.index(a), al.index(b)] = s

    def draw(fig):
        ax = fig.add_subplot(1, 1, 1)
        im = ax.imshow(np.ma.masked_invalid(mat), origin="lower", cmap="viridis", aspect="equal")
        ax.set_xticks(range(len(al)), [f"{a:g}" for a in al])
        ax.set_yticks(range(len(al)), [f"{a:g}" for a in al])
        ax.set_xlabel("alpha_upper (source weight, upper layers)")
        ax.set_ylabel("alpha_lower (source weight, lower layers)")
        finite = mat[np.isfinite(mat)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0
        for i in range(len(al)):
            for j in range(len(al)):
                if np.isfinite(mat[i, j]):
                    ax.text(j, i, f"{mat[i, j]:.3f}", ha="center", va="center", fontsize=8,
                            color="black" if mat[i, j] > mid else "white")
        if selected and selected[0] in al and selected[1] in al:
            from matplotlib.patches import Rectangle

            ax.add_patch(Rectangle((al.index(selected[1]) - 0.5, al.index(selected[0]) - 0.5), 1, 1,
                                   fill=False, edgecolor="red", linewidth=2))
        ax.set_title(f"{grid.collection}: {grid.metric} on '{grid.split}' ({len(grid.query_ids)} queries)",
                     fontsize=9)
        fig.colorbar(im, ax=ax)
        fig.tight_layout()

    _figure(draw, path, (5.5, 4.5))


def spread_plot(inp: Inputs, path: Path) -> bool:
    R = inp.results
    colls = sorted({k[0] for k in R if k[2] == "limited"}, key=_coll_sort_key)
    if not colls:
        return False

    def draw(fig):
        axes = fig.subplots(1, len(colls), squeeze=False)[0]
        for ax, c in zip(axes, colls):
            trials = sorted({k[3] for k in R if k[0] == c and k[2] == "limited"})
            for t in trials:
                lo, m = R.get((c, "lora", "limited", t)), R.get((c, "merged", "limited", t))
                xs = [x for x, r in ((0, lo), (1, m)) if r]
                ys = [r.metrics.mean for r in (lo, m) if r]
                ax.plot(xs, ys, color="0.7", linewidth=0.8, zorder=1)
            for x, arm, colour in ((0, "lora", "tab:orange"), (1, "merged", "tab:blue")):
                ys = [R[(c, arm, "limited", t)].metrics.mean for t in trials if (c, arm, "limited", t) in R]
                if ys:
                    ax.scatter([x] * len(ys), ys, color=colour, s=18, zorder=2)
                    ax.plot([x - 0.2, x + 0.2], [math.fsum(ys) / len(ys)] * 2, color="black", linewidth=2, zorder=3)
            src = R.get((c, "source", None, None))
            if src:
                ax.axhline(src.metrics.mean, color="tab:green", linestyle="--", linewidth=1, label="source")
                ax.legend(loc="best", fontsize=7)
            ax.set_xticks([0, 1], ["LoRA", "merged"])
            ax.set_xlim(-0.5, 1.5)
            ax.set_title(c, fontsize=9)
            ax.set_ylabel("nDCG@10 per trial (bar: mean)")
        fig.tight_layout()

    _figure(draw, path, (3.0 * len(colls) + 0.5, 3.8))
    return True


# ---------------------------------------------------------------- the report

def _selected_alpha(inp: Inputs, collection: str):
    m = inp.results.get((collection, "merged", "full", None))
    return (m.alpha_lower, m.alpha_upper) if m else None


def build_report(results_dirs, grid_dirs, out, n_permutations: int = sig.DEFAULT_PERMUTATIONS,
                 seed: int = sig.DEFAULT_SEED, force: bool = False) -> dict:
    """Write tables (md/csv/tex), figures and report.md into `out` (atomically). Returns a short summary."""
    if n_permutations < 1:
        raise MergeirError(f"--permutations must be >= 1, got {n_permutations}")
    inp = load_inputs(results_dirs, grid_dirs)
    tables = build_tables(inp, n_permutations, seed)
    out = Path(out)
    inputs = {"--results": results_dirs, "--grid": grid_dirs, "--results/--grid file": inp.paths}
    with atomic_dir(out, stage=REPORT_STAGE, inputs=inputs, force=force) as tmp:
        for t in tables:
            (tmp / f"{t.name}.md").write_text(f"**{t.title}**\n\n" + table_md(t), encoding="utf-8")
            (tmp / f"{t.name}.csv").write_text(table_csv(t), encoding="utf-8")
            (tmp / f"{t.name}.tex").write_text(table_tex(t), encoding="utf-8")
        figures = []
        for (c, split), g in sorted(inp.grids.items(), key=lambda kv: (_coll_sort_key(kv[0][0]), kv[0][1])):
            name = f"alpha_heatmap_{_safe(c)}_{_safe(split)}.png"
            heatmap(g, tmp / name, _selected_alpha(inp, c))
            figures.append((f"α grid, {c} ({split} queries); red box: the full-data α of the merged result", name))
        if spread_plot(inp, tmp / "limited_spread.png"):
            figures.append(("Limited data: nDCG@10 of each trial (grey lines pair a trial's LoRA and merged "
                            "models; bars are means; dashed: source)", "limited_spread.png"))
        (tmp / "report.md").write_text(_report_md(inp, tables, figures, n_permutations, seed), encoding="utf-8")
        (tmp / "provenance.json").write_text(dumps_json({
            "built_by": "bin/report.py build",
            "inputs": inp.files,
            "parameters": {"permutations": n_permutations, "seed": seed, "exact_max_n": sig.EXACT_MAX_N,
                           "holm_family": "the comparisons of one table", "std_ddof": 1},
            "tools": tool_versions(),
        }), encoding="utf-8")
    return {"out": str(out), "results": len(inp.results), "grids": len(inp.grids),
            "tables": [t.name for t in tables], "figures": [f for _, f in figures]}


def _report_md(inp: Inputs, tables, figures, n_permutations: int, seed: int) -> str:
    n_res, n_grid = len(inp.results), len(inp.grids)
    lines = [
        "# Model merging vs LoRA fine-tuning: results",
        "",
        f"Built by `bin/report.py build` from {n_res} result(s) and {n_grid} α grid(s) "
        "(`provenance.json` lists them with their sha256).",
        "",
        "Metric: nDCG@10 (pytrec_eval `ndcg_cut_10`; JQaRA: `jqara_ndcg@10`), the mean of each result's "
        "per-query values. α is the weight of the SOURCE model (1.0 = pure source) in the lower / upper half "
        "of the layers. Δ = merged − baseline, over the same queries.",
        "",
        "Significance: two-sided paired tests over per-query nDCG@10 — the paired t-test "
        "(`scipy.stats.ttest_rel`) and a sign-flip randomisation test (exact over all 2^k sign patterns when "
        f"k ≤ {sig.EXACT_MAX_N} queries differ, otherwise {n_permutations} random patterns, seed {seed} combined "
        "with a per-comparison key, p = (1 + hits) / (1 + patterns)). Multiple comparisons: Holm–Bonferroni "
        "across the comparisons of each table (columns 'Holm'); a difference is significant at "
        f"{SIG_LEVEL} when its Holm-adjusted p is below {SIG_LEVEL}. Std over trials uses n − 1. "
        f"Missing results are shown as {MISSING_MD}; in the CSV files as empty fields.",
        "",
    ]
    if inp.notes:
        lines += [f"- {n}" for n in inp.notes] + [""]
    sections = {
        "table_a_source_vs_merged": "## Table A — source vs merged",
        "table_b_full_lora_vs_merged": "## Table B — LoRA vs merged, full data",
        "table_c_limited_summary": "## Table C — limited data (mean ± std over trials)",
        "table_c_limited_trials": "### Table C, per trial",
    }
    for t in tables:
        lines += [sections[t.name], "", f"{t.title}. Files: `{t.name}.md`, `{t.name}.csv`, `{t.name}.tex`.", "",
                  table_md(t).rstrip("\n"), ""]
    if figures:
        lines += ["## Figures", ""]
        for caption, name in figures:
            lines += [f"![{caption}]({name})", "", f"*{caption}.*", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
