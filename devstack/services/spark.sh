#!/usr/bin/env bash
# A Spark standalone cluster — one master and two workers on loopback —
# started from pyspark's own jars (no separate Spark download).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
DIR="$DEVSTACK_DIR/spark"
MASTER_PORT=${AVIP_DEVSTACK_SPARK_PORT:-}  # default: the first free port from 7177
SPARK_HOME=$("$VENV_BIN/python" -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')
export SPARK_HOME SPARK_LOCAL_IP=127.0.0.1 SPARK_LOG_DIR="$DIR" SPARK_WORKER_DIR="$DIR/work"
# Executors launched by a worker look for Scala build dirs unless told the version.
export SPARK_SCALA_VERSION=2.13
CP="$SPARK_HOME/jars/*"

up() {
  mkdir -p "$DIR/work"
  stop_pids "$DIR"
  [ -n "$MASTER_PORT" ] || MASTER_PORT=$(choose_port "$DIR" 7177 1)
  start_daemon "$DIR" "$DIR/master.log" \
    java -Xmx512m -cp "$CP" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$MASTER_PORT" --webui-port $((MASTER_PORT + 1000))
  wait_port 127.0.0.1 "$MASTER_PORT" 90 "spark master" "$DAEMON_PID" "$DIR/master.log"
  for i in 1 2; do
    start_daemon "$DIR" "$DIR/worker$i.log" \
      java -Xmx512m -cp "$CP" org.apache.spark.deploy.worker.Worker \
      --host 127.0.0.1 --cores 1 --memory 3g --webui-port $((MASTER_PORT + 1000 + i)) \
      --work-dir "$DIR/work/$i" "spark://127.0.0.1:$MASTER_PORT"
  done
  # The workers are ready once the master lists them as ALIVE.
  for _ in $(seq 1 120); do
    alive=$(curl -s "http://127.0.0.1:$((MASTER_PORT + 1000))/json/" | grep -o '"state" *: *"ALIVE"' | wc -l || true)
    [ "$alive" -ge 2 ] && break
    sleep 0.5
  done
  [ "$alive" -ge 2 ] || {
    echo "devstack: spark workers did not register with the master" >&2
    show_logs "$DIR"/worker*.log "$DIR/master.log"; exit 1; }
  echo "AVIP_TEST_SPARK_MASTER=spark://127.0.0.1:$MASTER_PORT" >> "$DEVSTACK_DIR/env"
}

down() { stop_pids "$DIR"; }

"$@"
