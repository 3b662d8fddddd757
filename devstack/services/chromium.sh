#!/usr/bin/env bash
# Debian's headless Chromium for the dashboard browser tests (driven by Playwright
# with executable_path; Playwright never downloads a browser here).
#   chromium.sh up     install the `chromium` package if /usr/bin/chromium is missing
#   chromium.sh down   nothing to stop (the tests start and stop their own browser)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEVSTACK_DIR=${DEVSTACK_DIR:-$ROOT/.devstack}
BIN=/usr/bin/chromium

up() {
  if [ ! -x "$BIN" ]; then
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  fi
  "$BIN" --version
  mkdir -p "$DEVSTACK_DIR"
  echo "AVIP_TEST_CHROMIUM=$BIN" >> "$DEVSTACK_DIR/env"
}

down() { :; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
