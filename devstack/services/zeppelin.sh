#!/usr/bin/env bash
# Apache Zeppelin on loopback, assembled from the Maven Central artifacts that
# jvm/zeppelin/pom.xml names (no binary tarball), with a Python interpreter
# running this repo's venv so the notes use our pyspark and session factory.
#   zeppelin.sh jars   resolve the jars into .jars/zeppelin (idempotent)
#   zeppelin.sh up     lay out ZEPPELIN_HOME under .devstack/zeppelin and start it
#   zeppelin.sh down   stop the server and every interpreter process it started
# Users (Shiro, plain-text test passwords): avip (admin) and user1..user4.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEVSTACK_DIR=${DEVSTACK_DIR:-$ROOT/.devstack}
VENV_BIN=${VENV_BIN:-$ROOT/.venv/bin}
DIR="$DEVSTACK_DIR/zeppelin"
HOME_DIR="$DIR/home"
JARS="$ROOT/.jars/zeppelin"
POM="$ROOT/jvm/zeppelin/pom.xml"
PORT=${AVIP_DEVSTACK_ZEPPELIN_PORT:-}  # default: the first free port from 18490
USERS="user1 user2 user3 user4"

jars() {
  if [ -f "$JARS/.resolved" ] && [ "$JARS/.resolved" -nt "$POM" ]; then return 0; fi
  rm -rf "$JARS"
  local mvn=(mvn -q -B -s "$ROOT/jvm/maven-settings.xml" -f "$POM" dependency:copy-dependencies
    -DincludeScope=runtime)
  "${mvn[@]}" -P server -DoutputDirectory="$JARS/lib"
  "${mvn[@]}" -P python -DoutputDirectory="$JARS/interpreter/python"
  touch "$JARS/.resolved"
}

password_of() { echo "avip-$1-pw"; }

