#!/usr/bin/env bash
# Offline Kubernetes tooling for tests/k8s: the kustomize binary, built with
# `go install` through the Go module proxy into .devstack/bin (idempotent).
# No cluster runs here; `up` only makes sure the tool exists and tells the tests.
#   k8stools.sh build | up | down
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
BIN_DIR="$DEVSTACK_DIR/bin"
KUSTOMIZE_VERSION=${AVIP_DEVSTACK_KUSTOMIZE_VERSION:-v5.8.0}

build() {
  go_install kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
}

up() {
  build
  sed -i '/^AVIP_TEST_KUSTOMIZE=/d' "$DEVSTACK_DIR/env"
  echo "AVIP_TEST_KUSTOMIZE=$BIN_DIR/kustomize" >> "$DEVSTACK_DIR/env"
}

down() { :; }

"$@"
