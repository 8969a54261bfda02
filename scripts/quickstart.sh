#!/usr/bin/env bash
# Install, then run the study on its embedded default: tiny random Mistral models (built on the fly) and the
# tiny-beir fixture, on CPU, in minutes. With Nextflow on PATH this is `nextflow run main.nf -profile test,local`;
# without it, the same chain of bin/ commands (scripts/run_local.py). Output: results/quickstart/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
OUT=${1:-results/quickstart}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if command -v nextflow >/dev/null 2>&1 && [ -z "${MERGEIR_NO_NEXTFLOW:-}" ]; then
  PATH="$PWD/.venv/bin:$PATH" nextflow run main.nf -profile test,local --outdir "$OUT"
else
  echo "nextflow not found: running the test profile with the CPU runner (scripts/run_local.py)" >&2
  .venv/bin/python scripts/run_local.py "$OUT"
fi
