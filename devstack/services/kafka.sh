#!/usr/bin/env bash
# A single-node Apache Kafka broker in KRaft mode (broker and controller in
# one JVM) on loopback, run from the Maven-resolved jars in .jars/kafka —
# no Kafka download, no ZooKeeper. Like a deployment's, it authenticates every
# client (SASL/SCRAM-SHA-512; the controller listener SASL/PLAIN) and denies what
# no ACL allows: `admin` is the super user, the relay and the alert stream get
# their own principals and ACLs from `avip kafka services` (config/kafka_access.py).
#   kafka.sh jars   resolve the broker jars (idempotent; the Makefile may call it)
#   kafka.sh up     format $DEVSTACK_DIR/kafka on first use, start, wait for the port
#   kafka.sh down   stop the broker
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
source devstack/lib.sh
DEVSTACK_DIR=${DEVSTACK_DIR:-$ROOT/.devstack}
VENV_BIN=${VENV_BIN:-$ROOT/.venv/bin}
DIR="$DEVSTACK_DIR/kafka"
JARS="$ROOT/.jars/kafka"
POM="$ROOT/jvm/kafka/pom.xml"
# The broker listens on PORT and its controller on PORT+1; AVIP_DEVSTACK_KAFKA_PORT
# pins PORT, otherwise the first free pair from 59092 (see choose_port).
PORT=${AVIP_DEVSTACK_KAFKA_PORT:-}
CP="$JARS/*"
# Development passwords of a loopback-only broker (the tests read them from .devstack/env).
ADMIN_PASSWORD=avip-admin-dev
RELAY_PASSWORD=avip-relay-dev
STREAM_PASSWORD=avip-stream-dev

jars() {
  # Re-resolve only when the POM is newer than the last successful resolution.
  if [ -f "$JARS/.resolved" ] && [ "$JARS/.resolved" -nt "$POM" ]; then return 0; fi
  rm -rf "$JARS"
  mvn -q -B -s "$ROOT/jvm/maven-settings.xml" -f "$POM" dependency:copy-dependencies \
    -DoutputDirectory="$JARS" -DincludeScope=runtime
  touch "$JARS/.resolved"
}

write_config() {
  cat > "$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=SASL_PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$ADMIN_PASSWORD";
# KRaft cannot use SCRAM on the controller listener (the credentials live in the metadata
# it serves): PLAIN there, with the one controller user.
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$ADMIN_PASSWORD" user_admin="$ADMIN_PASSWORD";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin
log.dirs=$DIR/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
# Alert bursts carry light curves: allow messages up to 10 MB.
message.max.bytes=10485760
log.retention.hours=24
PROPS
  cat > "$DIR/log4j.properties" <<PROPS
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$DIR/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
PROPS
}

# start: format the storage on first use and start the broker; fails (with the
# log tails) when the broker exits or does not listen within the time given.
start() {
  local log4j="-Dlog4j.configuration=file:$DIR/log4j.properties"
  # Storage formatted before the broker authenticated has no admin credential: start anew.
  [ -f "$DIR/data/.scram" ] || rm -rf "$DIR/data"
  if [ ! -f "$DIR/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$(java $log4j -cp "$CP" kafka.tools.StorageTool random-uuid)
    java $log4j -cp "$CP" kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$DIR/server.properties" \
      --add-scram "SCRAM-SHA-512=[name=admin,password=$ADMIN_PASSWORD]" > "$DIR/format.log" 2>&1 \
      || { echo "devstack: kafka storage format failed; see $DIR/format.log" >&2; exit 1; }
    touch "$DIR/data/.scram"
  fi
  start_daemon "$DIR" "$DIR/stdout.log" \
    java -Xmx512m -Xms256m "$log4j" -cp "$CP" kafka.Kafka "$DIR/server.properties"
  wait_port 127.0.0.1 "$PORT" 120 "kafka broker" "$DAEMON_PID" "$DIR/stdout.log" "$DIR/server.log"
}

up() {
  jars
  mkdir -p "$DIR"
  stop_pids "$DIR"
  [ -n "$PORT" ] || PORT=$(choose_port "$DIR" 59092 2)
  CONTROLLER_PORT=$((PORT + 1))
  write_config
  # One more try on a fresh port: a broker that lost a race for its port, or
  # started on a machine still busy with the last run, usually comes up then.
  if ! start; then
    stop_pids "$DIR"
    [ -n "${AVIP_DEVSTACK_KAFKA_PORT:-}" ] || { rm -f "$DIR/port"; PORT=$(choose_port "$DIR" 59092 2); }
    CONTROLLER_PORT=$((PORT + 1))
    write_config
    echo "devstack: retrying the kafka broker on 127.0.0.1:$PORT" >&2
    start
  fi
  grant
  {
    echo "AVIP_TEST_KAFKA_BOOTSTRAP=127.0.0.1:$PORT"
    echo "AVIP_TEST_KAFKA_USERNAME=admin"
    echo "AVIP_TEST_KAFKA_PASSWORD=$ADMIN_PASSWORD"
    echo "AVIP_TEST_KAFKA_RELAY_PASSWORD=$RELAY_PASSWORD"
    echo "AVIP_TEST_KAFKA_STREAM_PASSWORD=$STREAM_PASSWORD"
  } >> "$DEVSTACK_DIR/env"
}

# grant: the relay's and the stream's principals and ACLs, as an operator gives them
# (`avip kafka services`, with the admin's credentials). Idempotent.
grant() {
  local tries=0
  until AVIP_KAFKA_BOOTSTRAP="127.0.0.1:$PORT" AVIP_KAFKA_USERNAME=admin \
      AVIP_KAFKA_PASSWORD="$ADMIN_PASSWORD" "$VENV_BIN/avip" kafka services \
      --relay-password "$RELAY_PASSWORD" --stream-password "$STREAM_PASSWORD" \
      > "$DIR/grant.log" 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 10 ] || { echo "devstack: kafka ACLs failed; see $DIR/grant.log" >&2; cat "$DIR/grant.log" >&2; exit 1; }
    sleep 2
  done
}

down() { stop_pids "$DIR"; }

"$@"
