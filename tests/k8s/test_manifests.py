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
    _selects,
    ingress_admits,
    namespace_problems,
    render,
    user_namespaces,
    validate_object,
    workload_problems,
)
from kubernetes.utils import parse_quantity

from cli.k8s import load_users, spark_operator_values, users_yaml, yunikorn_values
from spark_jobs.backends.k8s.quota import capacity_problems, yunikorn_config

K8S = Path(__file__).resolve().parents[2] / "k8s"
OVERLAYS = ["dev", "prod"]
YUNIKORN_VALUES = {"dev": "yunikorn-values-dev.yaml", "prod": "yunikorn-values.yaml"}
OPERATOR_VALUES = {"dev": "spark-operator-values-dev.yaml", "prod": "spark-operator-values.yaml"}


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
        ("Deployment", "avip-warm"), ("Service", "avip-warm"),
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
    hint = (f"regenerate: avip k8s users {toml} > users.yaml (and avip k8s yunikorn, "
            "avip k8s spark-operator)")
    assert (toml.parent / "users.yaml").read_text() == users_yaml(toml), hint
    assert (K8S / "helm" / YUNIKORN_VALUES[name]).read_text() == yunikorn_values(toml), hint
    assert (K8S / "helm" / OPERATOR_VALUES[name]).read_text() == spark_operator_values(toml), hint
    users = load_users(toml)
    values = yaml.safe_load((K8S / "helm" / YUNIKORN_VALUES[name]).read_text())
    parsed = yaml.safe_load(values["yunikornDefaults"]["queues.yaml"])
    assert parsed == yunikorn_config(users.budgets, users.capacity)


def test_spark_operator_values_hand_pods_to_yunikorn_in_user_namespaces(overlay):
    """The chart (2.x) takes a list of job namespaces, not a selector: exactly the users'."""
    name, objects = overlay
    values = yaml.safe_load((K8S / "helm" / OPERATOR_VALUES[name]).read_text())
    assert values["controller"]["batchScheduler"]["enable"] is True
    assert values["controller"]["batchScheduler"]["default"] == "yunikorn"
    assert sorted(values["spark"]["jobNamespaces"]) == sorted(user_namespaces(objects))
    assert "jobNamespaceSelector" not in values["spark"]
    assert values["spark"]["rbac"]["create"] is False  # no operator-made roles in them
    assert values["webhook"]["enable"] is True  # pod templates need the webhook


def test_platform_accounts_act_only_in_user_namespaces(overlay):
    """Issue 15: the scheduler's and the API's verbs are granted per user namespace
    (RoleBindings), never cluster-wide, and never in the platform namespace."""
    _, objects = overlay
    users = set(user_namespaces(objects))
    assert not [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    for account in ("avip-scheduler", "avip-api"):
        bound_in = {o["metadata"]["namespace"] for o in objects if o["kind"] == "RoleBinding"
                    and any(s["name"] == account for s in o["subjects"])}
        assert bound_in == users, account
    scheduler = next(o for o in objects if o["kind"] == "ClusterRole"
                     and o["metadata"]["name"] == "avip-scheduler")
    assert not any("namespaces" in rule["resources"] for rule in scheduler["rules"])


def test_jobs_and_the_api_share_one_space(overlay):
    """Issue 15: the driver's /space is <export>/space/<user>, which the API and the
    scheduler see as /data/space/<user> through the avip-data claim; nothing else."""
    _, objects = overlay
    volumes = {o["metadata"]["name"]: o for o in objects if o["kind"] == "PersistentVolume"}
    data = volumes["avip-data"]["spec"]
    assert data["claimRef"] == {"namespace": "avip", "name": "avip-data"}
    claim = next(o for o in objects if o["kind"] == "PersistentVolumeClaim"
                 and o["metadata"] == {"name": "avip-data", "namespace": "avip",
                                       "labels": o["metadata"].get("labels")})
    assert claim["spec"]["volumeName"] == "avip-data"
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    for ns, namespace in user_namespaces(objects).items():
        user = namespace["metadata"]["annotations"]["avip.io/user-name"]
        space = next(o for o in objects if o["kind"] == "PersistentVolumeClaim"
                     and o["metadata"]["namespace"] == ns)
        pv = volumes[space["spec"]["volumeName"]]["spec"]
        assert pv["claimRef"] == {"namespace": ns, "name": space["metadata"]["name"]}
        assert pv["nfs"] == {"server": data["nfs"]["server"],
                             "path": f"{data['nfs']['path']}/space/{user}"}
    for name in ("api", "scheduler", "avip-warm"):  # the warm lane writes job folders too
        pod = next(o for o in objects if o["kind"] == "Deployment"
                   and o["metadata"]["name"] == name)["spec"]["template"]["spec"]
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName")
                  for v in pod["volumes"]}
        assert claims[mounts["/data"]] == "avip-data", name


