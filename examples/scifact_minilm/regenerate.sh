#!/usr/bin/env bash
# Rebuild the example's tables and figures from the committed metrics with bin/report.py build, one report
# per study: report/ (study/: the 140-step masked-LM domain model, with the source and LoRA arms every study
# shares), report_control/ (study_control/: the positive control) and report_mlm/ (study_mlm/: the long
# masked-LM domain model, plus its training curve drawn by plot_mlm.py). A study not yet committed is skipped.
#
#   examples/scifact_minilm/regenerate.sh OUT_DIR          # writes OUT_DIR/report, OUT_DIR/report_control, ...
#   for d in report report_control report_mlm; do diff -r examples/scifact_minilm/$d OUT_DIR/$d; done
#
# The committed report folders were written by this very command, so any difference means the report code,
# the metrics or the tool versions (report*/provenance.json) changed.
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
# run from the example folder with relative inputs, so the reports' provenance holds no machine-specific path
cd "$HERE"
build() {  # REPORT STUDY SHARED_RESULT...: the study's own results and grid, plus study/'s shared arms
    local report="$1" study="$2"
    shift 2
    local shared=()
    for r in "$@"; do shared+=(--results "study/metrics/$r"); done
    "$PY" "$ROOT/bin/report.py" build --results "$study/metrics" "${shared[@]}" --grid "$study/grid" \
        --out "$OUT/$report"
}
"$PY" "$ROOT/bin/report.py" build --results study/metrics --grid study/grid --out "$OUT/report"
if [ -d study_control ]; then
    build report_control study_control source lora_full
fi
if [ -d study_search ]; then  # the α-profile search against the grid on the positive control (Table D)
    "$PY" "$ROOT/bin/report.py" build --results study_search/metrics --results study/metrics/source \
        --results study/metrics/lora_full --grid study_search/grid --out "$OUT/report_search"
fi
if [ -d study_mlm ]; then
    build report_mlm study_mlm source $(cd study/metrics && ls -d lora_*)
    "$PY" "$HERE/plot_mlm.py" study_mlm/provenance/domain.json "$OUT/report_mlm/mlm_training.png"
fi
