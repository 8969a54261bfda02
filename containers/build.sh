#!/usr/bin/env bash
# Build the per-stage images from containers/Dockerfile, tag them with the pipeline version, record what each
# holds (its lock) and pin them in a Nextflow config (process -> image).
#   containers/build.sh [stage ...]           # stages: download merge train encode report (default: all)
#   CUDA_MAJOR=13 containers/build.sh         # the CUDA 13 stack (driver >= R580) instead of CUDA 12 (>= R525)
#   REGISTRY=ghcr.io/you containers/build.sh  # also push, and pin the registry digest (what others can pull)
#   BASE=localhost/mergeir-base:debian12 ENGINE=podman CUDA_MAJOR=13 containers/build.sh
#                                             # another base under the same steps (CI: containers/ci.sh)
# env: ENGINE (docker | podman; default: docker, else podman), PLATFORM (default linux/amd64), CUDA_MAJOR
#   (12 | 13; default 12), BASE (default: the Dockerfile's pinned nvidia/cuda images), BASE_LABEL (names a BASE
#   build's tag and lock; default: BASE's tag), CONFIG (the config to pin the images in; default
#   conf/containers.config, or for a BASE build $MERGEIR_CACHE/containers-<tag>.config, so a test base never
#   lands in the committed one), CA_BUNDLE (CA certificates pip trusts during the build, a build secret never
#   stored in the image; default /etc/ssl/certs/ca-certificates.crt when present, "" for none), RELOCK=1
#   (resolve afresh even when the lock's inputs are unchanged), MERGEIR_CACHE (default ~/.cache/mergeir).
# Tags: <version> (CUDA 12), <version>-cuda<major> (other majors), <version>-cuda<major>-<BASE_LABEL> (BASE).
# Each image's context holds only pyproject.toml, README.md, src/, constraints.txt, containers/layers/*.txt,
# containers/pip-install.sh and the stage's requirements.txt and lock, so a local .venv or results never reach it.
# Locks: containers/<stage>/requirements.lock (CUDA 12), requirements-cuda13.lock, requirements-cuda13-<label>.lock
# (BASE): the image's pip freeze (the image keeps it as /opt/mergeir/requirements.lock), under a header naming its
# inputs. When the inputs (requirements, layers, constraints.txt, CUDA major, base) are those of the lock, the lock
# constrains the build, so rebuilding never changes it; RELOCK=1 or changed inputs resolve afresh. Commit the
# locks and conf/containers.config.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${ENGINE:-}" ]; then
    if command -v docker >/dev/null; then ENGINE=docker; else ENGINE=podman; fi
