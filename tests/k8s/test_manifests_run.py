"""The rendered manifests, run (issue 15): what `kubectl apply -k` would start, started here.

For each overlay (dev, prod) the kustomize output is rendered and every workload of ours
(the platform image: the Kafka grants Job first, to completion, then the API, scheduler,
warm lane, dashboards, events relay and alert stream Deployments) is started as a local
process exactly as its container would be: its ``command``/``args`` (``$(VAR)`` expanded
as the kubelet does), the environment built from the rendered ConfigMaps and Secrets it
names (prod's Secrets are created out of band, as docs/deploy.md says: the test makes
them with the keys the docs list), each volume a directory at its ``mountPath`` — a
claim is one directory whoever mounts it (so the API, the scheduler and the warm lane
share ``avip-data`` as they do on the cluster), an emptyDir one per pod. Only the
endpoints are overridden, to the devstack's (PostgreSQL, MinIO, Kafka, the standalone
Spark master) and the warm lane's port to a free loopback one (its ``--port`` and the
``AVIP_WARM_LANE_URL`` the API and the scheduler read: a developer's own ``avip warm``
may hold 8769), besides the number of warm workers (``WARM_OVERRIDES``) — and each
overridden key must be one the manifests set; each Kafka principal (admin, avip-relay,
avip-stream) keeps its name and gets the devstack broker's password for it, so the relay
and the stream run with exactly the ACLs the grants Job gave them. Then every
container's start-up, liveness and readiness probes must answer on their declared ports,
every scrape annotation must lead to Prometheus text, and a job submitted through the
API must succeed in the warm lane's process (not in workers of the scheduler's own) and
its result read back through the API must equal a brute-force cone on the catalogue.

No Kubernetes cluster runs here: the job backend is overridden to the devstack's
standalone Spark (``AVIP_JOB_BACKEND=standalone``), and the stores (PostgreSQL, Kafka,
MinIO) are the devstack's, not the StatefulSets' third-party images; the Kubernetes
submission path is covered by the offline validation and the fake-API-server tests.
A Deployment's ``replicas`` is not reproduced (one process each: one port per host).
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from k8s_helpers import render
from prometheus_client.parser import text_string_to_metric_families
from testing_utils import free_port, kafka_auth, new_user, postgres_schema

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
PLATFORM_IMAGE = "avip/platform"
#: The Secrets docs/deploy.md has the operator create for production, and their keys.
OUT_OF_BAND_SECRETS = {
    "avip-secrets": ("POSTGRES_PASSWORD", "AVIP_DATABASE_URL", "AVIP_S3_ACCESS_KEY",
                     "AVIP_S3_SECRET_KEY", "AVIP_METRICS_TOKEN", "AVIP_WARM_LANE_TOKEN"),
    "avip-kafka-admin": ("KAFKA_ADMIN_PASSWORD",),
    "avip-kafka-relay": ("AVIP_KAFKA_USERNAME", "AVIP_KAFKA_PASSWORD"),
    "avip-kafka-stream": ("AVIP_KAFKA_USERNAME", "AVIP_KAFKA_PASSWORD"),
}
#: What the warm lane's process gets beyond the endpoints: one warm worker instead of the
#: manifest's two. Each is a JVM warming up (two jobs) at nice 10; on this 2-core machine,
#: next to the other processes' JVMs, a second one only delays the first one's readiness.
WARM_OVERRIDES = {"AVIP_WARM_WORKERS": "1"}
KAFKA_PRINCIPALS = {"avip-kafka-admin": "admin", "avip-kafka-relay": "avip-relay",
                    "avip-kafka-stream": "avip-stream"}


@dataclass
class Container:
    """One container of ours, as the manifests describe it, mapped onto this machine."""

    workload: str
    kind: str
    spec: dict[str, Any]
    env: dict[str, str]
    mounts: dict[str, Path]  # mountPath → host directory
    log: Path
    process: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    #: container port → the loopback port it listens on here (absent: the same)
    moved: dict[int, int] = field(default_factory=dict)

    def port(self, ref: int | str) -> int:
        """The loopback port of a container port (by number or name)."""
        number = ref if isinstance(ref, int) else self.ports[ref]
        return self.moved.get(number, number)

    def move_port(self, name: str, to: int) -> None:
        """Listen on ``to`` instead of the named container port: its ``--...port`` argument
        is rewritten when the process starts, probes and scrapes follow."""
        self.moved[self.ports[name]] = to

    def argv(self, env: dict[str, str]) -> list[str]:
        """``command`` + ``args`` as the kubelet runs them, with moved ports and container
        paths under a mount moved to the mount's directory."""
        argv = [self.local_path(_expand(a, env)) for a in
                [*self.spec.get("command", []), *self.spec.get("args", [])]]
        for i in range(1, len(argv)):
            if argv[i - 1].startswith("--") and argv[i - 1].endswith("port") \
                    and argv[i].isdigit() and int(argv[i]) in self.moved:
                argv[i] = str(self.moved[int(argv[i])])
        return argv

    def local_path(self, value: str) -> str:
        """``value`` with a container path under a mount moved to the mount's directory."""
        for mount, host in sorted(self.mounts.items(), key=lambda m: -len(m[0])):
            if value == mount or value.startswith(mount.rstrip("/") + "/"):
                return str(host) + value[len(mount.rstrip("/")):]
        return value


