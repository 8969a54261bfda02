"""examples/scifact_minilm: the committed tables and figures are rebuilt byte for byte from the committed metrics.

regenerate.sh runs `bin/report.py build` on examples/scifact_minilm/study/ (the small results of a full
run.sh run); report/ holds what it wrote when the run was committed. Any difference means the report code,
the metrics or a tool version changed the output.
"""

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "scifact_minilm"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_regenerate_reproduces_committed_report(tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run(["bash", str(EXAMPLE / "regenerate.sh"), str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    committed, rebuilt = _files(EXAMPLE / "report"), _files(out)
    assert sorted(rebuilt) == sorted(committed)
    # the report has every kind of output the study promises
    names = set(committed)
    for table in ("table_a_source_vs_merged", "table_b_full_lora_vs_merged", "table_c_limited_summary",
                  "table_c_limited_trials"):
        assert {f"{table}.md", f"{table}.csv", f"{table}.tex"} <= names
    assert "report.md" in names and "limited_spread.png" in names
    assert any(n.startswith("alpha_heatmap_") and n.endswith(".png") for n in names)
    different = [n for n in committed if committed[n] != rebuilt[n]]
    assert not different, f"regenerated files differ from the committed ones: {different}"


def test_committed_table_a_matches_committed_metrics():
    """Table A's source / merged numbers are the means of the committed per-query nDCG@10 (5 decimals)."""
    study = EXAMPLE / "study" / "metrics"
    rows = (EXAMPLE / "report" / "table_a_source_vs_merged.csv").read_text(encoding="utf-8").splitlines()
    header, row = rows[0].split(","), rows[1].split(",")
    table = dict(zip(header, row))
    for arm, folder in (("source", "source"), ("merged", "merged_full")):
        per_query = json.loads((study / folder / "metrics.json").read_text(encoding="utf-8"))["per_query"]
        values = [v["ndcg_cut_10"] for v in per_query.values()]
        assert len(values) == 300  # SciFact test
        assert abs(float(table[arm]) - sum(values) / len(values)) < 5e-6
