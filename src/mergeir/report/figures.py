"""The report's figures: one α heatmap per grid and the limited-data spread plot, drawn with matplotlib's default
style and no timestamp (same inputs, same PNG bytes)."""

from __future__ import annotations

import math
from pathlib import Path

from ..sweep.selection import Grid
from .inputs import Inputs, collection_sort_key

DPI = 100


def save_figure(draw, path: Path, size) -> None:
    """draw(fig) onto a fresh Agg figure and save it as a PNG without a timestamp (matplotlib loads lazily)."""
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

    save_figure(draw, path, (5.5, 4.5))


def spread_plot(inp: Inputs, path: Path) -> bool:
    R = inp.results
    colls = sorted({k[0] for k in R if k[2] == "limited"}, key=collection_sort_key)
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

    save_figure(draw, path, (3.0 * len(colls) + 0.5, 3.8))
    return True