def test_user_namespaces_get_the_drivers_settings(overlay):
    """Issue 15: each user namespace has the settings its drivers read, copied from the
    platform's avip-settings (one source), and no secret of the platform's."""
    _, objects = overlay
    platform = next(o for o in objects if o["kind"] == "ConfigMap"
                    and o["metadata"]["name"].startswith("avip-settings"))["data"]
    for ns in user_namespaces(objects):
        driver = next(o for o in objects if o["kind"] == "ConfigMap"
                      and o["metadata"]["namespace"] == ns
                      and o["metadata"]["name"] == "avip-driver-settings")["data"]
        assert driver and driver == {key: platform[key] for key in driver}
        assert not [o for o in objects if o["kind"] == "Secret"
                    and o["metadata"]["namespace"] == ns
                    and "avip-secrets" in o["metadata"]["name"]]


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
            and o["metadata"]["name"] in ("api", "scheduler", "panel", "events-relay",
                                          "alert-stream", "avip-warm")]
    assert len(ours) == 6
    for deployment in ours:
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"] for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts and set(mounts.values()) <= volumes


def _admitted(objects: list[dict], pod_labels: dict[str, str], port: int,
              source: dict[str, str], namespace: dict[str, str] | None = None) -> bool:
    """Whether the platform namespace's policies let a pod labelled ``source`` reach
    ``port`` of a pod labelled ``pod_labels``: from the platform namespace itself
    (``namespace`` None) or from a namespace labelled ``namespace``."""
    for policy in objects:
        if policy["kind"] != "NetworkPolicy" or policy["metadata"].get("namespace") != "avip":
            continue
        if not _selects(policy["spec"]["podSelector"], pod_labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            if rule.get("ports") and port not in {p["port"] for p in rule["ports"]}:
                continue
            for peer in rule.get("from") or [{}]:
                if peer == {}:  # no `from`: everyone
                    return True
                ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
                if namespace is None and ns_sel is None and _selects(pod_sel, source):
                    return True
                if namespace is not None and ns_sel is not None and _selects(ns_sel, namespace) \
                        and (pod_sel is None or _selects(pod_sel, source)):
                    return True
    return False


def test_the_warm_lane_is_wired_for_the_scheduler_only(overlay):
    """The warm lane (`avip warm`): the API and the scheduler find it at AVIP_WARM_LANE_URL
    (its Service), the scheduler and it share the token of avip-secrets, only the scheduler
    and Prometheus reach its port, and it holds neither the store's URL nor a Kubernetes
    token; its pod is sized for the workers it runs."""
    from urllib.parse import urlsplit

    name, objects = overlay

    def deployment(n: str) -> dict:
        return next(o for o in objects if o["kind"] == "Deployment"
                    and o["metadata"]["name"] == n and o["metadata"]["namespace"] == "avip")

    warm = deployment("avip-warm")
    pod = warm["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert warm["spec"]["replicas"] == 1 and warm["spec"]["strategy"]["type"] == "Recreate"
    assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod
    command = container["command"]
    assert command[:2] == ["avip", "warm"]
    port = int(command[command.index("--port") + 1])
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert warm["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert "startupProbe" in container  # the workers' warm-up is not a hung process

    settings = next(o for o in objects if o["kind"] == "ConfigMap"
                    and o["metadata"]["name"].startswith("avip-settings"))
    url = urlsplit(settings["data"]["AVIP_WARM_LANE_URL"])
    service = next(o for o in objects if o["kind"] == "Service"
                   and o["metadata"]["name"] == url.hostname.split(".")[0])
    assert url.hostname in (service["metadata"]["name"],
                            f"{service['metadata']['name']}.avip.svc")
    assert _selects(service["spec"]["selector"], warm["spec"]["template"]["metadata"]["labels"])
    assert {"port": url.port, "targetPort": "http"} in [
        {k: p[k] for k in ("port", "targetPort")} for p in service["spec"]["ports"]]
    # No other pod runs warm workers of its own (the scheduler's is not sized for them).
    assert settings["data"]["AVIP_WARM_WORKERS"] == "0"
    for client in ("api", "scheduler"):  # the API routes jobs to it, the scheduler calls it
        sources = deployment(client)["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert {"configMapRef": {"name": settings["metadata"]["name"]}} in sources, client

    # The token: one key of avip-secrets, the scheduler's (envFrom) and the lane's.
    scheduler = deployment("scheduler")["spec"]["template"]["spec"]["containers"][0]
    secret_refs = {s["secretRef"]["name"] for s in scheduler["envFrom"] if "secretRef" in s}
    env = {e["name"]: e for e in container["env"]}
    token = env["AVIP_WARM_LANE_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token["key"] == "AVIP_WARM_LANE_TOKEN" and token["name"] in secret_refs
    assert token["name"].startswith("avip-secrets")
    if name == "dev":  # prod creates it out of band (docs/deploy.md; test_manifests_run)
        import base64

        secret = next(o for o in objects if o["kind"] == "Secret"
                      and o["metadata"]["name"] == token["name"])
        assert base64.b64decode(secret["data"]["AVIP_WARM_LANE_TOKEN"]).decode()
    # Only what it needs of the Secrets: no store URL, no password, no Kafka principal.
    assert not [s for s in container.get("envFrom", []) if "secretRef" in s]
    assert {e["valueFrom"]["secretKeyRef"]["key"] for e in env.values() if "valueFrom" in e} \
        == {"AVIP_WARM_LANE_TOKEN", "AVIP_S3_ACCESS_KEY", "AVIP_S3_SECRET_KEY"}

    # Ingress to its port: the scheduler and Prometheus; not the API, not a user's pods.
    labels = warm["spec"]["template"]["metadata"]["labels"]

    def component(c: str) -> dict[str, str]:
        return {"avip.io/component": c}
    assert _admitted(objects, labels, port, component("scheduler"))
    assert _admitted(objects, labels, port, {}, {"avip.io/monitoring": "true"})
    for other in ("api", "panel", "events-relay", "alert-stream", "kafka", "minio"):
        assert not _admitted(objects, labels, port, component(other)), other
    for ns in user_namespaces(objects).values():
        assert not _admitted(objects, labels, port, {}, ns["metadata"]["labels"])

    # Sized for its workers: a core each, and each one's heap plus its job's budget.
    workers = int(env["AVIP_WARM_WORKERS"]["value"])
    heap = parse_quantity(env["AVIP_WARM_WORKER_MEMORY"]["value"].upper().rstrip("B") + "i")
    budget = int(settings["data"]["AVIP_WARM_JOB_MEMORY_MB"]) * 2**20
    resources = container["resources"]
    assert parse_quantity(resources["requests"]["cpu"]) >= workers >= 1
    assert parse_quantity(resources["limits"]["memory"]) >= workers * (heap + budget)


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


def test_driver_pods_find_their_settings_and_own_keys(overlay):
    """Issue 15: what the driver's pod template names exists in every user namespace
    (dev: the job keys too; prod creates them out of band), and the keys are not the
    platform's."""
    import base64

    from spark_jobs.backends.k8s.application import K8sConfig, K8sJob, pod_template
    from spark_jobs.backends.k8s.quota import SparkShape

    name, objects = overlay
    for ns, namespace in user_namespaces(objects).items():
        user = namespace["metadata"]["annotations"]["avip.io/user-name"]
        job = K8sJob(job_id=1, user=user, avi="cone_search", params={},
                     shape=SparkShape(1, 1024, 1, 1024, executors=1))
        sources = pod_template(job, "driver", K8sConfig())["spec"]["containers"][0]["envFrom"]
        config_maps = {s["configMapRef"]["name"] for s in sources if "configMapRef" in s}
        secrets = {s["secretRef"]["name"] for s in sources if "secretRef" in s}
        present = {(o["kind"], o["metadata"]["name"]) for o in objects
                   if o["metadata"].get("namespace") == ns}
        assert {("ConfigMap", c) for c in config_maps} <= present, ns
        if name == "dev":
            assert {("Secret", s) for s in secrets} <= present, ns
            platform = next(o for o in objects if o["kind"] == "Secret"
                            and o["metadata"]["name"].startswith("avip-secrets"))["data"]
            for secret in (o for o in objects if o["kind"] == "Secret"
                           and o["metadata"].get("namespace") == ns):
                keys = base64.b64decode(secret["data"]["AVIP_S3_ACCESS_KEY"]).decode()
                assert keys != base64.b64decode(platform["AVIP_S3_ACCESS_KEY"]).decode()


def _properties(text: str) -> dict[str, str]:
    """key=value lines of a server.properties heredoc, shell variables shown as ``$``."""
    import re

    props = {}
    for line in text.splitlines():
        line = line.strip()
        key = line.split("=")[0]
        if "=" in line and not line.startswith(("#", "cat ", "PROPS")) and " " not in key:
            key, value = line.split("=", 1)
            props[key] = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", "$", value)
    return props


def test_the_cluster_broker_authenticates_like_the_tested_one(overlay):
    """Issue 15: the deployment's Kafka has the security settings of the devstack broker
    the tests run against (SASL everywhere, the authorizer on, no access without an ACL)."""
    _, objects = overlay
    start = next(o for o in objects if o["kind"] == "ConfigMap"
                 and o["metadata"]["name"].startswith("kafka-start"))["data"]["kafka-start.sh"]
    devstack = (K8S.parent / "devstack" / "services" / "kafka.sh").read_text()
    tested = _properties(devstack.split("write_config() {")[1].split("PROPS\n}")[0])
    deployed = _properties(start)

    def security(props: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in props.items() if k.startswith(("sasl.", "listener."))
                or k in ("authorizer.class.name", "allow.everyone.if.no.acl.found",
                         "super.users", "inter.broker.listener.name",
                         "controller.listener.names")}

    assert security(tested) and security(deployed) == security(tested)
    assert deployed["allow.everyone.if.no.acl.found"] == "false"
    assert all(listener.startswith(("SASL_", "CONTROLLER"))
               for listener in deployed["listeners"].split(","))


def test_zeppelin_logs_users_in_and_keeps_them_apart(overlay):
    """Issue 15: Zeppelin in k8s runs as the devstack's does (Shiro login, no anonymous
    access, one isolated interpreter per user), in a namespace of its own where the pods
    it creates can mount none of the platform's Secrets."""
    import json
    import re
    import xml.etree.ElementTree as ET

    name, objects = overlay
    zeppelin = next(o for o in objects if o["kind"] == "Deployment"
                    and o["metadata"]["name"] == "zeppelin")
    assert zeppelin["metadata"]["namespace"] == "avip-notes"
    roles = [o for o in objects if o["kind"] in ("Role", "RoleBinding")
             and o["metadata"]["name"] == "zeppelin"]
    assert roles and {o["metadata"]["namespace"] for o in roles} == {"avip-notes"}
    assert not [o for o in objects if o["kind"] == "Secret"
                and o["metadata"].get("namespace") == "avip-notes"
                and o["metadata"]["name"].startswith(("avip-secrets", "avip-kafka"))]
    conf = next(o for o in objects if o["kind"] == "ConfigMap"
                and o["metadata"]["name"].startswith("zeppelin-conf"))["data"]
    site = {p.findtext("name"): p.findtext("value")
            for p in ET.fromstring(conf["zeppelin-site.xml"]).iter("property")}
    assert site["zeppelin.anonymous.allowed"] == "false"
    assert site["zeppelin.notebook.public"] == "false"
    devstack = (K8S.parent / "devstack" / "services" / "zeppelin.sh").read_text()
    tested = devstack.split('interpreter-setting.json" <<EOF')[1].split("\nEOF")[0]
    tested = json.loads(tested.replace("$python", "/opt/venv/bin/python"))
    assert json.loads(conf["interpreter-setting.json"]) == tested
    assert tested[0]["option"]["perUser"] == "isolated"
    pod = zeppelin["spec"]["template"]["spec"]
    shiro = next(v for v in pod["volumes"] if v["name"] == "shiro")["secret"]["secretName"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/opt/zeppelin/conf/shiro.ini"]["name"] == "shiro"
    if name == "dev":  # prod creates the Secret out of band
        import base64

        secret = next(o for o in objects if o["kind"] == "Secret"
                      and o["metadata"]["name"] == shiro)
        ini = base64.b64decode(secret["data"]["shiro.ini"]).decode()
        rules = devstack.split("cat <<'EOF'\n")[1].split("\nEOF")[0]
        assert rules.strip() and rules.strip() in ini  # [main], [roles], [urls] as tested
        assert re.search(r"^/\*\* = authc$", ini, re.M)


def test_user_namespaces_enforce_restricted_pods_and_drivers_comply(overlay):
    """A driver's code may create pods in its namespace: Pod Security "restricted" keeps
    them from mounting the shared export inline (nfs), running as root or privileged; the
    pods the platform creates there meet it."""
    from spark_jobs.backends.k8s.application import K8sConfig, K8sJob, pod_template
    from spark_jobs.backends.k8s.quota import SparkShape

    _, objects = overlay
    for ns, namespace in user_namespaces(objects).items():
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == \
            "restricted", ns
    job = K8sJob(job_id=1, user="alice", avi="cone_search", params={},
                 shape=SparkShape(1, 1024, 1, 1024, executors=1))
    for role in ("driver", "executor"):
        pod = pod_template(job, role, K8sConfig())["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        container = pod["containers"][0]["securityContext"]
        assert container["allowPrivilegeEscalation"] is False
        assert container["capabilities"] == {"drop": ["ALL"]}
        allowed = {"configMap", "persistentVolumeClaim", "emptyDir", "secret", "projected"}
        assert all(set(v) - {"name"} <= allowed for v in pod["volumes"]), role