def _by_name(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name
                 and o["metadata"].get("namespace", "avip") == "avip"), None)


def _secret_data(objects: list[dict[str, Any]], name: str,
                 out_of_band: dict[str, dict[str, str]]) -> dict[str, str]:
    secret = _by_name(objects, "Secret", name)
    if secret is None:
        base = next((b for b in out_of_band if name == b), None)
        assert base is not None, f"a container names Secret {name}, which nobody creates"
        return out_of_band[base]
    return {**{k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()},
            **secret.get("stringData", {})}


def _principal_of(name: str) -> str | None:
    """The Kafka principal a (possibly hash-suffixed) Secret holds the password of."""
    return next((p for base, p in KAFKA_PRINCIPALS.items()
                 if name == base or name.startswith(base + "-")), None)


def _container_env(objects: list[dict[str, Any]], container: dict[str, Any],
                   secrets: dict[str, dict[str, str]], pod_name: str) -> dict[str, str]:
    """The container's environment as the kubelet builds it; a Kafka password becomes the
    devstack broker's password of the same principal."""
    env: dict[str, str] = {}

    def from_secret(name: str) -> dict[str, str]:
        data = dict(_secret_data(objects, name, secrets))
        principal = _principal_of(name)
        for key in ("AVIP_KAFKA_PASSWORD", "KAFKA_ADMIN_PASSWORD"):
            if principal and key in data:
                data[key] = _devstack_kafka_password(principal)
        return data

    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            config_map = _by_name(objects, "ConfigMap", name)
            assert config_map is not None, f"{container['name']} names missing ConfigMap {name}"
            env.update(config_map.get("data", {}))
        else:
            env.update(from_secret(source["secretRef"]["name"]))
    for item in container.get("env", []):
        source = item.get("valueFrom", {})
        if "value" in item:
            env[item["name"]] = _expand(item["value"], env)
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[item["name"]] = pod_name
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[item["name"]] = from_secret(ref["name"])[ref["key"]]
    return env


