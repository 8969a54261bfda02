#!/usr/bin/env bash
# Build the per-stage images from containers/Dockerfile, tag them with the pipeline version, and pin them in
# conf/containers.config.
#   containers/build.sh [stage ...]           # stages: download merge train encode report (default: all)
#   CUDA_MAJOR=13 containers/build.sh         # the CUDA 13 stack (driver >= R580) instead of CUDA 12 (>= R525)
#   REGISTRY=ghcr.io/you containers/build.sh  # also push, and pin the registry digest (what others can pull)
# env: ENGINE (docker | podman; default docker), PLATFORM (default linux/amd64), CUDA_MAJOR (12 | 13; default 12)
# Each image's context holds only pyproject.toml, README.md, src/ and the stage's requirements.txt, so a
# local .venv or results never reach it. After a build, containers/<stage>/requirements.lock (CUDA 12) or
# requirements-cuda13.lock lists every package the image really has (pip freeze): commit it with the new
# digests. Images of the default CUDA major are tagged <version>, others <version>-cuda<major>.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINE=${ENGINE:-docker}
PLATFORM=${PLATFORM:-linux/amd64}
REGISTRY=${REGISTRY:-}
CUDA_MAJOR=${CUDA_MAJOR:-12}
CONFIG="$ROOT/conf/containers.config"
ALL=(download merge train encode report)
STAGES=("$@")
[ ${#STAGES[@]} -gt 0 ] || STAGES=("${ALL[@]}")

VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n1)
MANIFEST=$(sed -n "s/^ *version *= *'\(.*\)'/\1/p" "$ROOT/nextflow.config" | head -n1)
[ -n "$VERSION" ] || { echo "error: no version in pyproject.toml" >&2; exit 2; }
[ "$VERSION" = "$MANIFEST" ] || { echo "error: pyproject.toml version $VERSION != nextflow.config manifest.version $MANIFEST" >&2; exit 2; }
case "$CUDA_MAJOR" in 12|13) ;; *) echo "error: CUDA_MAJOR must be 12 or 13, got '$CUDA_MAJOR'" >&2; exit 2;; esac
if [ "$CUDA_MAJOR" = 12 ]; then TAG=$VERSION; LOCK=requirements.lock
else TAG=$VERSION-cuda$CUDA_MAJOR; LOCK=requirements-cuda$CUDA_MAJOR.lock; fi
command -v "$ENGINE" >/dev/null || { echo "error: $ENGINE not found (set ENGINE=podman to use podman)" >&2; exit 2; }

for stage in "${STAGES[@]}"; do
    dir="$ROOT/containers/$stage"
    [[ " ${ALL[*]} " == *" $stage "* && -f "$dir/requirements.txt" ]] || { echo "error: unknown stage '$stage' (known: ${ALL[*]})" >&2; exit 2; }
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$dir/requirements.txt" "$ctx/"
    (cd "$ROOT" && tar --exclude='__pycache__' --exclude='*.egg-info' -cf - src) | tar -xf - -C "$ctx"
    name=${REGISTRY:+$REGISTRY/}mergeir-$stage
    [ -n "$REGISTRY" ] || name=mergeir/$stage
    echo "--- $stage (CUDA $CUDA_MAJOR) -> $name:$TAG"
    DOCKER_BUILDKIT=1 "$ENGINE" build --pull --platform "$PLATFORM" --build-arg MERGEIR_VERSION="$VERSION" \
        --build-arg STAGE="$stage" --build-arg CUDA_MAJOR="$CUDA_MAJOR" \
        -t "$name:$TAG" -f "$ROOT/containers/Dockerfile" "$ctx"
    rm -rf "$ctx"; trap - EXIT
    if [ -n "$REGISTRY" ]; then
        "$ENGINE" push "$name:$TAG"
        digest=$("$ENGINE" inspect --format '{{index .RepoDigests 0}}' "$name:$TAG")   # repo@sha256:...
        ref="$name:$TAG@${digest#*@}"
        note="registry digest"
    else
        ref="$name:$TAG"
        note="local build, image id $("$ENGINE" inspect --format '{{.Id}}' "$name:$TAG"); push with REGISTRY= to pin a digest"
    fi
    { echo "# $ref (CUDA $CUDA_MAJOR): pip freeze of the built image, written by containers/build.sh"
      "$ENGINE" run --rm --entrypoint pip "$ref" freeze; } > "$dir/$LOCK"
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
echo "conf/containers.config updated; commit it with containers/*/$LOCK"
