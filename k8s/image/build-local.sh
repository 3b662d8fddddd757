#!/usr/bin/env bash
# Builds the platform image where no image registry is reachable: a bookworm base made
# from Debian's own packages (debootstrap), then the Dockerfile on it, with podman.
#   k8s/image/build-local.sh [TAG]      (root; the rootfs is cached under .devstack/image)
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG=${1:-localhost/avip/platform:0.1.0}
BASE=localhost/avip/bookworm-python:3.11
ROOTFS=${AVIP_IMAGE_ROOTFS:-$PWD/.devstack/image/rootfs}
for tool in podman debootstrap; do
  command -v "$tool" >/dev/null || {
    echo "build-local: need $tool (apt-get install -y podman debootstrap)" >&2; exit 1; }
done
if ! podman image exists "$BASE"; then
  if [ ! -x "$ROOTFS/usr/bin/python3" ]; then
    mkdir -p "$(dirname "$ROOTFS")"
    debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv \
      bookworm "$ROOTFS" http://deb.debian.org/debian
  fi
  tar -C "$ROOTFS" -c . | podman import - "$BASE"
fi
[ -f .jars/spark/.resolved ] || make jars
# pip in the build trusts what this host trusts (an egress proxy may re-sign TLS): the
# host's CA bundle is mounted for the build only, never copied into the image.
ca=()
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  ca=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg PIP_CERT=/run/host-ca.crt)
fi
# chroot isolation: no OCI runtime needed (crun refuses the cgroup layout of some sandboxes)
podman build --isolation "${AVIP_BUILD_ISOLATION:-chroot}" "${ca[@]}" \
  --build-arg BASE="$BASE" -t "$TAG" .
echo "built $TAG"
