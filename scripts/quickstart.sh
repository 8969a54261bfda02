#!/usr/bin/env bash
# Install (the Python environment and the Nextflow engine), then run the study on its embedded default through
# Nextflow: `nextflow run main.nf -profile test,local` — tiny random Mistral models (built on the fly) and the
# tiny-beir fixture, on CPU, in minutes. Output: results/quickstart/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
OUT=${1:-results/quickstart}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PATH="$PWD/.venv/bin:$PATH" exec nextflow run main.nf -profile test,local --outdir "$OUT"