def _expand(value: str, env: dict[str, str]) -> str:
    """``$(NAME)`` replaced by an earlier variable, as the kubelet does (unknown: kept)."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: env.get(m.group(1), m.group(0)), value)


def _devstack_kafka_password(principal: str) -> str:
    auth = kafka_auth(principal)
    if auth is None:
        pytest.skip("the devstack broker does not authenticate: run through `make test`")
    return auth.password


def _our_containers(objects: list[dict[str, Any]], work: Path,
                    secrets: dict[str, dict[str, str]]) -> list[Container]:
    found = []
    for obj in sorted(objects, key=lambda o: o["kind"] != "Job"):  # Jobs first
        if obj["kind"] not in ("Job", "Deployment", "StatefulSet"):
            continue
        pod = obj["spec"]["template"]["spec"]
        for spec in pod["containers"]:
            if PLATFORM_IMAGE not in spec["image"]:
                continue  # third-party images (PostgreSQL, Kafka, MinIO, Zeppelin)
            name = obj["metadata"]["name"]
            host_of = {}
            for volume in pod.get("volumes", []):
                claim = volume.get("persistentVolumeClaim", {}).get("claimName")
                host_of[volume["name"]] = (work / "claims" / claim if claim
                                           else work / "pods" / name / volume["name"])
            mounts = {m["mountPath"]: host_of[m["name"]] for m in spec.get("volumeMounts", [])}
            for directory in mounts.values():
                directory.mkdir(parents=True, exist_ok=True)
            env = _container_env(objects, spec, secrets, f"{name}-0")
            container = Container(name, obj["kind"], spec, env, mounts, work / f"{name}.log")
            container.ports = {p["name"]: p["containerPort"] for p in spec.get("ports", [])}
            found.append(container)
    return found


def _devstack_endpoints(lake: str, store_url: str, warm_port: int) -> dict[str, str]:
    names = {"AVIP_S3_ENDPOINT": "AVIP_TEST_S3_ENDPOINT",
             "AVIP_S3_ACCESS_KEY": "AVIP_TEST_S3_ACCESS_KEY",
             "AVIP_S3_SECRET_KEY": "AVIP_TEST_S3_SECRET_KEY",
             "AVIP_S3_BUCKET": "AVIP_TEST_S3_BUCKET",
             "AVIP_KAFKA_BOOTSTRAP": "AVIP_TEST_KAFKA_BOOTSTRAP",
             "AVIP_SPARK_MASTER": "AVIP_TEST_SPARK_MASTER"}
    missing = [test for test in names.values() if not os.environ.get(test)]
    if missing:
        pytest.skip(f"no devstack ({', '.join(missing)} unset): run through `make test`")
    endpoints = {key: os.environ[test] for key, test in names.items()}
    run = uuid.uuid4().hex[:8]
    return {**endpoints, "AVIP_DATABASE_URL": store_url, "AVIP_LAKEHOUSE_URI": lake,
            "AVIP_JOB_BACKEND": "standalone",  # no Kubernetes here (see the module docstring)
            "AVIP_WARM_LANE_URL": f"http://127.0.0.1:{warm_port}",
            "AVIP_ALERTS_CHECKPOINT":
                f"s3a://{endpoints['AVIP_S3_BUCKET']}/manifest-run-{run}/alert-stream",
            "AVIP_SCHEDULER_INTERVAL_S": "0.5"}


def _process_env(container: Container, endpoints: dict[str, str], work: Path) -> dict[str, str]:
    """The container's environment on this machine: the image's ENV (Dockerfile), the
    rendered env with its container paths moved to the mounts' directories, the
    devstack's endpoints, and nothing inherited from the test process besides Java (so
    not the suite's ``AVIP_WARM_WORKERS=0`` of tests/conftest.py either: the warm lane
    runs the workers its manifest asks for, the API and the scheduler get none)."""
    image = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
             "HOME": str(work / "home" / container.workload), "LANG": "C.UTF-8",
             "PYTHONUNBUFFERED": "1", "AVIP_JARS_DIR": str(REPO / ".jars" / "spark"),
             "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    if os.environ.get("JAVA_HOME"):
        image["JAVA_HOME"] = os.environ["JAVA_HOME"]
    Path(image["HOME"]).mkdir(parents=True, exist_ok=True)
    env = {**image, **{k: container.local_path(v) for k, v in container.env.items()}}
    env.update({k: v for k, v in endpoints.items() if k in container.env
                or k == "AVIP_SCHEDULER_INTERVAL_S"})
    if "/tmp" in container.mounts:
        env["TMPDIR"] = str(container.mounts["/tmp"])
    return env


@contextmanager
def _started(container: Container, env: dict[str, str], cwd: Path) -> Iterator[Container]:
    argv = container.argv(env)
    with container.log.open("wb") as log:
        container.process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log,
                                             stderr=subprocess.STDOUT,
                                             start_new_session=True)
    try:
        yield container
    finally:
        if container.process.poll() is None:
            os.killpg(container.process.pid, signal.SIGTERM)
            try:
                container.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(container.process.pid, signal.SIGKILL)
                container.process.wait()


PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def _probe_url(container: Container, probe: str) -> str:
    get = container.spec[probe]["httpGet"]
    return f"http://127.0.0.1:{container.port(get['port'])}{get['path']}"


def _wait_ready(containers: list[Container], timeout_s: float) -> None:
    waiting = {c.workload: c for c in containers}
    deadline = time.monotonic() + timeout_s
    while waiting:
        for name, c in list(waiting.items()):
            assert c.process is not None
            if c.process.poll() is not None:
                pytest.fail(f"{name} exited with {c.process.returncode}:\n"
                            f"{c.log.read_text()[-3000:]}")
            try:
                answers = {httpx.get(_probe_url(c, p), timeout=5).status_code
                           for p in PROBES if p in c.spec}
            except httpx.HTTPError:
                continue
            if answers == {200}:
                del waiting[name]
        if waiting and time.monotonic() > deadline:
            detail = {n: c.log.read_text()[-1500:] for n, c in waiting.items()}
            pytest.fail(f"never live and ready: {sorted(waiting)}\n{detail}")
        time.sleep(0.5)


def _scraped(container: Container, pod_annotations: dict[str, str],
             headers: dict[str, str]) -> set[str]:
    url = (f"http://127.0.0.1:{container.port(int(pod_annotations['prometheus.io/port']))}"
           f"{pod_annotations.get('prometheus.io/path', '/metrics')}")
    r = httpx.get(url, headers=headers, timeout=10)
    assert r.status_code == 200, f"{container.workload}: {url} → {r.status_code} {r.text[:200]}"
    return {family.name for family in text_string_to_metric_families(r.text)}


def _cone_and_brute_force(lake: str) -> tuple[dict[str, float], set[int]]:
    """A 5° cone centred on a catalogue star, and its members by astropy separations
    over the whole table (read with delta-rs, not through the platform)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from deltalake import DeltaTable

    table = DeltaTable(str(Path(lake) / "gaia_source")).to_pyarrow_table(
        columns=["source_id", "ra", "dec"])
    ra, dec = np.asarray(table["ra"]), np.asarray(table["dec"])
    cone = {"ra": float(ra[len(ra) // 2]), "dec": float(dec[len(dec) // 2]), "radius_deg": 5.0}
    stars = SkyCoord(ra * u.deg, dec * u.deg)
    inside = stars.separation(SkyCoord(cone["ra"] * u.deg, cone["dec"] * u.deg)).deg <= 5.0
    return cone, set(np.asarray(table["source_id"])[inside].tolist())


def test_the_out_of_band_secrets_are_the_ones_the_docs_list() -> None:
    """What the prod run below creates is what docs/deploy.md has the operator create."""
    docs = (REPO / "docs" / "deploy.md").read_text().replace("\\\n", " ")
    listed: dict[str, tuple[str, ...]] = {}
    for command in re.findall(r"kubectl -n avip create secret generic (\S+)([^\n]*)", docs):
        listed[command[0]] = tuple(re.findall(r"--from-literal=([A-Z0-9_]+)=", command[1]))
    assert listed == OUT_OF_BAND_SECRETS


@pytest.fixture(scope="module")
def lake(tmp_path_factory, ingest_synthetic_cli) -> str:
    return ingest_synthetic_cli(str(tmp_path_factory.mktemp("lake")), rows=4000, seed=5,
                                clusters=2, timeout_s=300)


@pytest.mark.slow
@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_rendered_deployments_run_and_answer(overlay: str, lake: str,
                                                 tmp_path: Path) -> None:
    base_url = os.environ.get("AVIP_TEST_POSTGRES_URL")
    if not base_url:
        pytest.skip("no PostgreSQL: AVIP_TEST_POSTGRES_URL is unset (run through `make test`)")
    objects = render(str(K8S / "overlays" / overlay))
    store_url, drop_store = postgres_schema(base_url)
    warm_port = free_port()
    endpoints = _devstack_endpoints(lake, store_url, warm_port)
    secrets = {  # prod: the Secrets docs/deploy.md has the operator create
        name: {key: endpoints.get(key, KAFKA_PRINCIPALS.get(name, "set-by-the-operator"))
               for key in keys} for name, keys in OUT_OF_BAND_SECRETS.items()}
    workloads = _our_containers(objects, tmp_path, secrets)
    jobs = [c for c in workloads if c.kind == "Job"]
    containers = [c for c in workloads if c.kind != "Job"]
    assert [c.workload for c in jobs] == ["kafka-grants"]
    assert sorted(c.workload for c in containers) == [
        "alert-stream", "api", "avip-warm", "events-relay", "panel", "scheduler"]
    api = next(c for c in containers if c.workload == "api")
    scheduler = next(c for c in containers if c.workload == "scheduler")
    warm = next(c for c in containers if c.workload == "avip-warm")
    overridden = {k for k in endpoints if k != "AVIP_SCHEDULER_INTERVAL_S"}
    assert overridden <= set(api.env), f"the manifests never set {overridden - set(api.env)}"
    # The warm lane listens on a free port; the API and the scheduler are told so where
    # the manifests tell them (AVIP_WARM_LANE_URL), and the scheduler has its token.
    warm.move_port("http", warm_port)
    assert set(WARM_OVERRIDES) <= set(warm.env)  # overrides, not additions
    assert "AVIP_WARM_LANE_URL" in scheduler.env
    assert scheduler.env["AVIP_WARM_LANE_TOKEN"] == warm.env["AVIP_WARM_LANE_TOKEN"] != ""
    root = tmp_path / "root"  # the image's WORKDIR: nothing of the repository
    root.mkdir()
    try:
        for job in jobs:  # to completion, before anything that needs what they grant
            with _started(job, _process_env(job, endpoints, tmp_path), root):
                assert job.process is not None
                assert job.process.wait(timeout=120) == 0, job.log.read_text()[-3000:]
        with ExitStack() as stack:
            for c in containers:
                env = _process_env(c, endpoints, tmp_path)
                if c is warm:
                    env.update(WARM_OVERRIDES)
                stack.enter_context(_started(c, env, root))
            _wait_ready(containers, timeout_s=240)

            # The operator token is on the shared data claim, where `avip api` wrote it.
            data = api.mounts["/data"]
            assert scheduler.mounts["/data"] == warm.mounts["/data"] == data  # one claim
            # The warm lane's job API answers the scheduler's token only.
            lane = f"http://127.0.0.1:{warm_port}"
            assert httpx.get(f"{lane}/stats", timeout=10).status_code == 401
            stats = httpx.get(f"{lane}/stats", timeout=10, headers={
                "Authorization": f"Bearer {warm.env['AVIP_WARM_LANE_TOKEN']}"})
            assert stats.status_code == 200, stats.text
            operator = {"Authorization":
                        f"Bearer {(data / 'operator.token').read_text().strip()}"}
            for c in containers:
                annotations = next(o for o in objects if o["kind"] == "Deployment"
                                   and o["metadata"]["name"] == c.workload
                                   )["spec"]["template"]["metadata"]["annotations"]
                assert _scraped(c, annotations, _scrape_headers(c, operator)), c.workload
                if c is warm:  # its metrics name no user: no token asked
                    assert {"avip_warm_workers", "avip_warm_jobs"} <= _scraped(
                        c, annotations, {})

            service = _by_name(objects, "Service", "api")
            assert service is not None
            url = f"http://127.0.0.1:{service['spec']['ports'][0]['port']}"
            with httpx.Client(base_url=url, timeout=30) as client:
                alice = new_user(client, operator, f"alice{uuid.uuid4().hex[:6]}")
                cone, members = _cone_and_brute_force(lake)
                r = client.post("/jobs", headers=alice, json={"avi": "cone_search",
                                                              "params": cone})
                assert r.status_code == 201, r.text
                job_id = r.json()["id"]
                deadline = time.monotonic() + 300
                while (job := client.get(f"/jobs/{job_id}", headers=alice).json())[
                        "state"] not in ("succeeded", "failed", "cancelled"):
                    assert time.monotonic() < deadline, f"job stuck: {job}"
                    time.sleep(1)
                assert job["state"] == "succeeded", client.get(
                    f"/jobs/{job_id}/logs", headers=alice).text[-3000:]
                # A small cone: the API sent it to the warm lane, and the avip-warm process
                # ran it (its counter), not workers the scheduler would start of its own.
                assert (job["lane"], job["backend"]) == ("warm", "warm"), job
                assert _warm_jobs(warm, "succeeded") == 1
                listed = client.get(f"/jobs/{job_id}/results", headers=alice).json()
                paths = [item["path"] for item in listed["data"]]
                assert "sources.parquet" in paths, listed
                r = client.get(f"/jobs/{job_id}/results/sources.parquet", headers=alice)
                assert r.status_code == 200, r.text
                result = tmp_path / "sources.parquet"
                result.write_bytes(r.content)
                got = set(pq.read_table(result, columns=["source_id"])["source_id"].to_pylist())
                assert got == members and members
                # ...and the relay published the job's events (its counter, scraped).
                relay = next(c for c in containers if c.workload == "events-relay")
                deadline = time.monotonic() + 30
                while _published(relay, _scrape_headers(relay, operator)) == 0:
                    assert time.monotonic() < deadline, "the relay published nothing"
                    time.sleep(0.5)
    finally:
        drop_store()


def _warm_jobs(warm: Container, outcome: str) -> float:
    text = httpx.get(_probe_url(warm, "livenessProbe").replace("/healthz", "/metrics"),
                     timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name.startswith("avip_warm_jobs")
               and sample.labels.get("outcome") == outcome)


def _scrape_headers(container: Container, operator: dict[str, str]) -> dict[str, str]:
    """What Prometheus shows: the scrape token where the Secret has one, else (no scrape
    token: metrics for operators only) an operator's token."""
    token = container.env.get("AVIP_METRICS_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else operator


def _published(relay: Container, headers: dict[str, str]) -> float:
    text = httpx.get(_probe_url(relay, "livenessProbe").replace("/healthz", "/metrics"),
                     headers=headers, timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name.startswith("avip_events_published"))
