"""The k8s/ manifests: rendered with kustomize, validated offline, invariants checked.

No cluster here: every object of both overlays is validated against the
Kubernetes OpenAPI schemas (kubernetes-validate, strict: unknown fields fail)
or the spark-operator API; then the properties the platform relies on are
checked on the rendered objects: quotas everywhere, bounded containers,
isolated users, generated files in sync with their sources.
"""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from k8s_helpers import (
    ingress_admits,
    namespace_problems,
    render,
    user_namespaces,
    validate_object,
    workload_problems,
)
from kubernetes.utils import parse_quantity

from cli.k8s import load_users, users_yaml, yunikorn_values
from spark_jobs.backends.k8s.quota import capacity_problems, yunikorn_config

K8S = Path(__file__).resolve().parents[2] / "k8s"
OVERLAYS = ["dev", "prod"]
YUNIKORN_VALUES = {"dev": "yunikorn-values-dev.yaml", "prod": "yunikorn-values.yaml"}


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request) -> tuple[str, list[dict]]:
    return request.param, render(str(K8S / "overlays" / request.param))


def test_every_object_validates_against_its_schema(overlay):
    name, objects = overlay
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "StatefulSet", "ResourceQuota", "NetworkPolicy"} <= kinds
    for obj in objects:
        try:
            validate_object(obj)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {err.message}")


def test_the_platform_is_all_there(overlay):
    _, objects = overlay
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for kind, component in [
        ("Deployment", "api"), ("Deployment", "scheduler"), ("Deployment", "panel"),
        ("Deployment", "zeppelin"), ("StatefulSet", "postgres"), ("StatefulSet", "kafka"),
        ("StatefulSet", "minio"), ("Service", "api"), ("Service", "minio"),
    ]:  # fmt: skip
        assert (kind, component) in names
    platform = [o for o in objects if o["metadata"].get("name") in {"api", "minio", "kafka"}]
    assert all(o["metadata"]["namespace"] == "avip" for o in platform)
    zeppelin_env = next(o for o in objects if o["metadata"]["name"].startswith("zeppelin-env"))
    assert zeppelin_env["data"]["ZEPPELIN_RUN_MODE"] == "k8s"


def test_every_container_is_bounded_probed_and_scraped(overlay):
    _, objects = overlay
    assert workload_problems(objects) == []


def test_every_user_namespace_has_quota_limits_and_default_deny(overlay):
    _, objects = overlay
    assert len(user_namespaces(objects)) >= 2
    assert namespace_problems(objects) == []


def test_user_quotas_fit_the_cluster(overlay):
    name, objects = overlay
    users = load_users(K8S / "overlays" / name / "users.toml")
    assert capacity_problems(users.budgets, users.capacity, users.overcommit) == []
    # Independently, from the rendered ResourceQuotas:
    quotas = [o for o in objects if o["kind"] == "ResourceQuota"]
    cpu = sum(parse_quantity(q["spec"]["hard"]["limits.cpu"]) for q in quotas)
    memory = sum(parse_quantity(q["spec"]["hard"]["limits.memory"]) for q in quotas)
    assert cpu <= users.capacity.cores * users.overcommit
    assert memory <= users.capacity.memory_mb * 2**20 * users.overcommit
    for q in quotas:
        assert parse_quantity(q["spec"]["hard"]["limits.cpu"]) <= users.capacity.cores


def test_yunikorn_queue_limits_equal_the_namespace_quotas(overlay):
    name, objects = overlay
    values = yaml.safe_load((K8S / "helm" / YUNIKORN_VALUES[name]).read_text())
    queues_yaml = yaml.safe_load(values["yunikornDefaults"]["queues.yaml"])
    avip = queues_yaml["partitions"][0]["queues"][0]["queues"][0]
    queues = {q["name"]: q["resources"]["max"] for q in avip["queues"]}
    for q in (o for o in objects if o["kind"] == "ResourceQuota"):
        user = q["metadata"]["namespace"].removeprefix("avip-u-")
        assert str(queues[user]["vcore"]).endswith("m")  # millicores; bare numbers are cores
        hard = q["spec"]["hard"]
        assert parse_quantity(queues[user]["vcore"]) == parse_quantity(hard["limits.cpu"])
        assert queues[user]["memory"] == parse_quantity(q["spec"]["hard"]["limits.memory"])


def test_one_users_pods_cannot_reach_anothers(overlay):
    _, objects = overlay
    namespaces = user_namespaces(objects)
    for target in namespaces:
        for source, ns in namespaces.items():
            if source == target:
                continue
            labels = {**ns["metadata"]["labels"], "kubernetes.io/metadata.name": source}
            assert not ingress_admits(objects, target, labels), f"{source} -> {target}"
    # ...while the platform namespace (API, Prometheus) may reach them.
    platform = {"kubernetes.io/metadata.name": "avip", "avip.io/platform": "true"}
    assert all(ingress_admits(objects, t, platform) for t in namespaces)


