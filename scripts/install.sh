#!/usr/bin/env bash
# Build .venv with the pinned stack (constraints.txt: every version known to pass CI), and the Nextflow engine
# (scripts/install_nextflow.sh). torch first, once: PyPI's torch 2.13.0 (the CUDA 13 build, runs on CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q torch==2.13.0
python -m pip install -q -c constraints.txt -e ".[test]"
bash scripts/install_nextflow.sh   # .venv/bin/nextflow (the pinned engine, from Maven Central)
python -c "import mergeir, torch, transformers, peft, mergekit, faiss, pytrec_eval; print('mergeir env ok: torch', torch.__version__, 'transformers', transformers.__version__)"
