# Helpers shared by devstack/services/*.sh (sourced, not run).

# wait_port HOST PORT SECONDS NAME: wait until a TCP port accepts connections.
wait_port() {
  local host=$1 port=$2 secs=$3 name=$4
  for _ in $(seq 1 $((secs * 4))); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.25
  done
  echo "devstack: $name did not open $host:$port within ${secs}s; see its log in $DEVSTACK_DIR" >&2
  return 1
}

# stop_pids DIR: stop every process listed in DIR/pids (TERM, then KILL).
stop_pids() {
  local dir=$1
  [ -f "$dir/pids" ] || return 0
  while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$dir/pids"
  sleep 1
  while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$dir/pids"
  rm -f "$dir/pids"
}

# go_install NAME MODULE VERSION [NOTE]: build the Go command NAME from MODULE@VERSION
# with `go install` through the Go module proxy into $DEVSTACK_DIR/bin (no binary
# download), once per version: a stamp file records the version built.
go_install() {
  local name=$1 module=$2 version=$3 note=${4:-}
  local bin_dir="$DEVSTACK_DIR/bin"
  local stamp="$bin_dir/.$name-version"
  mkdir -p "$bin_dir"
  if [ -x "$bin_dir/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  command -v go >/dev/null || { echo "devstack: need Go (go install builds $name)" >&2; exit 1; }
  echo "devstack: building $name $version with go install$note"
  # No debug info: a smaller binary and a lighter link on the small machine.
  GOBIN="$bin_dir" GOFLAGS="-buildvcs=false" GOTOOLCHAIN=local \
    go install -ldflags "-s -w" "$module@$version"
  echo "$version" > "$stamp"
}
