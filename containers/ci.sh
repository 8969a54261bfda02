#!/usr/bin/env bash
# CI entry for the stage images (run as root, on Debian or Ubuntu with the Debian mirror and PyPI reachable):
#   1. podman, buildah, runc, debootstrap and /etc/containers/containers.conf (containers/setup-podman.sh)
#   2. the base: Debian bookworm minbase by debootstrap, imported as localhost/mergeir-base:debian12
#      (containers/debian-base.sh; the tarball is cached in $MERGEIR_CACHE and only rebuilt when missing)
#   3. every stage image from containers/Dockerfile on that base (containers/build.sh; CUDA 13: torch from PyPI),
#      pinned in $MERGEIR_CACHE/containers-ci.config, locks in containers/<stage>/requirements-cuda13-debian12.lock
#   4. build.sh again: unchanged inputs must leave every lock as it was (and cost seconds: all layers cached)
#   5. tests/test_containers.py: `-profile test,podman` with those images vs `-profile test,local`
#      (metrics and report equal; the trace names every task's image)
#   bash containers/ci.sh                 # all of it
#   bash containers/ci.sh --build-only    # 1-4; then MERGEIR_CONTAINERS=1 runs tests/test_containers.py (pytest)
# Needs .venv with the Nextflow engine for step 5 (scripts/install.sh). env: MERGEIR_CACHE (default ~/.cache/mergeir:
# base tarball, images config), CA_BUNDLE (containers/build.sh). Build caches: podman's storage
# (/var/lib/containers: the images and their layers) and buildah's cache mounts (/var/tmp/buildah-cache: the
# wheelhouse); keep both between CI runs on one machine and a rebuild downloads nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_ONLY=0
case "${1:-}" in
    --build-only) BUILD_ONLY=1 ;;
    "") ;;
    *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac
export MERGEIR_CACHE=${MERGEIR_CACHE:-$HOME/.cache/mergeir}
CONFIG=$MERGEIR_CACHE/containers-ci.config
mkdir -p "$MERGEIR_CACHE"
t0=$SECONDS
CI=${CI:-true} bash containers/setup-podman.sh
t1=$SECONDS
base=$(bash containers/debian-base.sh)
t2=$SECONDS
build() { BASE=$base BASE_LABEL=debian12 ENGINE=podman CUDA_MAJOR=13 CONFIG=$CONFIG bash containers/build.sh; }
rm -f "$CONFIG"   # written afresh from conf/containers.config
build
t3=$SECONDS
locks=(containers/*/requirements-cuda13-debian12.lock)
before=$(cat "${locks[@]}" | sha256sum)
build
t4=$SECONDS
if [ "$(cat "${locks[@]}" | sha256sum)" != "$before" ]; then
    echo "error: rebuilding with unchanged inputs changed a lock:" >&2
    git --no-pager diff --stat -- "${locks[@]}" >&2 || true
    exit 1
fi
if command -v git >/dev/null && ! git diff --quiet -- "${locks[@]}" 2>/dev/null; then
    echo "note: the built locks differ from the committed ones (inputs changed since they were written):"
    git --no-pager diff --stat -- "${locks[@]}" || true
fi
# earlier builds' layers that no image uses any more (the shared layers of these images stay: they have children)
podman image prune -f >/dev/null
echo "--- containers/ci.sh: setup $((t1 - t0)) s, base $((t2 - t1)) s, images $((t3 - t2)) s, rebuild $((t4 - t3)) s"
# -x: not into the overlay mounts of running containers (du would count their layers again)
echo "disk: podman storage $(du -shx /var/lib/containers 2>/dev/null | cut -f1), build cache mounts (wheelhouse) $(du -shx /var/tmp/buildah-cache 2>/dev/null | cut -f1), $MERGEIR_CACHE $(du -shx "$MERGEIR_CACHE" | cut -f1)"
echo "images config: $CONFIG"
[ "$BUILD_ONLY" = 1 ] && exit 0
MERGEIR_CONTAINERS=$CONFIG .venv/bin/python -m pytest -p no:cacheprovider tests/test_containers.py
echo "--- containers/ci.sh: tests $((SECONDS - t4)) s, total $SECONDS s"
