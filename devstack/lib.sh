# Helpers shared by devstack/services/*.sh (sourced, not run).

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# choose_port DIR DEFAULT SPAN: the first port P (DEFAULT, DEFAULT+10, ...) with
# P..P+SPAN-1 all free on loopback, preferring the one this service used last
# (DIR/port) so a restarted broker keeps its address. Printed on stdout and kept
# in DIR/port. A leftover or foreign process on a default port is common on a
# shared machine; starting beside it beats failing 90 s later.
choose_port() {
  local dir=$1 default=$2 span=$3 candidate i free
  local last; last=$(cat "$dir/port" 2>/dev/null || true)
  for candidate in $last $(seq "$default" 10 $((default + 200))); do
    free=1
    for i in $(seq 0 $((span - 1))); do
      if port_open 127.0.0.1 $((candidate + i)); then free=0; break; fi
    done
    if [ "$free" = 1 ]; then mkdir -p "$dir"; echo "$candidate" > "$dir/port"; echo "$candidate"; return 0; fi
  done
  echo "devstack: no free port block near $default (tried $default..$((default + 200)))" >&2
  return 1
}

# show_logs FILE...: the last lines of each log, so a CI run shows why a start failed.
show_logs() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    echo "---- last lines of $f" >&2
    tail -n 40 "$f" >&2
  done
}

# wait_port HOST PORT SECONDS NAME [PID [LOG...]]: wait until a TCP port accepts
# connections. Given PID, stop waiting as soon as that process has exited; on
# failure print the tails of the LOG files.
wait_port() {
  local host=$1 port=$2 secs=$3 name=$4 pid=${5:-}
  shift $(( $# < 5 ? $# : 5 ))
  for _ in $(seq 1 $((secs * 4))); do
    if port_open "$host" "$port"; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "devstack: $name (pid $pid) exited before opening $host:$port" >&2
      show_logs "$@"
      return 1
    fi
    sleep 0.25
  done
  echo "devstack: $name did not open $host:$port within ${secs}s; see its log in $DEVSTACK_DIR" >&2
  show_logs "$@"
  return 1
}

# start_daemon DIR LOG COMMAND...: run COMMAND in the background, detached from the
# caller's stdin, with stdout and stderr in LOG; its pid goes to DIR/pids (for
# stop_pids) and to DAEMON_PID (for wait_port).
start_daemon() {
  local dir=$1 log=$2
  shift 2
  mkdir -p "$dir"
  nohup "$@" < /dev/null > "$log" 2>&1 &
  DAEMON_PID=$!
  echo "$DAEMON_PID" >> "$dir/pids"
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
