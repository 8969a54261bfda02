#!/usr/bin/env bash
# Make this Debian/Ubuntu machine able to build and run the stage images with podman as root (what CI does,
# containers/ci.sh): installs podman, buildah, runc and debootstrap with apt when missing, and writes
# /etc/containers/containers.conf when it is absent or was written by this script.
#   sudo bash containers/setup-podman.sh            # refuses to replace a containers.conf it did not write
#   sudo bash containers/setup-podman.sh --force    # replaces it (the old one is kept as containers.conf.mergeir-bak)
#   CI=true bash containers/setup-podman.sh         # CI: --force is implied
# Why the config: on hosts like CI's (cgroups v1 + v2 "hybrid", a container-imposed open-files limit) podman's
# default runtime crun stops at `setrlimit RLIMIT_NOFILE: Operation not permitted` (podman asks for more open
# files than the hard limit allows), then at `cgroups in hybrid mode not supported`. runc handles hybrid cgroups,
# and default_ulimits keeps each container within this host's hard limits. buildah with --isolation chroot
# (what containers/build.sh uses) needs neither.
set -euo pipefail
FORCE=0
case "${1:-}" in
    --force) FORCE=1 ;;
    "") ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac
case "${CI:-}" in true|1|yes) FORCE=1 ;; esac
CONF=${MERGEIR_CONTAINERS_CONF:-/etc/containers/containers.conf}
MARK="# written by mergeir containers/setup-podman.sh"

[ "$(id -u)" = 0 ] || { echo "error: run as root (the images are built and run by root's podman)" >&2; exit 2; }

missing=()
for tool in podman buildah runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || { echo "error: missing ${missing[*]} and no apt-get: install them yourself" >&2; exit 2; }
    echo "installing ${missing[*]} (apt)"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        podman buildah runc debootstrap uidmap fuse-overlayfs slirp4netns >/dev/null
fi

nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
want="$MARK (podman $(podman --version | awk '{print $3}')); delete this file to undo
[containers]
# this host's hard limit on open files, and a fixed process limit: podman must not ask for more
default_ulimits = [\"nofile=$nofile\", \"nproc=32768:32768\"]

[engine]
# crun refuses cgroups v1/v2 hybrid hosts; runc runs there
runtime = \"runc\""

if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    if [ "$FORCE" != 1 ]; then
        echo "error: $CONF exists and was not written by this script; left as it is." >&2
        echo "  It must set, or podman run may fail here:" >&2
        sed -e 1d -e 's/^/    /' <<<"$want" >&2
        echo "  Merge that in yourself, or rerun with --force (keeps the old file as $CONF.mergeir-bak)." >&2
        exit 1
    fi
    cp -p "$CONF" "$CONF.mergeir-bak"
    echo "replacing $CONF (old one: $CONF.mergeir-bak)"
fi
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$want" ]; then
    mkdir -p "$(dirname "$CONF")"
    printf '%s\n' "$want" > "$CONF"
    echo "wrote $CONF"
fi

# the check: a container starts (any local image will do; none yet is fine, the build checks later)
echo "podman $(podman --version | awk '{print $3}'), runtime $(podman info --format '{{.Host.OCIRuntime.Name}}'), storage $(podman info --format '{{.Store.GraphDriverName}}'), cgroups $(podman info --format '{{.Host.CgroupsVersion}}')"
