#!/usr/bin/env bash
# CI's stand-in for the nvidia/cuda bases (no Docker Hub there): a Debian bookworm root filesystem made by
# `debootstrap --variant=minbase` from the Debian mirror, imported into podman as localhost/mergeir-base:debian12.
# The stage images then build on it with every Dockerfile step after FROM unchanged (containers/ci.sh):
#   BASE=localhost/mergeir-base:debian12 BASE_LABEL=debian12 ENGINE=podman CUDA_MAJOR=13 containers/build.sh
# The tarball is cached (MERGEIR_CACHE, default ~/.cache/mergeir) and only rebuilt when missing (or with --rebuild);
# the image is re-imported when podman lacks it or it was made from another tarball. Prints the image name.
#   env: MERGEIR_CACHE, DEBIAN_MIRROR (default: this machine's apt mirror, else http://deb.debian.org/debian),
#        SUITE (default bookworm), BASE_IMAGE (default localhost/mergeir-base:debian12)
set -euo pipefail
REBUILD=0
[ "${1:-}" = --rebuild ] && REBUILD=1
CACHE=${MERGEIR_CACHE:-$HOME/.cache/mergeir}
SUITE=${SUITE:-bookworm}
IMAGE=${BASE_IMAGE:-localhost/mergeir-base:debian12}
TARBALL=$CACHE/debian-$SUITE-minbase.tar
if [ -z "${DEBIAN_MIRROR:-}" ]; then   # the mirror apt already uses here (deb822 or one-line sources), if Debian's
    DEBIAN_MIRROR=$(sed -n 's|^URIs: *\(\S*/debian\)/\?$|\1|p; s|^deb \+\(\[[^]]*\] \+\)\?\(\S*/debian\)/\? .*|\2|p' \
        /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1 || true)
    DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
fi
[ "$(id -u)" = 0 ] || { echo "error: debootstrap needs root" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "error: no debootstrap (containers/setup-podman.sh installs it)" >&2; exit 2; }
mkdir -p "$CACHE"

if [ "$REBUILD" = 1 ] || [ ! -s "$TARBALL" ]; then
    root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    start=$SECONDS
    echo "debootstrap --variant=minbase $SUITE from $DEBIAN_MIRROR" >&2
    debootstrap --variant=minbase "$SUITE" "$root" "$DEBIAN_MIRROR" > "$CACHE/debootstrap.log" 2>&1 \
        || { tail -n 20 "$CACHE/debootstrap.log" >&2; exit 1; }
    # the image's apt sees the suite's updates too, as an nvidia/cuda (Ubuntu) base sees its -updates
    printf 'deb %s %s main\ndeb %s %s-updates main\n' "$DEBIAN_MIRROR" "$SUITE" "$DEBIAN_MIRROR" "$SUITE" \
        > "$root/etc/apt/sources.list"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/* "$root"/var/log/*.log
    tar --numeric-owner --xattrs -C "$root" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$root"; trap - EXIT
    echo "base rootfs: $TARBALL ($(du -h "$TARBALL" | cut -f1)) in $((SECONDS - start)) s" >&2
fi

sum=$(sha256sum "$TARBALL" | cut -c1-64)
have=$(podman image inspect --format '{{index .Config.Labels "org.mergeir.rootfs-sha256"}}' "$IMAGE" 2>/dev/null || true)
if [ "$have" != "$sum" ]; then
    podman import --quiet --message "debootstrap --variant=minbase $SUITE ($DEBIAN_MIRROR)" \
        --change "LABEL org.mergeir.rootfs-sha256=$sum" \
        --change "LABEL org.opencontainers.image.description=Debian $SUITE minbase (debootstrap), mergeir CI base" \
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change 'CMD ["/bin/bash"]' "$TARBALL" "$IMAGE" >/dev/null
    echo "imported $IMAGE" >&2
fi
echo "$IMAGE"
