"""The study's tables and figures from results and α-grid folders.

Inputs are found by scanning folders recursively: every `grid.json` is an α grid (the `metrics.json` files
below it are its points); every other `metrics.json` is a result, classified by its `tags`
(collection, arm = source | merged | lora, setting = full | limited, trial, alpha_lower, alpha_upper).

Tables (each as .md, .csv and .tex):
- A `table_a_source_vs_merged`: the source retriever vs the merged model (full-data α), per collection;
- B `table_b_full_lora_vs_merged`: LoRA vs merged, full data;
- C `table_c_limited_summary`: limited data, mean ± std (n - 1) over trials for LoRA and merged, and
  `table_c_limited_trials`: one row per (collection, trial).
Paired significance over per-query nDCG@10 (mergeir.evaluation.significance) sits in the rows of A, B and the
per-trial table; Holm–Bonferroni runs across the comparisons of one table. Figures:
`alpha_heatmap_<collection>_<split>.png` per grid and `limited_spread.png`. `report.md` embeds everything;
`provenance.json` lists the inputs.

Same metrics in -> same bytes out: rows are sorted, numbers have fixed formats, seeds are per comparison,
figures are drawn with matplotlib's default style and no timestamp.

`build_report` is the stage (bin/report.py build): `load_inputs` scans and classifies (`check_same_judgments`:
the rows of one collection scored on one collection and qrels), `build_tables` builds A/B/C, `table_md` /
`table_csv` / `table_tex` render them, `heatmap`, `spread_plot` and `save_figure` draw the figures.

Modules: `inputs` (scanning and classifying results), `tables` (A/B/C and their tests), `render` (md/csv/tex),
`figures` (heatmaps, spread plot), `build` (the report folder).
"""

from .build import REPORT_STAGE, SIG_LEVEL, build_report
from .figures import DPI, heatmap, save_figure, spread_plot
from .inputs import ARMS, COLLECTION_ORDER, Inputs, Result, check_same_judgments, load_inputs
from .render import MISSING_MD, MISSING_TEX, Col, Table, table_csv, table_md, table_tex
from .tables import build_tables

__all__ = ["ARMS", "COLLECTION_ORDER", "DPI", "MISSING_MD", "MISSING_TEX", "REPORT_STAGE", "SIG_LEVEL", "Col",
           "Inputs", "Result", "Table", "build_report", "build_tables", "check_same_judgments", "heatmap",
           "load_inputs", "save_figure", "spread_plot", "table_csv", "table_md", "table_tex"]
