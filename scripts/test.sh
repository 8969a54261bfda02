#!/usr/bin/env bash
# The project's test command (README, .ci/run): install, the offline Nextflow gate, then every test.
#   bash scripts/test.sh          # everything, slow tests included (what CI runs)
#   bash scripts/test.sh --fast   # skip tests marked slow (real-data runs, DeepSpeed compile, bin chain)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/nf-lint.sh
.venv/bin/python scripts/check_images.py  # the images' pip sets resolve, one CUDA major each (needs PyPI)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ "${1:-}" = "--fast" ]; then
  shift
  exec .venv/bin/python -m pytest -m "not slow" "$@"
fi
exec .venv/bin/python -m pytest "$@"
