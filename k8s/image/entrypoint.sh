#!/bin/bash
# Entrypoint of the platform image. Spark on Kubernetes (spark-submit or the
# spark-operator) starts driver pods with `driver <spark-submit args>` and
# executor pods with `executor`, passing everything else in SPARK_* variables;
# anything else (avip serve, panel, ...) is run as given.
set -eo pipefail
SPARK_HOME=${SPARK_HOME:-$(cat /opt/avip/.spark_home)}
export SPARK_HOME PYSPARK_PYTHON=${PYSPARK_PYTHON:-python} PYSPARK_DRIVER_PYTHON=${PYSPARK_DRIVER_PYTHON:-python}
# Executors get the platform jars (Delta, hadoop-aws, Kafka) through spark.jars.
SPARK_CLASSPATH="${SPARK_CLASSPATH:+$SPARK_CLASSPATH:}$SPARK_HOME/jars/*"

# Spark passes executor JVM options as SPARK_JAVA_OPT_0, SPARK_JAVA_OPT_1, ...
java_opts=()
while IFS='=' read -r name value; do
  java_opts+=("$value")
done < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n)

case "$1" in
  driver)
    shift
    exec "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS" \
      --deploy-mode client "$@" ;;
  executor)
    shift
    exec "$JAVA_HOME/bin/java" "${java_opts[@]}" \
      -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" \
      -cp "$SPARK_CLASSPATH" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" --resourceProfileId "$SPARK_RESOURCE_PROFILE_ID" \
      --podName "$SPARK_EXECUTOR_POD_NAME" ;;
  *)
    exec "$@" ;;
esac
