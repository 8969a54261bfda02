"""A report table (columns with their md / tex headers and value kind, rows of values) and its three renderings:
CSV (full precision, empty fields for missing values), Markdown and LaTeX (fixed display formats)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

MISSING_MD = "—"
MISSING_TEX = "---"


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
