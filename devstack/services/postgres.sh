#!/usr/bin/env bash
# PostgreSQL for the job-store tests: Debian's package, its own data directory
# under $DEVSTACK_DIR/postgres, listening on 127.0.0.1 only. PostgreSQL refuses
# to run as root, so when we are root the server runs as the `postgres` user.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
DIR="$DEVSTACK_DIR/postgres"
PORT=${AVIP_DEVSTACK_POSTGRES_PORT:-}  # default: the first free port from 55432
DB=avip_test

pg_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$found" ] && [ -x "$found/initdb" ] && { echo "$found"; return 0; }
  return 1
}

install_postgres() {
  pg_bin >/dev/null && return 0
  echo "devstack: installing Debian's postgresql"
  if [ "$(id -u)" -ne 0 ]; then
    echo "devstack: postgresql is missing and we are not root; install it with: apt-get install -y postgresql" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

# as_db_user CMD...: run as the `postgres` user when root, else as ourselves.
as_db_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

up() {
  install_postgres
  local bin; bin=$(pg_bin)
  down
  mkdir -p "$DIR"
  [ -n "$PORT" ] || PORT=$(choose_port "$DIR" 55432 1)
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$DIR"; fi
  if [ ! -f "$DIR/data/PG_VERSION" ]; then
    as_db_user "$bin/initdb" -D "$DIR/data" -U avip --auth=trust -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
      || { echo "devstack: initdb failed; see $DIR/initdb.log" >&2; exit 1; }
  fi
  as_db_user "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=200" >/dev/null \
    || { echo "devstack: postgres did not start" >&2; show_logs "$DIR/postgres.log"; exit 1; }
  head -1 "$DIR/data/postmaster.pid" > "$DIR/pids"
  wait_port 127.0.0.1 "$PORT" 30 postgres "" "$DIR/postgres.log"
  if ! as_db_user "$bin/psql" -h 127.0.0.1 -p "$PORT" -U avip -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
    as_db_user "$bin/createdb" -h 127.0.0.1 -p "$PORT" -U avip "$DB"
  fi
  echo "AVIP_TEST_POSTGRES_URL=postgresql+psycopg://avip@127.0.0.1:$PORT/$DB" >> "$DEVSTACK_DIR/env"
}

down() {
  local bin
  if bin=$(pg_bin) && [ -f "$DIR/data/postmaster.pid" ]; then
    as_db_user "$bin/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -f "$DIR/pids"
}

"$@"
