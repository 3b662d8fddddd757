# The avip platform image: API, scheduler, dashboards, notes — and the Spark
# driver/executor image for Spark on Kubernetes (same Python, same packages,
# same jars, so a job runs identically in every mode).
#   make jars && docker build -t avip/platform:0.1.0 .
# Spark comes from the pyspark wheel (pinned in pyproject.toml); the JVM jars
# (Delta, hadoop-aws + AWS SDK v2, Kafka connector) from `make jars` (.jars/spark).

# BASE: any Debian bookworm with Python 3.11 and its venv module. The default comes from
# Docker Hub; where no image registry is reachable, k8s/image/build-local.sh makes one
# with debootstrap from Debian's own packages and passes it here.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ARG SPARK_UID=185
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    AVIP_JARS_DIR=/opt/avip/.jars/spark \
    AVIP_DATA_DIR=/data \
    PATH=/opt/venv/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini procps \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid ${SPARK_UID} --home-dir /opt/avip --no-create-home --shell /usr/sbin/nologin spark

WORKDIR /opt/avip
COPY pyproject.toml README.md* ./
COPY config/ config/
COPY lakehouse/ lakehouse/
COPY spark_jobs/ spark_jobs/
COPY avi_plugins/ avi_plugins/
COPY api/ api/
COPY panel_apps/ panel_apps/
COPY zeppelin_notes/ zeppelin_notes/
COPY cli/ cli/
COPY .jars/spark/ .jars/spark/
COPY requirements.lock ./
# PIP_CERT: a CA bundle for pip where an egress proxy re-signs TLS (mounted at build time
# by k8s/image/build-local.sh; never copied into the image).
ARG PIP_CERT=
RUN python3 -m venv /opt/venv \
 && pip install --no-cache-dir ${PIP_CERT:+--cert "$PIP_CERT"} -c requirements.lock . \
 && python -c "import pyspark, os; print(os.path.dirname(pyspark.__file__))" > /opt/avip/.spark_home

# Spark on Kubernetes starts containers with `driver ...` or `executor ...`.
COPY k8s/image/entrypoint.sh /opt/entrypoint.sh
RUN chmod 0755 /opt/entrypoint.sh && mkdir -p /data /space && chown ${SPARK_UID} /data /space

USER ${SPARK_UID}
EXPOSE 8765 5006
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/entrypoint.sh"]
CMD ["avip", "--help"]
