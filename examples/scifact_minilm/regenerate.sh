#!/usr/bin/env bash
# Rebuild the example's tables and figures from the committed metrics (study/) with bin/report.py build.
#
#   examples/scifact_minilm/regenerate.sh OUT_DIR
#   for f in examples/scifact_minilm/report/*; do cmp "$f" "OUT_DIR/$(basename "$f")"; done   # byte-identical
#
# The committed report/ was written by this very command, so any difference means the report code, the
# metrics or the tool versions (report/provenance.json) changed.
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
OUT="$(realpath -m "$1")"
# run from the example folder with relative inputs, so the report's provenance holds no machine-specific path
cd "$HERE"
exec "$PY" "$ROOT/bin/report.py" build --results study/metrics --grid study/grid --out "$OUT"
