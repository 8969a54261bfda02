#!/usr/bin/env bash
# Build the per-stage images, tag them with the pipeline version, and pin them in conf/containers.config.
#   containers/build.sh [stage ...]           # stages: download merge train encode report (default: all)
#   REGISTRY=ghcr.io/you containers/build.sh  # also push, and pin the registry digest (what others can pull)
# env: ENGINE (docker | podman; default docker), PLATFORM (default linux/amd64)
# Each image's context holds only pyproject.toml, README.md, src/ and the stage's requirements.txt, so a
# local .venv or results never reach it. After a build, containers/<stage>/requirements.lock lists every
# package the image really has (pip freeze): commit it with the new digests.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINE=${ENGINE:-docker}
PLATFORM=${PLATFORM:-linux/amd64}
REGISTRY=${REGISTRY:-}
CONFIG="$ROOT/conf/containers.config"
ALL=(download merge train encode report)
STAGES=("$@")
[ ${#STAGES[@]} -gt 0 ] || STAGES=("${ALL[@]}")

VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n1)
MANIFEST=$(sed -n "s/^ *version *= *'\(.*\)'/\1/p" "$ROOT/nextflow.config" | head -n1)
[ -n "$VERSION" ] || { echo "error: no version in pyproject.toml" >&2; exit 2; }
[ "$VERSION" = "$MANIFEST" ] || { echo "error: pyproject.toml version $VERSION != nextflow.config manifest.version $MANIFEST" >&2; exit 2; }
command -v "$ENGINE" >/dev/null || { echo "error: $ENGINE not found (set ENGINE=podman to use podman)" >&2; exit 2; }

for stage in "${STAGES[@]}"; do
    dir="$ROOT/containers/$stage"
    [ -f "$dir/Dockerfile" ] || { echo "error: unknown stage '$stage' (known: ${ALL[*]})" >&2; exit 2; }
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$dir/requirements.txt" "$ctx/"
    (cd "$ROOT" && tar --exclude='__pycache__' --exclude='*.egg-info' -cf - src) | tar -xf - -C "$ctx"
    name=${REGISTRY:+$REGISTRY/}mergeir-$stage
    [ -n "$REGISTRY" ] || name=mergeir/$stage
    echo "--- $stage -> $name:$VERSION"
    "$ENGINE" build --pull --platform "$PLATFORM" --build-arg MERGEIR_VERSION="$VERSION" \
        -t "$name:$VERSION" -f "$dir/Dockerfile" "$ctx"
    rm -rf "$ctx"; trap - EXIT
    if [ -n "$REGISTRY" ]; then
        "$ENGINE" push "$name:$VERSION"
        digest=$("$ENGINE" inspect --format '{{index .RepoDigests 0}}' "$name:$VERSION")   # repo@sha256:...
        ref="$name:$VERSION@${digest#*@}"
        note="registry digest"
    else
        ref="$name:$VERSION"
        note="local build, image id $("$ENGINE" inspect --format '{{.Id}}' "$name:$VERSION"); push with REGISTRY= to pin a digest"
    fi
    "$ENGINE" run --rm --entrypoint pip "$ref" freeze > "$dir/requirements.lock"
    # rewrite this stage's line in conf/containers.config (the line ends with the marker `// image: <stage>`)
    python3 - "$CONFIG" "$stage" "$ref" "$note" <<'PY'
import re, sys
path, stage, ref, note = sys.argv[1:]
text = open(path).read()
pat = re.compile(r"^(\s*)container = '[^']*' // image: " + re.escape(stage) + r"\b.*$", re.M)
if not pat.search(text):
    sys.exit(f"error: no `// image: {stage}` line in {path}")
text = pat.sub(lambda m: f"{m.group(1)}container = '{ref}' // image: {stage} ({note})", text)
open(path, "w").write(text)
PY
    echo "$stage: $ref"
done
echo "conf/containers.config updated; commit it with containers/*/requirements.lock"
