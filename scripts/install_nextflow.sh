#!/usr/bin/env bash
# Provide `nextflow` in .venv/bin when none is on PATH: the engine pinned in tools/nextflow/pom.xml, resolved
# from Maven Central with the machine's Maven into .venv/nextflow/lib (ignored, reused while the pin is the same).
# Users with internet can instead use Nextflow's own installer (docs/pipeline.md); CI runs this one.
#   env: MERGEIR_NEXTFLOW=system  use the `nextflow` on PATH instead (nothing installed)
set -euo pipefail
cd "$(dirname "$0")/.."
POM=tools/nextflow/pom.xml
VERSION=$(sed -n 's:.*<artifactId>nextflow-engine</artifactId>.*::;s:^  <version>\(.*\)</version>:\1:p' "$POM" | head -1)
DEST=.venv/nextflow
if [ "${MERGEIR_NEXTFLOW:-}" = system ]; then
  command -v nextflow >/dev/null || { echo "error: MERGEIR_NEXTFLOW=system but no nextflow on PATH" >&2; exit 2; }
  exit 0
fi
mkdir -p .venv/bin
if ! cmp -s "$POM" "$DEST/pom.xml" || [ ! -f "$DEST/lib/nextflow-$VERSION.jar" ]; then
  command -v mvn >/dev/null || { echo "error: Maven (mvn) and a Java 17+ JDK are needed to install Nextflow $VERSION" >&2; exit 2; }
  rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp"
  mvn -q -B -f "$POM" dependency:copy-dependencies -DoutputDirectory="$PWD/$DEST.tmp/lib" -DincludeScope=runtime
  cp "$POM" "$DEST.tmp/pom.xml"
  rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
fi
sed "s/@VERSION@/$VERSION/g" tools/nextflow/nextflow > .venv/bin/nextflow.tmp
chmod +x .venv/bin/nextflow.tmp && mv .venv/bin/nextflow.tmp .venv/bin/nextflow
.venv/bin/nextflow -version | grep -q "version $VERSION" || { echo "error: .venv/bin/nextflow does not run" >&2; exit 2; }
echo "nextflow $VERSION ready: .venv/bin/nextflow"