fi
PLATFORM=${PLATFORM:-linux/amd64}
REGISTRY=${REGISTRY:-}
CUDA_MAJOR=${CUDA_MAJOR:-12}
BASE=${BASE:-}
CACHE=${MERGEIR_CACHE:-$HOME/.cache/mergeir}
CA_BUNDLE=${CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
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
if [ -n "$BASE" ]; then
    label=${BASE_LABEL:-${BASE##*:}}
    label=${label//[^A-Za-z0-9_.-]/-}
    [ -n "$label" ] && [ "$label" != "$BASE" ] || { echo "error: set BASE_LABEL for BASE=$BASE" >&2; exit 2; }
    TAG=$TAG-$label; LOCK=${LOCK%.lock}-$label.lock
    CONFIG=${CONFIG:-$CACHE/containers-$TAG.config}
fi
CONFIG=${CONFIG:-$ROOT/conf/containers.config}
command -v "$ENGINE" >/dev/null || { echo "error: $ENGINE not found (set ENGINE=podman to use podman)" >&2; exit 2; }
for stage in "${STAGES[@]}"; do
    [[ " ${ALL[*]} " == *" $stage "* && -f "$ROOT/containers/$stage/requirements.txt" ]] \
        || { echo "error: unknown stage '$stage' (known: ${ALL[*]})" >&2; exit 2; }
done
# a BASE build's config starts as a copy of the committed one (its other stages stay as they are)
[ -f "$CONFIG" ] || { mkdir -p "$(dirname "$CONFIG")"; cp "$ROOT/conf/containers.config" "$CONFIG"; }

build_args=(--platform "$PLATFORM" --build-arg MERGEIR_VERSION="$VERSION" --build-arg CUDA_MAJOR="$CUDA_MAJOR")
[ -z "$BASE" ] || build_args+=(--build-arg BASE="$BASE")
if [ -n "$CA_BUNDLE" ] && [ -s "$CA_BUNDLE" ]; then build_args+=(--secret "id=pip-ca,src=$CA_BUNDLE"); fi
case "$ENGINE" in
    docker) export DOCKER_BUILDKIT=1 ;;
    # docker format: OCI images drop SHELL (bash -o pipefail); chroot isolation: no runtime config needed
    podman) build_args+=(--format docker --layers --isolation "${ISOLATION:-chroot}") ;;
esac

BUILT_WITH="# built with: CUDA_MAJOR=$CUDA_MAJOR BASE=${BASE:-nvidia/cuda} PLATFORM=$PLATFORM"   # nvidia/cuda: the Dockerfile's pins
inputs_hash() {   # what a stage's resolved set depends on (tests/test_images.py computes it the same way)
    { for f in constraints.txt containers/layers/python.txt containers/layers/torch.txt "containers/$1/requirements.txt"; do
          echo "== $f"; cat "$ROOT/$f"; done
      echo "$BUILT_WITH"
    } | sha256sum | cut -c1-64
}

summary=()
for stage in "${STAGES[@]}"; do
    dir="$ROOT/containers/$stage"
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    mkdir "$ctx/layers"
    cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/constraints.txt" "$dir/requirements.txt" "$ctx/"
    cp "$ROOT/containers/layers/python.txt" "$ROOT/containers/layers/torch.txt" "$ctx/layers/"
    install -m 0755 "$ROOT/containers/pip-install.sh" "$ctx/pip-install.sh"
    (cd "$ROOT" && tar --exclude='__pycache__' --exclude='*.egg-info' -cf - src) | tar -xf - -C "$ctx"
    inputs=$(inputs_hash "$stage")
    if [ "${RELOCK:-0}" != 1 ] && [ -f "$dir/$LOCK" ] && grep -qx "# inputs sha256: $inputs" "$dir/$LOCK"; then
        grep -v '^#' "$dir/$LOCK" > "$ctx/lock.txt"; how="reusing $LOCK"
    else
        : > "$ctx/lock.txt"; how="resolving afresh"
    fi
    name=${REGISTRY:+$REGISTRY/}mergeir-$stage
    [ -n "$REGISTRY" ] || name=localhost/mergeir/$stage
    [ "$ENGINE" != docker ] || [ -n "$REGISTRY" ] || name=mergeir/$stage   # docker has no localhost/ prefix
    echo "--- $stage (CUDA $CUDA_MAJOR${BASE:+, base $BASE}; $how) -> $name:$TAG"
    start=$SECONDS
    "$ENGINE" build "${build_args[@]}" --build-arg STAGE="$stage" -t "$name:$TAG" -f "$ROOT/containers/Dockerfile" "$ctx"
    took=$((SECONDS - start))
    rm -rf "$ctx"; trap - EXIT
    id=$("$ENGINE" image inspect --format '{{.Id}}' "$name:$TAG")
    if [ -n "$REGISTRY" ]; then
        "$ENGINE" push "$name:$TAG"
        digest=$("$ENGINE" image inspect --format '{{index .RepoDigests 0}}' "$name:$TAG")   # repo@sha256:...
        ref="$name:$TAG@${digest#*@}"
        note="registry digest"
    elif [ "$ENGINE" = podman ]; then   # podman resolves name:tag@digest in its local storage too
        ref="$name:$TAG@$(podman image inspect --format '{{.Digest}}' "$name:$TAG")"
        note="local build, podman's digest; push with REGISTRY= to pin one other machines can pull"
    else
        ref="$name:$TAG"
        note="local build, image id ${id#sha256:}; push with REGISTRY= to pin a digest"
    fi
    { echo "# $name:$TAG: pip freeze of the built image (its /opt/mergeir/requirements.lock), by containers/build.sh"
      echo "$BUILT_WITH"
      echo "# inputs sha256: $inputs"
      "$ENGINE" run --rm --entrypoint cat "$name:$TAG" /opt/mergeir/requirements.lock; } > "$dir/$LOCK.tmp"
    mv "$dir/$LOCK.tmp" "$dir/$LOCK"
    # rewrite this stage's line in the config (the line ends with the marker `// image: <stage>`)
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
    size=$("$ENGINE" image inspect --format '{{.Size}}' "$name:$TAG")
    summary+=("$(printf '%-9s %8s MB %5s s  %s' "$stage" $((size / 1000000)) "$took" "$ref")")
done
echo "--- images (stage, size, build seconds, reference)"
printf '%s\n' "${summary[@]}"
echo "$CONFIG: pinned; containers/*/$LOCK: written (commit them unless this was a test build)"