write_conf() {
  local python=$VENV_BIN/python
  mkdir -p "$HOME_DIR"/{conf,bin,notebook,logs,run,webapp,local-repo,interpreter/python}
  ln -sfn "$JARS/lib" "$HOME_DIR/lib"
  for jar in "$JARS"/interpreter/python/*.jar; do ln -sf "$jar" "$HOME_DIR/interpreter/python/"; done
  # No web UI artifact (zeppelin-web WAR) is published for any version: serve an empty webapp.
  echo "Zeppelin REST API only: the web UI WAR is not on Maven Central." > "$HOME_DIR/webapp/index.html"

  cat > "$HOME_DIR/conf/zeppelin-site.xml" <<EOF
<?xml version="1.0"?>
<configuration>
  <property><name>zeppelin.server.addr</name><value>127.0.0.1</value></property>
  <property><name>zeppelin.server.port</name><value>$PORT</value></property>
  <property><name>zeppelin.war</name><value>$HOME_DIR/webapp</value></property>
  <property><name>zeppelin.notebook.dir</name><value>$HOME_DIR/notebook</value></property>
  <property><name>zeppelin.notebook.storage</name>
    <value>org.apache.zeppelin.notebook.repo.VFSNotebookRepo</value></property>
  <property><name>zeppelin.interpreter.dir</name><value>$HOME_DIR/interpreter</value></property>
  <property><name>zeppelin.interpreter.remoterunner</name>
    <value>$HOME_DIR/bin/interpreter.sh</value></property>
  <property><name>zeppelin.interpreter.group.default</name><value>python</value></property>
  <property><name>zeppelin.interpreter.connect.timeout</name><value>120000</value></property>
  <property><name>zeppelin.anonymous.allowed</name><value>false</value></property>
  <property><name>zeppelin.notebook.public</name><value>false</value></property>
  <property><name>zeppelin.helium.registry</name><value>helium</value></property>
</configuration>
EOF

  {
    echo "[users]"
    echo "avip = $(password_of avip), admin"
    for u in $USERS; do echo "$u = $(password_of "$u"), scientist"; done
    cat <<'EOF'
[main]
sessionManager = org.apache.shiro.web.session.mgt.DefaultWebSessionManager
cookie = org.apache.shiro.web.servlet.SimpleCookie
cookie.name = JSESSIONID
cookie.httpOnly = true
sessionManager.sessionIdCookie = $cookie
securityManager.sessionManager = $sessionManager
securityManager.sessionManager.globalSessionTimeout = 3600000
shiro.loginUrl = /api/login
[roles]
admin = *
scientist = *
[urls]
/api/version = anon
/api/interpreter/setting/restart/** = authc
/api/interpreter/** = authc, roles[admin]
/api/configurations/** = authc, roles[admin]
/api/credential/** = authc, roles[admin]
/api/admin/** = authc, roles[admin]
/** = authc
EOF
  } > "$HOME_DIR/conf/shiro.ini"

  cat > "$HOME_DIR/conf/log4j.properties" <<'EOF'
log4j.rootLogger = INFO, file
log4j.appender.file = org.apache.log4j.FileAppender
log4j.appender.file.File = ${zeppelin.log.file}
log4j.appender.file.layout = org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern = %5p [%d] ({%t} %F[%M]:%L) - %m%n
EOF

  # The Python interpreter: one process per user (isolated), this venv's python, no IPython
  # (the vanilla py4j-based REPL needs nothing beyond the venv).
  cat > "$HOME_DIR/interpreter/python/interpreter-setting.json" <<EOF
[
  {
    "group": "python",
    "name": "python",
    "className": "org.apache.zeppelin.python.PythonInterpreter",
    "defaultInterpreter": true,
    "properties": {
      "zeppelin.python": {"envName": null, "propertyName": "zeppelin.python",
        "defaultValue": "$python", "description": "Python executable (the avip venv)",
        "type": "string"},
      "zeppelin.python.maxResult": {"envName": null, "propertyName": "zeppelin.python.maxResult",
        "defaultValue": "1000", "description": "Max rows shown for a DataFrame", "type": "number"},
      "zeppelin.python.useIPython": {"propertyName": "zeppelin.python.useIPython",
        "defaultValue": false, "description": "Use IPython if available", "type": "checkbox"}
    },
    "option": {"remote": true, "port": -1, "perNote": "shared", "perUser": "isolated",
      "isExistingProcess": false, "setPermission": false, "owners": [], "isUserImpersonate": false},
    "editor": {"language": "python", "editOnDblClick": false, "completionSupport": true}
  }
]
EOF

  # The interpreter process launcher Zeppelin calls with -d DIR -c HOST -p PORT -r RANGE
  # -i GROUP_ID -l REPO -g SETTING: a plain JVM with the interpreter's jars.
  cat > "$HOME_DIR/bin/interpreter.sh" <<EOF
#!/usr/bin/env bash
while getopts "c:p:r:i:d:l:g:u:" o; do
  case \$o in d) dir=\$OPTARG;; c) host=\$OPTARG;; p) port=\$OPTARG;; r) range=\$OPTARG;;
    i) group_id=\$OPTARG;; *) ;; esac
done
echo \$\$ >> "$DIR/pids"
exec java -Xmx256m -Dzeppelin.log.file="$HOME_DIR/logs/interpreter-\$group_id.log" \\
  -Dlog4j.configuration="file:$HOME_DIR/conf/log4j.properties" \\
  -cp "\$dir/*" org.apache.zeppelin.interpreter.remote.RemoteInterpreterServer \\
  "\$host" "\$port" "\$group_id" "\$range"
EOF
  chmod +x "$HOME_DIR/bin/interpreter.sh"
}

up() {
  jars
  stop_pids "$DIR"
  mkdir -p "$DIR"
  [ -n "$PORT" ] || PORT=$(choose_port "$DIR" 18490 1)
  write_conf
  # Environment the interpreter processes inherit: Spark from our pyspark, a small local
  # driver per user, and the same lakehouse the rest of the stack uses.
  SPARK_HOME=$("$VENV_BIN/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
  export SPARK_HOME PYSPARK_PYTHON="$VENV_BIN/python" PYSPARK_DRIVER_PYTHON="$VENV_BIN/python"
  # Zeppelin 0.10 appends its bundled py4j 0.10.7 (which fails on Python 3.11) to PYTHONPATH;
  # putting the venv's site-packages first makes both its REPL and pyspark use the venv's py4j.
  PYTHONPATH=$("$VENV_BIN/python" -c 'import os, py4j; print(os.path.dirname(os.path.dirname(py4j.__file__)))')
  export PYTHONPATH
  export AVIP_LAKEHOUSE_URI=${AVIP_ZEPPELIN_LAKEHOUSE:-$DIR/lakehouse}
  export AVIP_SPARK_MASTER=${AVIP_ZEPPELIN_SPARK_MASTER:-local[2]}
  export AVIP_SPARK_DRIVER_MEMORY=${AVIP_ZEPPELIN_DRIVER_MEMORY:-768m}
  # Without ZEPPELIN_IDENT_STRING the server treats stdin EOF as "stop" (an IDE convenience).
  export ZEPPELIN_HOME="$HOME_DIR" ZEPPELIN_CONF_DIR="$HOME_DIR/conf" ZEPPELIN_IDENT_STRING=avip
  (
    cd "$HOME_DIR"
    setsid nohup java -Xmx512m -Dzeppelin.home="$HOME_DIR" -Dzeppelin.log.file="$HOME_DIR/logs/server.log" \
      -Dlog4j.configuration="file:$HOME_DIR/conf/log4j.properties" \
      -cp "$HOME_DIR/conf:$HOME_DIR/lib/*" org.apache.zeppelin.server.ZeppelinServer \
      < /dev/null > "$DIR/server.out" 2>&1 &
    echo $! >> "$DIR/pids"
  )
  wait_port 127.0.0.1 "$PORT" 120 "zeppelin" "$(tail -1 "$DIR/pids")" "$DIR/server.out" "$HOME_DIR/logs/server.log"
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$PORT/api/version" >/dev/null && break
    sleep 0.5
  done
  curl -sf "http://127.0.0.1:$PORT/api/version" >/dev/null \
    || { echo "devstack: zeppelin REST API not answering" >&2; show_logs "$HOME_DIR/logs/server.log"; exit 1; }
  {
    echo "AVIP_TEST_ZEPPELIN_URL=http://127.0.0.1:$PORT"
    echo "AVIP_TEST_ZEPPELIN_LAKEHOUSE=$AVIP_LAKEHOUSE_URI"
    echo "AVIP_TEST_ZEPPELIN_USER=user1"
    echo "AVIP_TEST_ZEPPELIN_PASSWORD=$(password_of user1)"
    echo "AVIP_TEST_ZEPPELIN_USERS=$(for u in $USERS; do printf '%s:%s,' "$u" "$(password_of "$u")"; done | sed 's/,$//')"
  } >> "$DEVSTACK_DIR/env"
}

down() { stop_pids "$DIR"; }

"$@"
