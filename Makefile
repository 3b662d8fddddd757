# avip — all set-up lives here. `make demo` and `make test` work on a fresh
# machine: they create .venv, install the package, resolve the JVM jars with
# Maven into .jars/, and (for tests) start the services in devstack/.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
MVN := mvn -q -B -s jvm/maven-settings.xml
DEVSTACK := devstack/devstack.sh

.PHONY: all install jars java-check demo serve dashboards test lint bench clean devstack-up devstack-down lock image

all: install jars

$(BIN)/python:
	command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/pip install -q -c requirements.lock -e '.[test,bench]'
	touch $@

# Pin what the suite passed with: run after a green `make test`.
lock: install
	{ sed -n '1,3p' requirements.lock; $(BIN)/pip freeze --exclude-editable | grep -v ' @ file'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

install: $(VENV)/.installed

java-check:
	@java -version 2>&1 | grep -qE 'version "(17|21)' || { echo "need Java 17 or 21 on PATH (Spark 4)"; exit 1; }
	@command -v mvn >/dev/null || { echo "need Maven (mvn) to resolve the JVM jars"; exit 1; }

.jars/spark/.resolved: jvm/pom.xml jvm/maven-settings.xml | java-check
	rm -rf .jars/spark
	$(MVN) -f jvm/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/.jars/spark -DincludeScope=runtime
	touch $@

jars: .jars/spark/.resolved

demo: install jars
	$(BIN)/avip demo
	$(BIN)/avip zeppelin local zeppelin_notes/notes/01_start_here.zpln zeppelin_notes/notes/02_cone_search.zpln

serve: install jars
	$(BIN)/avip serve

dashboards: install
	$(BIN)/avip dashboards --address 127.0.0.1 --port 5006

devstack-up: install jars
	$(DEVSTACK) up

devstack-down:
	$(DEVSTACK) down

test: install jars
	$(DEVSTACK) up
	set -a; source .devstack/env; AVIP_TEST_KAFKA_RESTARTABLE=1; AVIP_TEST_SERVICES_RESTARTABLE=1; set +a; \
	  $(BIN)/pytest; rc=$$?; \
	  $(DEVSTACK) down; exit $$rc

# Refresh the README's dashboard screenshots from a real browser run.
screenshots: install
	$(DEVSTACK) up chromium
	AVIP_TEST_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest tests/panel/test_browser.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Benchmarks print each peer's figures and ratios; see benchmarks/README.md.
bench: install jars
	$(DEVSTACK) up spark kafka zeppelin
	set -a; source .devstack/env; set +a; \
	  $(BIN)/python benchmarks/lakehouse.py && \
	  $(BIN)/python benchmarks/cluster_finder.py --rows 5000000 --seed 1 && \
	  $(BIN)/python benchmarks/scheduler_sim.py && \
	  $(BIN)/python benchmarks/api_load.py --clients 200 --duration 60 && \
	  AVIP_KAFKA_BOOTSTRAP=$$AVIP_TEST_KAFKA_BOOTSTRAP $(BIN)/python benchmarks/alerts.py && \
	  $(BIN)/python benchmarks/zeppelin_users.py; rc=$$?; \
	  $(DEVSTACK) down; exit $$rc

# The platform image with podman; where no image registry answers, its base is made with
# debootstrap from Debian's packages (k8s/image/build-local.sh). tests/k8s/test_image.py
# then runs `avip --help` and the API's probes inside it.
image: jars
	command -v podman >/dev/null || apt-get install -y -qq podman buildah debootstrap
	k8s/image/build-local.sh

clean:
	-$(DEVSTACK) down
	rm -rf .data .devstack out
