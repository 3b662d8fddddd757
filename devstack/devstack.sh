#!/usr/bin/env bash
# Starts and stops the real services the test suite needs, each on loopback
# with its own port and state under .devstack/<service>/.
#   devstack.sh up [SERVICE...]    start (default: every service in SERVICES)
#   devstack.sh down [SERVICE...]  stop
#   devstack.sh status
# Each service is devstack/services/<name>.sh with `up` and `down`; `up`
# appends KEY=VALUE lines for the tests to .devstack/env (a later line for
# the same key replaces an earlier one, so restarting one service is safe).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export DEVSTACK_DIR="$ROOT/.devstack"
export VENV_BIN="$ROOT/.venv/bin"
SERVICES=(spark kafka postgres zeppelin minio k8stools chromium)

cmd=${1:-status}; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=("${SERVICES[@]}")
mkdir -p "$DEVSTACK_DIR"

case "$cmd" in
  up)
    [ $# -gt 0 ] || : > "$DEVSTACK_DIR/env"
    touch "$DEVSTACK_DIR/env"
    for s in "${targets[@]}"; do
      echo "devstack: starting $s"
      bash "devstack/services/$s.sh" up
      # keep the last line of each key
      tac "$DEVSTACK_DIR/env" | awk -F= '!seen[$1]++' | tac > "$DEVSTACK_DIR/env.new"
      mv "$DEVSTACK_DIR/env.new" "$DEVSTACK_DIR/env"
    done ;;
  down)
    for s in "${targets[@]}"; do bash "devstack/services/$s.sh" down || true; done ;;
  status)
    for s in "${SERVICES[@]}"; do
      if [ -f "$DEVSTACK_DIR/$s/pids" ]; then echo "$s: $(cat "$DEVSTACK_DIR/$s/pids" | tr '\n' ' ')"; else echo "$s: down"; fi
    done ;;
  *) echo "usage: $0 up|down|status [SERVICE...]" >&2; exit 2 ;;
esac