@pytest.mark.parametrize("name", OVERLAYS)
def test_generated_files_match_their_users_toml(name):
    toml = K8S / "overlays" / name / "users.toml"
    hint = f"regenerate: avip k8s users {toml} > users.yaml (and avip k8s yunikorn)"
    assert (toml.parent / "users.yaml").read_text() == users_yaml(toml), hint
    assert (K8S / "helm" / YUNIKORN_VALUES[name]).read_text() == yunikorn_values(toml), hint
    users = load_users(toml)
    values = yaml.safe_load((K8S / "helm" / YUNIKORN_VALUES[name]).read_text())
    parsed = yaml.safe_load(values["yunikornDefaults"]["queues.yaml"])
    assert parsed == yunikorn_config(users.budgets, users.capacity)


def test_spark_operator_values_hand_pods_to_yunikorn_in_user_namespaces():
    values = yaml.safe_load((K8S / "helm" / "spark-operator-values.yaml").read_text())
    assert values["controller"]["batchScheduler"]["enable"] is True
    assert values["controller"]["batchScheduler"]["default"] == "yunikorn"
    assert values["spark"]["jobNamespaceSelector"] == "avip.io/user-namespace=true"
    assert values["webhook"]["enable"] is True  # pod templates need the webhook


# --- the checks themselves must catch what they are for ------------------------------


def test_checks_catch_an_unbounded_container_and_a_missing_quota():
    objects = render(str(K8S / "overlays" / "dev"))
    broken = copy.deepcopy(objects)
    api = next(o for o in broken if o["kind"] == "Deployment" and o["metadata"]["name"] == "api")
    del api["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert workload_problems(broken) == ["Deployment/api api: no limits for ['cpu', 'memory']"]
    no_quota = [o for o in objects if not (
        o["kind"] == "ResourceQuota" and o["metadata"]["namespace"] == "avip-u-bob"
    )]  # fmt: skip
    assert namespace_problems(no_quota) == [
        "namespace avip-u-bob: quota lacks "
        "['limits.cpu', 'limits.memory', 'requests.cpu', 'requests.memory']"
    ]


def test_checks_catch_schema_errors_and_leaky_policies():
    objects = render(str(K8S / "overlays" / "dev"))
    api = copy.deepcopy(
        next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "api")
    )
    api["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # typo'd field
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_object(api)
    leaky = copy.deepcopy(objects)
    for o in leaky:
        if o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] == "avip-u-bob":
            for rule in o["spec"].get("ingress", []):
                rule["from"].append({"namespaceSelector": {}})
    alice = {"kubernetes.io/metadata.name": "avip-u-alice", "avip.io/user-namespace": "true"}
    assert ingress_admits(leaky, "avip-u-bob", alice)


def test_dockerfile_copies_only_what_exists_and_starts_spark_roles():
    root = K8S.parent
    made_by_make = {".jars/spark/"}  # `make jars` before `docker build`
    for line in (root / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            for source in sources:
                if source not in made_by_make and not source.endswith("*"):
                    assert (root / source).exists(), f"Dockerfile copies missing {source}"
    entrypoint = (K8S / "image" / "entrypoint.sh").read_text()
    assert "driver)" in entrypoint and "KubernetesExecutorBackend" in entrypoint


def test_platform_pods_are_locked_down(overlay):
    """Issue 15: a default-deny ingress policy in the platform namespace, and our own
    containers with a read-only root file system (writable emptyDirs where they write)."""
    _, objects = overlay
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"
                and o["metadata"].get("namespace", "avip") == "avip"]
    assert any(p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]
               and p["spec"]["policyTypes"] == ["Ingress"] for p in policies)
    ours = [o for o in objects if o["kind"] == "Deployment"
            and o["metadata"]["name"] in ("api", "scheduler", "panel")]
    assert len(ours) == 3
    for deployment in ours:
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"] for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts and set(mounts.values()) <= volumes


def test_one_zeppelin_version_everywhere(overlay):
    """Issue 15: the deployment runs the Zeppelin line the devstack assembles and tests
    (jvm/zeppelin/pom.xml), not another."""
    import re

    _, objects = overlay
    pom = (K8S.parent / "jvm" / "zeppelin" / "pom.xml").read_text()
    tested = re.search(r"<zeppelin.server.version>(\d+\.\d+)\.", pom).group(1)  # type: ignore[union-attr]
    images = [c["image"] for o in objects if o["kind"] in ("Deployment", "StatefulSet")
              for c in o["spec"]["template"]["spec"]["containers"] if "zeppelin" in c["image"]]
    assert images and all(image.split(":")[1].startswith(tested + ".") for image in images)
